"""Test sets: SQuAD v1.1/2.0 JSON, a simple JSONL form, and BEIR retrieval sets.

Every QA test set becomes an ``EvalSet``: the documents to index (source name -> text)
and the questions, each pointing at its gold context, a character span of one document.

JSONL form, one question a line (unknown keys such as prediction/rating/timestamp are ignored)::

    {"question": "...", "answers": ["..."], "context": "..."}
    {"question": "...", "answers": [], "source": "seeds/000_ffecf142e84792ea.txt"}

``answers: []`` means the documents cannot answer it. With ``source`` (a file path,
resolved against the JSONL's folder, then the repository root) the gold context is the
whole file, or the ``context`` text inside it when both are given.

Example:
    >>> s = load_dataset("tests/data/seed_questions.jsonl")     # doctest: +SKIP
    >>> len(s.questions), s.has_unanswerable                     # doctest: +SKIP
    (24, True)
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


class DatasetError(ValueError):
    """A test set that cannot be read; the message names the file and what to fix."""


@dataclass(frozen=True)
class EvalQuestion:
    """One test question and where its gold answer lives.

    ``documents[source][context_start:context_end]`` is the gold context. ``answer_starts``
    are offsets into that context (-1 where unknown); ``answers == ()`` means not answerable.
    """

    id: str
    question: str
    answers: tuple[str, ...]
    source: str
    context_start: int
    context_end: int
    answer_starts: tuple[int, ...] = ()
    title: str = ""

    @property
    def answerable(self) -> bool:
        return bool(self.answers)

    def answer_spans(self) -> list[tuple[int, int]]:
        """Gold answer spans relative to the gold context, where offsets are known."""
        return [(s, s + len(a)) for a, s in zip(self.answers, self.answer_starts) if s is not None and s >= 0]


@dataclass(frozen=True)
class EvalSet:
    """Questions plus the documents holding their contexts (source name -> text)."""

    name: str
    questions: tuple[EvalQuestion, ...]
    documents: dict[str, str] = field(repr=False)
    kinds: dict[str, str] = field(default_factory=dict, repr=False)  # source -> document kind

    @property
    def has_unanswerable(self) -> bool:
        return any(not q.answerable for q in self.questions)

    def context(self, q: EvalQuestion) -> str:
        return self.documents[q.source][q.context_start:q.context_end]


@dataclass(frozen=True)
class BeirSet:
    """A BEIR retrieval set: corpus id -> (title, text), query id -> text, qrels[qid][doc id] = score."""

    name: str
    corpus: dict[str, tuple[str, str]] = field(repr=False)
    queries: dict[str, str] = field(repr=False)
    qrels: dict[str, dict[str, int]] = field(repr=False)


# ---- SQuAD ----------------------------------------------------------------------------------------

def load_squad(path: str | Path, name: str | None = None) -> EvalSet:
    """A SQuAD v1.1 or v2.0 JSON file. Paragraphs become documents named ``squad:<title>#<i>``."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))["data"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DatasetError(f"{p} is not a SQuAD JSON file ({e}); pass a file with a top-level 'data' list") from None
    documents: dict[str, str] = {}
    questions: list[EvalQuestion] = []
    for article in data:
        title = article.get("title", "")
        for pi, para in enumerate(article["paragraphs"]):
            source = f"squad:{title}#{pi}"
            context = para["context"]
            documents[source] = context
            for qa in para["qas"]:
                impossible = qa.get("is_impossible", False)
                answers = [] if impossible else qa.get("answers", [])
                questions.append(
                    EvalQuestion(
                        id=str(qa["id"]), question=qa["question"], answers=tuple(a["text"] for a in answers),
                        source=source, context_start=0, context_end=len(context),
                        answer_starts=tuple(int(a.get("answer_start", -1)) for a in answers), title=title,
                    )
                )
    return EvalSet(name=name or p.stem, questions=tuple(questions), documents=documents)


# ---- JSONL ----------------------------------------------------------------------------------------

def resolve_source(source: str, base: Path) -> Path | None:
    """The file named by ``source``: as given if absolute, else under ``base``, else under the repo root."""
    s = Path(source).expanduser()
    for candidate in ([s] if s.is_absolute() else [base / s, REPO_ROOT / s]):
        if candidate.is_file():
            return candidate
    return None


