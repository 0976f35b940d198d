"""Score follow-up questions: is each turn understood as the test set says, and answered right?

A conversation test set is JSONL, one conversation a line::

    {"id": "seed-c01", "source": "seeds/000_ffecf142e84792ea.txt", "turns": [
        {"question": "who is Rob Strayer?", "rewrite": "who is Rob Strayer?", "answers": ["State Department official"]},
        {"question": "Where did he speak?", "rewrite": "Where did Rob Strayer speak?", "answers": ["the Center ..."]}]}

``rewrite`` is the self-contained question the turn means (the question itself when it needs
no context); ``answers`` are spans of the source that answer it ([]: the source does not, and
abstaining is right). ``source`` is a file (relative to the set or the repository),
``longdoc:new_wiki/<title>``, a whole qa-train article, or ``longdoc:policyqa/<title>``, a
whole PolicyQA privacy policy (both as ``qa.eval.longdocs`` builds them).

Each conversation is asked turn by turn through ``qa.Conversation``, as a user would, over one
index of every document the set names. Reported: rewrite accuracy over the follow-ups (and,
apart, the share of follow-ups needing no rewrite that were left alone), and answer EM/F1 per
turn with the SQuAD normalisation.

Example:
    >>> r = evaluate_conversations("tests/data/conversations.jsonl")   # doctest: +SKIP
    >>> r.figures["rewrite_accuracy"], r.figures["f1"]                  # doctest: +SKIP

Command line: ``python -m qa.eval.conversations tests/data/conversations.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import mean
from typing import Sequence

from qa.eval.datasets import DatasetError, EvalQuestion, EvalSet, resolve_source
from qa.eval.longdocs import ARTICLES_FILE, DEFAULT_DATA_DIR, POLICY_FILES, _document
from qa.eval.metrics import exact_match, f1_score
from qa.eval.run import DEFAULT_OUT_ROOT, default_index_cache, sync_index
from qa.settings import DECIDERS, PRECISIONS, QASettings

LONGDOC_PREFIX = "longdoc:new_wiki/"
POLICY_PREFIX = "longdoc:policyqa/"


@dataclass(frozen=True)
class ConversationTurn:
    """One turn of the test set: what is typed, what it means, what answers it."""

    question: str
    rewrite: str
    answers: tuple[str, ...]


@dataclass(frozen=True)
class ConversationCase:
    """One conversation of the test set, over one document."""

    id: str
    source: str
    turns: tuple[ConversationTurn, ...]


@dataclass(frozen=True)
class TurnResult:
    """How one turn went. ``prediction`` is "" when the engine abstained."""

    conversation: str
    turn: int  # 1 for the first question
    question: str
    expected_rewrite: str
    rewrite: str
    answers: tuple[str, ...]
    prediction: str
    score: float
    cited: str  # the first citation's document ("" when none)
    em: float
    f1: float

    @property
    def follow_up(self) -> bool:
        return self.turn > 1

    @property
    def needs_rewrite(self) -> bool:
        return self.expected_rewrite != self.question

    @property
    def rewrite_right(self) -> bool:
        return self.rewrite == self.expected_rewrite


@dataclass(frozen=True)
class ConversationReport:
    """The figures of a run and every turn's row (see ``summarize`` for the figures)."""

    name: str
    conversations: int
    figures: dict
    turns: tuple[TurnResult, ...] = field(repr=False)

    def to_dict(self, with_turns: bool = True) -> dict:
        out = {"name": self.name, "conversations": self.conversations, "figures": self.figures}
        if with_turns:
            out["turns"] = [asdict(t) for t in self.turns]
        return out