def load_jsonl(path: str | Path, name: str | None = None) -> EvalSet:
    """The JSONL form (see the module docstring); the chat UI's feedback file is one."""
    from index.loaders import UnreadableFile, load_document

    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise DatasetError(f"cannot read {p} ({e})") from None
    documents: dict[str, str] = {}
    kinds: dict[str, str] = {}
    loaded: dict[str, str] = {}  # the "source" as written -> indexed source name
    questions: list[EvalQuestion] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:
            raise DatasetError(f"{p}:{n} is not valid JSON ({e})") from None
        if not isinstance(row, dict) or not isinstance(row.get("question"), str) or not row["question"].strip():
            raise DatasetError(f"{p}:{n} has no 'question' text; each line needs {{\"question\": ..., \"answers\": [...], \"context\" or \"source\": ...}}")
        answers = row.get("answers", [])
        if isinstance(answers, str):
            answers = [answers]
        if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
            raise DatasetError(f"{p}:{n}: 'answers' must be a list of strings ([] for not answerable)")
        context = row.get("context")
        written = row.get("source")
        has_context = isinstance(context, str) and bool(context.strip())
        source = span = None
        if written:
            if written not in loaded:
                problem = None
                file = resolve_source(written, p.parent)
                if file is None:
                    problem = f"source {written!r} not found next to {p.name} or under {REPO_ROOT}; use a path relative to either"
                else:
                    try:
                        doc = load_document(file)
                        # Indexed under the name the test set uses, so reports read like the test set.
                        documents[written] = doc.text
                        kinds[written] = doc.kind
                    except UnreadableFile as e:
                        problem = f"cannot read source {written!r} ({e})"
                if problem and not has_context:
                    raise DatasetError(f"{p}:{n}: {problem}")
                loaded[written] = None if problem else written
                if problem:
                    warnings.warn(f"{p}:{n}: {problem}; using the line's 'context' as the document instead", stacklevel=2)
            if loaded[written] is not None:
                text = documents[written]
                if not has_context:
                    source, span = written, (0, len(text))
                elif (start := text.find(context)) >= 0:
                    source, span = written, (start, start + len(context))
                else:
                    warnings.warn(f"{p}:{n}: the 'context' is not a verbatim part of {written!r} (changed since?); "
                                  "using the context as the document instead", stacklevel=2)
        if source is None:
            if not has_context:
                raise DatasetError(f"{p}:{n} has neither 'context' nor 'source'; give the text the question is about")
            source = f"{p.stem}:{hashlib.sha1(context.encode('utf-8')).hexdigest()[:12]}"
            documents[source] = context
            kinds[source] = "txt"
            span = (0, len(context))
        questions.append(
            EvalQuestion(
                id=str(row.get("id", f"{p.stem}-{n}")), question=row["question"].strip(), answers=tuple(answers),
                source=source, context_start=span[0], context_end=span[1],
                # No offsets in this form: citations are checked by the quoted text instead.
                answer_starts=tuple(-1 for _ in answers), title=str(row.get("title", "")),
            )
        )
    if not questions:
        raise DatasetError(f"{p} holds no questions")
    return EvalSet(name=name or p.stem, questions=tuple(questions), documents=documents, kinds=kinds)


NAMED_SETS = ("longdocs-tune", "longdocs-heldout", "longdocs-all", "shortdocs-fit", "shortdocs-check", "shortdocs-all",
              "boundaries-tune", "boundaries-check", "boundaries-all")


def load_dataset(path: str | Path) -> EvalSet:
    """A SQuAD JSON (``.json``) or JSONL (``.jsonl``) test set, or a named set built from the
    shared data (``longdocs-tune``, ``longdocs-heldout``, ``longdocs-all``: ``qa.eval.longdocs``;
    ``shortdocs-fit``, ``shortdocs-check``, ``shortdocs-all``: ``qa.eval.shortdocs``;
    ``boundaries-tune``, ``boundaries-check``, ``boundaries-all``: ``qa.eval.boundaries``)."""
    p = Path(path)
    if str(path) in NAMED_SETS and not p.exists():
        from qa.eval.boundaries import load_boundaries
        from qa.eval.longdocs import load_longdocs
        from qa.eval.shortdocs import load_shortdocs

        kind, part = str(path).split("-", 1)
        return {"longdocs": load_longdocs, "shortdocs": load_shortdocs, "boundaries": load_boundaries}[kind](part)
    if not p.is_file():
        raise DatasetError(f"no test set at {p}; pass a SQuAD .json or a .jsonl file (or --beir DIR for retrieval sets)")
    if p.suffix.lower() == ".jsonl":
        return load_jsonl(p)
    if p.suffix.lower() == ".json":
        return load_squad(p)
    raise DatasetError(f"{p}: unknown test-set format {p.suffix!r}; use SQuAD .json or .jsonl")


# ---- sampling and derived sets --------------------------------------------------------------------

def sample(eval_set: EvalSet, limit: int | None, seed: int = 0) -> EvalSet:
    """A repeatable random sample of ``limit`` questions (in their original order); all when None.

    The documents stay the same: an open-mode run still searches every context of the set.
    """
    if limit is None or limit >= len(eval_set.questions):
        return eval_set
    if limit <= 0:
        raise ValueError(f"limit must be greater than 0. Currently, limit is {limit}")
    chosen = sorted(random.Random(seed).sample(range(len(eval_set.questions)), limit))
    return replace(eval_set, questions=tuple(eval_set.questions[i] for i in chosen))


def is_heldout(context: str, per_mille: int) -> bool:
    """Whether a context belongs to the slice the neural reader's training holds out (a stable
    hash of its text), so that a threshold chosen on qa-train data is not chosen on training questions.

    Args:
        context: the paragraph text.
        per_mille: held-out share, per thousand (the reader's training uses 50).

    Returns:
        True for held-out contexts.
    """
    return int(hashlib.sha1(context.encode("utf-8")).hexdigest()[:8], 16) % 1000 < per_mille


def keep_documents(eval_set: EvalSet, keep) -> EvalSet:
    """Only the documents whose text satisfies ``keep(text)``, and their questions."""
    documents = {s: t for s, t in eval_set.documents.items() if keep(t)}
    if not documents:
        raise ValueError(f"no document of {eval_set.name} passes the filter; use a larger test set")
    return EvalSet(name=eval_set.name, questions=tuple(q for q in eval_set.questions if q.source in documents),
                   documents=documents, kinds={s: k for s, k in eval_set.kinds.items() if s in documents})


UNANSWERABLE_KINDS = ("other-article", "twin", "twin-within", "written")