def load_conversations(path: str | Path) -> tuple[ConversationCase, ...]:
    """The conversations of a JSONL test set (see the module docstring), checked line by line."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise DatasetError(f"cannot read {p} ({e})") from None
    out = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            turns = tuple(ConversationTurn(t["question"], t.get("rewrite") or t["question"], tuple(t.get("answers", ())))
                          for t in row["turns"])
            out.append(ConversationCase(id=str(row.get("id", f"{p.stem}-{n}")), source=row["source"], turns=turns))
        except (ValueError, KeyError, TypeError) as e:
            raise DatasetError(f"{p}:{n} is not a conversation ({e!r}); each line needs "
                               '{"id", "source", "turns": [{"question", "rewrite", "answers": [...]}]}') from None
        if not turns:
            raise DatasetError(f"{p}:{n} has no turns")
    if not out:
        raise DatasetError(f"{p} holds no conversations")
    return tuple(out)


def _longdocs(wanted: Sequence[str], prefix: str, files: Sequence[str], data_dir: Path) -> dict[str, str]:
    """``prefix + title`` -> text for every wanted source under ``prefix``, built from the
    qa-train ``files`` as ``qa.eval.longdocs`` builds them (paragraphs joined)."""
    titles = {s[len(prefix):] for s in wanted if s.startswith(prefix)}
    if not titles:
        return {}
    documents: dict[str, str] = {}
    for name in files:
        file = data_dir / name
        try:
            articles = json.loads(file.read_text(encoding="utf-8"))["data"]
        except (OSError, ValueError, KeyError) as e:
            raise DatasetError(f"cannot read {file} ({e}); the long documents are built from qa-train, "
                               "give its folder with data_dir") from None
        for article in articles:
            if article.get("title") in titles:
                documents[prefix + article["title"]], _ = _document(article)
    missing = sorted(titles - {s[len(prefix):] for s in documents})
    if missing:
        raise DatasetError(f"no article titled {missing} in {', '.join(str(data_dir / f) for f in files)}; "
                           "use a title as the file spells it")
    return documents


def conversation_documents(conversations: Sequence[ConversationCase], base: Path,
                           data_dir: str | Path = DEFAULT_DATA_DIR) -> tuple[dict[str, str], dict[str, str]]:
    """(source -> text, source -> kind) for every document the conversations name: files as the
    set writes them, ``longdoc:new_wiki/<title>`` and ``longdoc:policyqa/<title>`` built from the
    qa-train article or policy of that title."""
    from index.loaders import UnreadableFile, load_document

    wanted = sorted({c.source for c in conversations})
    documents = {**_longdocs(wanted, LONGDOC_PREFIX, (ARTICLES_FILE,), Path(data_dir)),
                 **_longdocs(wanted, POLICY_PREFIX, POLICY_FILES, Path(data_dir))}
    kinds: dict[str, str] = {}
    for source in wanted:
        if source.startswith((LONGDOC_PREFIX, POLICY_PREFIX)):
            continue
        file = resolve_source(source, base)
        if file is None:
            raise DatasetError(f"source {source!r} not found next to the test set or under the repository")
        try:
            doc = load_document(file)
        except UnreadableFile as e:
            raise DatasetError(f"cannot read source {source!r} ({e})") from None
        documents[source], kinds[source] = doc.text, doc.kind
    return documents, kinds


def turns_as_questions(path: str | Path, data_dir: str | Path = DEFAULT_DATA_DIR) -> EvalSet:
    """Every turn of a conversation set as a self-contained question (its ``rewrite``) over the
    set's documents: what a follow-up means once understood, asked on its own (the decision is
    fitted on such questions, ``python -m qa.training.decision --sets FILE``)."""
    p = Path(path)
    conversations = load_conversations(p)
    documents, kinds = conversation_documents(conversations, p.parent, data_dir)
    questions = tuple(
        EvalQuestion(id=f"{c.id}-{n}", question=t.rewrite, answers=t.answers, source=c.source, context_start=0,
                     context_end=len(documents[c.source]))
        for c in conversations for n, t in enumerate(c.turns, start=1))
    return EvalSet(name=p.stem, questions=questions, documents=documents, kinds=kinds)


def rewrites_given_answers(conversations: Sequence[ConversationCase]) -> list[tuple[str, str, str, str]]:
    """(conversation id, question, rewrite, expected rewrite) of every follow-up, rewritten with the
    set's own first answer standing in for each earlier turn's, so the rewriting is measured
    apart from the reader."""
    from qa.conversation import Turn, rewrite
    from qa.types import Answer

    out = []
    for c in conversations:
        history: list[Turn] = []
        for t in c.turns:
            got = rewrite(t.question, history)
            if history:
                out.append((c.id, t.question, got, t.rewrite))
            answer = t.answers[0] if t.answers else ""
            history.append(Turn(t.question, got, Answer(question=got, text=answer, found=bool(answer), score=1.0)))
    return out


def score_turn(prediction: str, answers: Sequence[str]) -> tuple[float, float]:
    """(EM, F1) of a prediction ("" for an abstention) against the answers ([]: abstaining is right)."""
    return exact_match(prediction, answers), f1_score(prediction, answers)


def _share(flags: Sequence[bool]) -> float | None:
    return round(100.0 * sum(flags) / len(flags), 1) if flags else None


def _avg(values: Sequence[float]) -> float | None:
    return round(100.0 * mean(values), 1) if values else None


def summarize(turns: Sequence[TurnResult]) -> dict:
    """The headline figures, in percent.

    rewrite_accuracy: follow-ups rewritten exactly as the set says, after the engine's own
    answers (``evaluate_conversations`` adds rewrite_accuracy_given_answers: after the set's
    answers, the rewriting apart from the reader); rewritten: of those that
    need a rewrite; left_alone: of those that need none, the share left as typed; em/f1 over
    every turn, em_follow_ups/f1_follow_ups over follow-ups, and over turns with an answer
    (has_answer_f1) and without one (no_answer_accuracy: abstained).
    """
    follow = [t for t in turns if t.follow_up]
    answerable = [t for t in turns if t.answers]
    return {
        "turns": len(turns), "follow_ups": len(follow),
        "rewrite_accuracy": _share([t.rewrite_right for t in follow]),
        "rewritten": _share([t.rewrite_right for t in follow if t.needs_rewrite]),
        "left_alone": _share([t.rewrite == t.question for t in follow if not t.needs_rewrite]),
        "em": _avg([t.em for t in turns]), "f1": _avg([t.f1 for t in turns]),
        "em_follow_ups": _avg([t.em for t in follow]), "f1_follow_ups": _avg([t.f1 for t in follow]),
        "has_answer_f1": _avg([t.f1 for t in answerable]),
        "no_answer_accuracy": _avg([t.em for t in turns if not t.answers]),
    }


def evaluate_conversations(path: str | Path, index=None, *, engine=None, settings=None,
                           data_dir: str | Path = DEFAULT_DATA_DIR, index_cache: str | Path | None = None,
                           embedder=None, progress: bool = False) -> ConversationReport:
    """Ask every conversation of a test set turn by turn and score the rewrites and answers.

    Args:
        path: the JSONL conversation set.
        index: an Index (or index folder) to answer from; None builds one over the documents the
            set names, kept in ``index_cache`` (default eval-output/index-cache/conversations-<hash>).
        engine: an Engine to answer with instead (wins over ``index`` and ``settings``).
        settings: ``QASettings`` for the engine built here (None: the engine's defaults).
        data_dir: the qa-train folder the ``longdoc:`` documents are built from.
        embedder: an already loaded embedder for the index built here (None: the shared one).
        progress: print each conversation's id as it is asked.

    Returns:
        The ConversationReport.
    """
    from index import Index
    from qa.conversation import Conversation
    from qa.engine import Engine

    path = Path(path)
    conversations = load_conversations(path)
    if engine is None:
        if index is None:
            documents, kinds = conversation_documents(conversations, path.parent, data_dir)
            cache = Path(index_cache) if index_cache else default_index_cache(documents, "conversations", DEFAULT_OUT_ROOT,
                                                                          embedder=embedder)
            index = sync_index(cache, documents, kinds, embedder=embedder, progress=progress)
        elif embedder is not None and not isinstance(index, Index):
            index = Index.open(index, embedder=embedder)
        engine = Engine(index, settings)
    rows: list[TurnResult] = []
    for c in conversations:
        if progress:
            print(c.id, file=sys.stderr, flush=True)
        talk = Conversation(engine=engine)
        for n, t in enumerate(c.turns, start=1):
            answer = talk.ask(t.question)
            prediction = answer.text if answer.found else ""
            em, f1 = score_turn(prediction, t.answers)
            rows.append(TurnResult(
                conversation=c.id, turn=n, question=t.question, expected_rewrite=t.rewrite,
                rewrite=answer.understood_as or t.question, answers=t.answers, prediction=prediction,
                score=round(float(answer.score), 4), cited=answer.citations[0].source if answer.citations else "",
                em=em, f1=round(f1, 4)))
    figures = summarize(rows)
    figures["rewrite_accuracy_given_answers"] = _share([got == want for _, _, got, want in rewrites_given_answers(conversations)])
    return ConversationReport(name=f"conversations-{path.stem}", conversations=len(conversations),
                              figures=figures, turns=tuple(rows))


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def format_table(report: ConversationReport, rows: bool = True) -> str:
    """The figures, then (``rows``) one line per turn: rewrite right or not, EM, F1, prediction."""
    f = report.figures
    lines = [f"{report.name}: {report.conversations} conversations, {f['turns']} turns, {f['follow_ups']} follow-ups", ""]
    for key in ("rewrite_accuracy", "rewrite_accuracy_given_answers", "rewritten", "left_alone", "em", "f1", "em_follow_ups", "f1_follow_ups",
                "has_answer_f1", "no_answer_accuracy"):
        value = f.get(key)
        lines.append(f"  {key:<31} {'-' if value is None else f'{value:.1f}'}")
    if rows:
        lines += ["", f"  {'conversation':<14} {'#':>2} {'rw':<3} {'EM':>3} {'F1':>5}  understood as -> answer"]
        for t in report.turns:
            mark = "-" if not t.follow_up else ("ok" if t.rewrite_right else "XX")
            lines.append(f"  {t.conversation:<14} {t.turn:>2} {mark:<3} {t.em:>3.0f} {t.f1:>5.2f}  "
                         f"{_clip(t.rewrite, 70)} -> {_clip(t.prediction or '(no answer)', 40)}")
            if t.follow_up and not t.rewrite_right:
                lines.append(f"  {'':<14} {'':>2} {'':<3} {'':>3} {'':>5}  expected: {t.expected_rewrite}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m qa.eval.conversations", description=__doc__.split("\n\n")[0])
    p.add_argument("path", help="conversation set (JSONL), e.g. tests/data/conversations.jsonl")
    p.add_argument("--index", metavar="DIR", help="answer from this existing index instead of indexing the set's documents")
    p.add_argument("--index-cache", metavar="DIR", help="where to keep the set's index between runs")
    p.add_argument("--reader", choices=("sentence", "neural", "auto"), default="auto", help="reader (default auto)")
    p.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR), help="qa-train folder the long documents come from")
    p.add_argument("--out", metavar="FILE", help="also write the report with every turn as JSON here")
    p.add_argument("--no-rows", action="store_true", help="print the figures only")
    p.add_argument("--quiet", action="store_true", help="no progress")
    engine = p.add_argument_group("the engine (QASettings; default: its own)")
    engine.add_argument("--reader-precision", choices=PRECISIONS, default="auto")
    engine.add_argument("--reader-dir", metavar="DIR", help="neural reader weights (default: the shipped qa/models/reader)")
    engine.add_argument("--decider", choices=DECIDERS, default="auto")
    engine.add_argument("--decider-file", metavar="FILE", help="an answer-or-abstain model instead of the shipped one")
    engine.add_argument("--no-boundaries", action="store_true", help="the neural reader's own best spans")
    engine.add_argument("--min-score", type=float, default=None)
    engine.add_argument("--top-k", type=int, default=None)
    engine.add_argument("--fusion-weight", type=float, default=None)
    engine.add_argument("--early-exit", type=float, default=None)
    engine.add_argument("--embedder", choices=("auto", "onnx", "onnx-int8", "torch"), default="auto",
                        help="how the embedding model runs for the set's index and the questions")
    args = p.parse_args(argv)
    from index.store import IndexStoreError
    try:
        settings = QASettings(reader=args.reader, reader_precision=args.reader_precision, reader_dir=args.reader_dir,
                              decider=args.decider, decider_file=args.decider_file,
                              answer_boundaries=not args.no_boundaries).with_overrides(
            min_score=args.min_score, top_k=args.top_k, fusion_weight=args.fusion_weight, early_exit=args.early_exit)
        embedder = None
        if args.embedder != "auto":
            from index.embedding import Embedder

            embedder = Embedder(backend=args.embedder)
        report = evaluate_conversations(args.path, index=args.index, settings=settings,
                                        data_dir=args.data_dir, index_cache=args.index_cache, embedder=embedder,
                                        progress=not args.quiet)
    except (DatasetError, ValueError, FileNotFoundError, IndexStoreError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_table(report, rows=not args.no_rows))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"\nreport: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