def add_unanswerable(eval_set: EvalSet, fraction: float, seed: int = 0, kind: str = "other-article") -> EvalSet:
    """Make about ``fraction`` of the questions unanswerable, for choosing an abstention threshold.

    ``kind="other-article"``: a random ``fraction`` of the documents is held out: they are
    removed from the set (so open mode cannot retrieve them) and each of their questions is
    paired with the gold context of a document from another article (title) instead, with
    no gold answer. These negatives are easy (the context is on another topic); they
    exercise the decision "does this context answer the question?".

    ``kind="twin"``: every document stays; a random ``fraction`` of the questions is
    replaced by its unanswerable twin (``qa.eval.unanswerable.perturb``: a name or number
    swapped for one the context lacks, an antonym, a negation) over the same context, like
    SQuAD 2.0's adversarial questions. Questions no rule applies to stay answerable.

    ``kind="twin-within"``: the same, with the twin made by swapping a name or number for
    another one *of the same context*, away from the gold answer (``swap_within``): every
    word of such a question is in the context, the harder near miss (SQuAD 2.0's entity swap).

    ``kind="written"``: the same, with near misses written in SQuAD 2.0's manner instead of
    made by a rule (``qa.eval.unanswerable.load_near_misses``; they exist for the held-out
    contexts of qa-train/new_wiki). The reader never trains on them, unlike the twins.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1). Currently, fraction is {fraction}")
    if kind not in UNANSWERABLE_KINDS:
        raise ValueError(f"kind must be one of {UNANSWERABLE_KINDS}. Currently, kind is {kind!r}")
    if kind == "twin":
        return _add_twins(eval_set, fraction, seed)
    if kind == "twin-within":
        return _add_twins(eval_set, fraction, seed, kinds=("swap_within",))
    if kind == "written":
        return _add_written(eval_set, fraction, seed)
    rng = random.Random(seed)
    sources = sorted(eval_set.documents)
    held = set(rng.sample(sources, max(1, round(fraction * len(sources)))))
    kept = [s for s in sources if s not in held]
    if not kept:
        raise ValueError("no documents left after holding some out; lower --add-unanswerable")
    titles = {q.source: q.title for q in eval_set.questions}
    questions = []
    for q in eval_set.questions:
        if q.source not in held:
            questions.append(q)
            continue
        others = [s for s in kept if titles.get(s, s) != q.title] or kept
        other = rng.choice(others)
        questions.append(
            replace(q, id=f"{q.id}-unanswerable", answers=(), answer_starts=(), source=other,
                    context_start=0, context_end=len(eval_set.documents[other]))
        )
    documents = {s: t for s, t in eval_set.documents.items() if s not in held}
    kinds = {s: k for s, k in eval_set.kinds.items() if s not in held}
    return EvalSet(name=eval_set.name, questions=tuple(questions), documents=documents, kinds=kinds)


def _add_twins(eval_set: EvalSet, fraction: float, seed: int, kinds: tuple[str, ...] | None = None) -> EvalSet:
    from qa.eval.unanswerable import KINDS, perturb, pool_for

    kinds = kinds or KINDS
    rng = random.Random(seed)
    pool = pool_for(kinds, (eval_set.documents[s] for s in sorted(eval_set.documents)))

    def twin(q: EvalQuestion) -> str | None:
        made = (perturb(q.question, eval_set.context(q), pool, rng, kinds=kinds, answers=q.answers)
                if rng.random() < fraction else None)
        return made.question if made is not None else None

    return _replace_questions(eval_set, twin, "-twin")


def _add_written(eval_set: EvalSet, fraction: float, seed: int, path: str | Path | None = None) -> EvalSet:
    from qa.eval.unanswerable import NEAR_MISSES_HELDOUT, load_near_misses

    path = path or NEAR_MISSES_HELDOUT
    written = {of: q for (source, of), q in load_near_misses(path).items() if source == eval_set.name}
    if not any(q.id in written for q in eval_set.questions):
        raise ValueError(f"none of {eval_set.name}'s questions has a written near miss in {path}; they exist for "
                         "qa-train/new_wiki_v1.0.json with --heldout-only 50 (elsewhere use --unanswerable-kind twin)")
    rng = random.Random(seed)
    return _replace_questions(
        eval_set, lambda q: written[q.id] if q.id in written and rng.random() < fraction else None, "-written")


def _replace_questions(eval_set: EvalSet, unanswerable, suffix: str) -> EvalSet:
    """``eval_set`` with each question for which ``unanswerable(q)`` gives a text replaced by
    that unanswerable question over the same context (id + ``suffix``, no gold answers)."""
    questions = []
    for q in eval_set.questions:
        text = unanswerable(q)
        questions.append(q if text is None else replace(q, id=f"{q.id}{suffix}", question=text, answers=(), answer_starts=()))
    return replace(eval_set, questions=tuple(questions))


# ---- BEIR -----------------------------------------------------------------------------------------

def load_beir(folder: str | Path, split: str = "test") -> BeirSet:
    """A BEIR folder: corpus.jsonl, queries.jsonl and qrels/<split>.tsv (with a header line).

    Only queries that have judgments in the split are kept, as BEIR does.
    """
    root = Path(folder)
    need = [root / "corpus.jsonl", root / "queries.jsonl", root / "qrels" / f"{split}.tsv"]
    missing = [str(f) for f in need if not f.is_file()]
    if missing:
        raise DatasetError(f"{root} is not a BEIR folder: missing {', '.join(missing)}")
    corpus: dict[str, tuple[str, str]] = {}
    with open(need[0], encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                d = json.loads(line)
                corpus[str(d["_id"])] = (d.get("title", "") or "", d.get("text", "") or "")
    all_queries: dict[str, str] = {}
    with open(need[1], encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                d = json.loads(line)
                all_queries[str(d["_id"])] = d["text"]
    qrels: dict[str, dict[str, int]] = {}
    with open(need[2], encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        next(reader, None)  # header
        for row in reader:
            if len(row) >= 3:
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    queries = {q: all_queries[q] for q in sorted(qrels, key=_natural) if q in all_queries}
    return BeirSet(name=root.name, corpus=corpus, queries=queries, qrels={q: qrels[q] for q in queries})


def _natural(s: str) -> tuple:
    return (0, int(s), "") if s.isdigit() else (1, 0, s)
