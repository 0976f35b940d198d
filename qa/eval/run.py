"""Run the engine over a QA test set and score it (BEIR retrieval sets: ``qa.eval.beir``).

Every question is answered once with ``min_score=0.0`` so each gets a prediction and a
score; abstention thresholds are then applied here (the engine's own rule: answer when
``score >= min_score``), which gives the default-threshold figures, the best threshold
and the F1-vs-threshold curve from one pass.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from statistics import mean
from typing import Callable, Sequence

from index import Index, IndexSettings
from index.hashing import sha256_bytes
from index.types import Document
from qa.engine import Engine, QuestionError
from qa.eval import metrics
from qa.eval.datasets import (
    EvalQuestion, EvalSet, add_unanswerable, is_heldout, keep_documents, load_dataset, sample,
)
from qa.readers.base import Reader
from qa.settings import QASettings
from qa.types import Answer, Passage

MODES = ("open", "closed")
RECALL_KS = (1, 3, 5, 10, 20)  # recall@k reported for those k up to the passages read (top_k)
DEFAULT_OUT_ROOT = Path("eval-output")


@dataclass(frozen=True)
class EvalConfig:
    """How an evaluation runs.

    Args:
        mode: "open" (index every context, answer from retrieval, as a user would) or
            "closed" (give the reader only the gold context: extraction alone).
        reader: "sentence", "neural" or "auto" (as ``QASettings.reader``).
        min_score: the abstention threshold the headline figures use; None uses the reader's own
            (``reader.threshold``, as the engine does when ``QASettings.min_score`` is None).
        top_k: passages read per question; None uses the engine's default.
        fusion_weight: the engine's ``QASettings.fusion_weight`` for this run; None: its default.
        early_exit: the engine's ``QASettings.early_exit`` for this run (1.0 reads every
            passage); None: its default.
        decider: the engine's ``QASettings.decider`` in open mode ("auto": the answer-or-abstain
            model, whose threshold is then the default; "off": the reader's score alone).
        decider_file: with ``decider="auto"``, the answer-or-abstain model to use instead of the
            shipped ``qa/models/decider.json`` (one written by ``python -m qa.training.decision --out``).
        reader_precision: the neural reader's arithmetic (``QASettings.reader_precision``).
        reader_dir: the neural reader's folder (``QASettings.reader_dir``; None: the shipped one).
        answer_boundaries: ``QASettings.answer_boundaries`` (False: the model's own best spans).
        limit: evaluate a random sample of this many questions (None: all).
        seed: seed of that sample (and of ``add_unanswerable``).
        index: an existing index folder to answer from (open mode); None builds one from the test set.
        index_cache: where the built index is kept between runs; None: eval-output/index-cache/<set>-<hash>.
        add_unanswerable: in (0, 1): hold out this share of contexts and turn their questions into
            unanswerable ones (see ``datasets.add_unanswerable``); 0 leaves the set as it is.
        unanswerable_kind: how ``add_unanswerable`` makes them: "other-article" (pair with
            another article's context), "twin"/"twin-within" (SQuAD 2.0-like twins of the
            questions, made by rules) or "written" (near misses written for qa-train/new_wiki).
        progress: show progress bars.
        beir_candidates: chunks each retriever returns per BEIR query (enough for recall@100 over documents).
        heldout_per_mille: keep only the contexts the neural reader's training held out
            (``datasets.is_heldout`` with this share per thousand, 50 by default there), so a
            threshold chosen on qa-train data is not chosen on the reader's own training questions.
    """

    mode: str = "open"
    reader: str = "auto"
    min_score: float | None = None
    top_k: int | None = None
    fusion_weight: float | None = None
    early_exit: float | None = None
    decider: str = "auto"
    decider_file: str | None = None
    reader_precision: str = "auto"
    reader_dir: str | None = None
    answer_boundaries: bool = True
    limit: int | None = None
    seed: int = 0
    index: str | None = None
    index_cache: str | None = None
    add_unanswerable: float = 0.0
    unanswerable_kind: str = "other-article"
    progress: bool = True
    beir_candidates: int = 1000
    heldout_per_mille: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}. Currently, mode is {self.mode!r}")
        if self.limit is not None and self.limit <= 0:
            raise ValueError(f"limit must be greater than 0. Currently, limit is {self.limit}")
        if self.min_score is not None and not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1]. Currently, min_score is {self.min_score}")
        if not 0.0 <= self.add_unanswerable < 1.0:
            raise ValueError(f"add_unanswerable must be in [0, 1). Currently, it is {self.add_unanswerable}")
        if self.beir_candidates < 100:
            raise ValueError(f"beir_candidates must be at least 100 (for recall@100). Currently, it is {self.beir_candidates}")
        # Validates reader, top_k and min_score with the engine's own messages.
        self.qa_settings()

    def qa_settings(self) -> QASettings:
        """The engine settings for the pass: every question answered (min_score 0)."""
        base = QASettings(reader=self.reader, reader_precision=self.reader_precision, reader_dir=self.reader_dir,
                          decider=self.decider, decider_file=self.decider_file,
                          answer_boundaries=self.answer_boundaries)
        top_k = self.top_k if self.top_k is not None else base.top_k
        return base.with_overrides(min_score=0.0, top_k=top_k, retrieve_k=max(base.retrieve_k, top_k),
                                   fusion_weight=self.fusion_weight, early_exit=self.early_exit)


@dataclass(frozen=True)
class QuestionResult:
    """One question's outcome. EM/F1 are 0/1 and [0, 1]; ``em``/``f1`` at the default threshold."""

    id: str
    question: str
    answers: tuple[str, ...]
    source: str
    prediction: str  # the engine's best answer, before abstention
    score: float
    answered: bool  # score >= the default threshold
    em: float
    f1: float
    em_always: float  # never abstaining
    f1_always: float
    sentence_correct: bool | None  # None for unanswerable questions
    citation_correct: bool | None
    gold_rank: int | None  # 1-based rank of the gold context among the passages read (open mode)
    latency_ms: float
    cited_source: str
    cited_quote: str

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


@dataclass(frozen=True)
class EvalReport:
    """What ``evaluate`` measured: headline figures, the threshold curve and every question."""

    name: str
    dataset: str
    mode: str
    reader: str
    config: dict
    figures: dict
    curve: tuple[dict, ...]
    results: tuple[QuestionResult, ...] = field(repr=False)
    started: str = ""

    def to_dict(self, with_results: bool = False) -> dict:
        d = {
            "name": self.name, "dataset": self.dataset, "mode": self.mode, "reader": self.reader,
            "config": self.config, "figures": self.figures, "curve": list(self.curve), "started": self.started,
        }
        if with_results:
            d["results"] = [asdict(r) for r in self.results]
        return d


# ---- preparing ------------------------------------------------------------------------------------

def default_index_cache(documents: dict[str, str], name: str, out_root: Path = DEFAULT_OUT_ROOT,
                        embedder=None) -> Path:
    """eval-output/index-cache/<name>-<hash of the document set>: one cache per distinct corpus,
    with ``-int8`` for an int8 ``embedder`` (an index holds the vectors of one embedder family;
    None: the embedder a new index chooses, ``index.embedder_record.NEW_INDEX`` where ONNX
    Runtime runs)."""
    from index.embedder_record import family
    from index.store import chosen_backend

    h = hashlib.sha256()
    for s in sorted(documents):
        h.update(s.encode("utf-8") + b"\0" + sha256_bytes(documents[s].encode("utf-8")).encode() + b"\n")
    backend = embedder.backend if embedder is not None else chosen_backend("auto", None)
    variant = "-int8" if family(backend) == "int8" else ""
    return out_root / "index-cache" / f"{name}-{h.hexdigest()[:10]}{variant}"


def sync_index(path: str | Path, documents: dict[str, str], kinds: dict[str, str] | None = None, embedder=None,
               progress: bool = True) -> Index:
    """An index at ``path`` holding exactly ``documents`` (source -> text); only new or changed ones are embedded."""
    kinds = kinds or {}
    index = Index.open(path, IndexSettings(show_progress=progress), create=True, embedder=embedder)
    have = {d.source: d.sha256 for d in index.documents()}
    want = {s: sha256_bytes(t.encode("utf-8")) for s, t in documents.items()}
    stale = [s for s in have if s not in want]
    if stale:
        index.remove(stale)
    new = [Document(source=s, text=documents[s], sha256=want[s], kind=kinds.get(s, "txt"))
           for s in sorted(documents) if have.get(s) != want[s]]
    if new:
        index.add_documents(new, quiet=not progress)
    return index


def prepare(dataset: str | Path | EvalSet, config: EvalConfig) -> EvalSet:
    """Load, derive (add_unanswerable) and sample the test set as the config says."""
    eval_set = dataset if isinstance(dataset, EvalSet) else load_dataset(dataset)
    if config.heldout_per_mille:
        eval_set = keep_documents(eval_set, lambda text: is_heldout(text, config.heldout_per_mille))
    if config.add_unanswerable:
        eval_set = add_unanswerable(eval_set, config.add_unanswerable, seed=config.seed, kind=config.unanswerable_kind)
    return sample(eval_set, config.limit, config.seed)


def run_name(eval_set: EvalSet, config: EvalConfig) -> str:
    """A folder name saying what was run, e.g. ``dev-v1.1-open-n500-s0``."""
    parts = [eval_set.name, config.mode]
    if config.heldout_per_mille:
        parts.append(f"heldout{config.heldout_per_mille}")
    if config.add_unanswerable:
        suffix = {"twin": "-twins", "twin-within": "-twins-within", "written": "-written"}.get(config.unanswerable_kind, "")
        parts.append(f"unans{config.add_unanswerable:g}{suffix}")
    if config.limit:
        parts.append(f"n{config.limit}-s{config.seed}")
    return "-".join(parts)


# ---- scoring one question -------------------------------------------------------------------------

def score_question(q: EvalQuestion, answer: Answer, threshold: float, gold_span: tuple[int, int],
                   gold_rank: int | None, latency_ms: float) -> QuestionResult:
    """Score ``answer`` for ``q``. ``gold_span`` is the gold context in the coordinates of the citations."""
    prediction = answer.text
    em, f1 = metrics.score_at_threshold(prediction, answer.score, q.answers, threshold)
    cited = answer.citations[0] if answer.citations else None
    sentence_ok = citation_ok = None
    if q.answerable:
        sentence_ok = cited is not None and metrics.contains_answer(cited.quote, q.answers)
        answer_spans = [(gold_span[0] + s, gold_span[0] + e) for s, e in q.answer_spans()]
        citation_ok = cited is not None and metrics.citation_correct(
            (cited.start, cited.end), cited.source, cited.quote, q.source, gold_span, answer_spans, q.answers
        )
    return QuestionResult(
        id=q.id, question=q.question, answers=q.answers, source=q.source, prediction=prediction,
        score=float(answer.score), answered=bool(prediction) and answer.score >= threshold, em=em, f1=f1,
        em_always=metrics.exact_match(prediction, q.answers), f1_always=metrics.f1_score(prediction, q.answers),
        sentence_correct=sentence_ok, citation_correct=citation_ok, gold_rank=gold_rank,
        latency_ms=round(latency_ms, 3), cited_source=cited.source if cited else "", cited_quote=cited.quote if cited else "",
    )


# ---- figures --------------------------------------------------------------------------------------

def _pct(values: Sequence[float]) -> float | None:
    return round(100.0 * mean(values), 2) if values else None


def threshold_curve(results: Sequence[QuestionResult], steps: int = 100) -> tuple[dict, ...]:
    """EM/F1 (all, HasAns, NoAns) and share answered at thresholds 0, 1/steps, ..., 1."""
    rows = []
    for i in range(steps + 1):
        t = i / steps
        ems, f1s, has, no, answered = [], [], [], [], 0
        for r in results:
            em, f1 = metrics.score_at_threshold(r.prediction, r.score, r.answers, t)
            ems.append(em)
            f1s.append(f1)
            (has if r.answerable else no).append(f1)
            answered += bool(r.prediction) and r.score >= t
        rows.append({"threshold": round(t, 4), "exact_match": _pct(ems), "f1": _pct(f1s), "has_ans_f1": _pct(has),
                     "no_ans_accuracy": _pct(no), "answered": _pct([1.0] * answered + [0.0] * (len(results) - answered))})
    return tuple(rows)


def recall_ks(top_k: int) -> tuple[int, ...]:
    """The k of recall@k an open run reports: those of ``RECALL_KS`` up to ``top_k``, and ``top_k``."""
    return tuple(sorted({k for k in RECALL_KS if k <= top_k} | {top_k}))


def summarize(results: Sequence[QuestionResult], threshold: float, wall_seconds: float,
              retrieval_ks: Sequence[int] = (), reader_threshold: float | None = None) -> dict:
    """The headline figures (percentages) of a run at ``threshold``; also at ``reader_threshold`` when that
    differs; recall@k for each of ``retrieval_ks`` and MRR over the passages read (open mode)."""
    has = [r for r in results if r.answerable]
    no = [r for r in results if not r.answerable]
    fig: dict = {
        "questions": len(results), "answerable": len(has), "unanswerable": len(no), "threshold": threshold,
        "exact_match": _pct([r.em for r in results]), "f1": _pct([r.f1 for r in results]),
        "has_ans_exact_match": _pct([r.em for r in has]), "has_ans_f1": _pct([r.f1 for r in has]),
        "no_ans_accuracy": _pct([r.em for r in no]),
        "answered": _pct([float(r.answered) for r in results]),
        "always_answer_exact_match": _pct([r.em_always for r in results]),
        "always_answer_f1": _pct([r.f1_always for r in results]),
    }
    if results:
        conf = [r.score for r in results]
        for key, metric in (("exact_match", metrics.exact_match), ("f1", metrics.f1_score)):
            t, value = metrics.best_threshold(
                conf, [metric(r.prediction, r.answers) for r in results], [metric("", r.answers) for r in results]
            )
            fig[f"best_{key}"] = round(100 * value, 2)
            fig[f"best_{key}_threshold"] = t
    default = reader_threshold
    if default is not None and threshold != default:  # also at the reader's own threshold, for comparison
        at = [metrics.score_at_threshold(r.prediction, r.score, r.answers, default) for r in results]
        fig["engine_default_threshold"] = default
        fig["engine_default_exact_match"] = _pct([em for em, _ in at])
        fig["engine_default_f1"] = _pct([f1 for _, f1 in at])
    fig["sentence_accuracy"] = _pct([float(bool(r.sentence_correct)) for r in has])
    fig["citation_accuracy"] = _pct([float(bool(r.citation_correct)) for r in has])
    for k in retrieval_ks:
        fig[f"recall@{k}"] = _pct([metrics.recall_at_k(r.gold_rank, k) for r in has])
    if retrieval_ks:
        fig[f"mrr@{max(retrieval_ks)}"] = round(mean(metrics.reciprocal_rank(r.gold_rank) for r in has), 4) if has else None
    lat = [r.latency_ms for r in results]
    fig["latency_p50_ms"] = round(metrics.percentile(lat, 50), 1)
    fig["latency_p95_ms"] = round(metrics.percentile(lat, 95), 1)
    fig["questions_per_second"] = round(len(results) / wall_seconds, 2) if wall_seconds > 0 else None
    return fig


# ---- running --------------------------------------------------------------------------------------

def progress_bar(items, enabled: bool, desc: str):
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="q", dynamic_ncols=True)


def passages_read(answer: Answer) -> Sequence[Passage]:
    """The passages retrieval gave the engine for ``answer``, best-retrieved first: retrieval is
    scored from these, so evaluation never retrieves a second time."""
    return answer.passages


def gold_rank(passages: Sequence[Passage], source: str, gold: tuple[int, int]) -> int | None:
    """1-based rank of the first passage that overlaps the gold context ``gold`` of ``source``; None if none does."""
    return next((i for i, p in enumerate(passages, start=1)
                 if p.source == source and metrics.spans_overlap((p.start, p.end), gold)), None)


@dataclass(frozen=True)
class _Asker:
    """How one mode answers: ``answer(q)`` (the timed part), then ``locate(q, answer)`` gives the gold
    context in the citations' coordinates and the gold passage's rank among those read (None in closed mode)."""

    reader: Reader
    answer: Callable[[EvalQuestion], Answer]
    locate: Callable[[EvalQuestion, Answer], tuple[tuple[int, int], int | None]]
    threshold: float  # the engine's own abstention threshold for these answers' scores


def _open_asker(eval_set: EvalSet, config: EvalConfig, settings: QASettings, embedder) -> _Asker:
    """Open mode: index every context and answer from retrieval, as a user would."""
    if config.index:
        index = Index.open(config.index, embedder=embedder)
    else:
        cache = Path(config.index_cache) if config.index_cache else default_index_cache(
            eval_set.documents, eval_set.name, embedder=embedder)
        index = sync_index(cache, eval_set.documents, eval_set.kinds, embedder=embedder, progress=config.progress)
    engine = Engine(index, settings)
    engine.decider(settings.decider_file)  # an unreadable decision model is refused before any question
    index.embed(["warm up"])  # load the embedding model now, not inside the first question's latency

    def locate(q: EvalQuestion, answer: Answer):
        gold = (q.context_start, q.context_end)
        return gold, gold_rank(passages_read(answer), q.source, gold)

    return _Asker(engine.reader(settings.reader), lambda q: engine.ask(q.question), locate,
                  engine.default_threshold(settings.reader))


def _closed_asker(eval_set: EvalSet, config: EvalConfig, settings: QASettings, embedder) -> _Asker:
    """Closed mode: the reader gets only the gold context (extraction alone)."""
    from qa.engine import answer_from_context, context_reader

    reader = context_reader(config.reader, settings, embed=embedder.encode if embedder is not None else None)

    def answer(q: EvalQuestion) -> Answer:
        return answer_from_context(q.question, eval_set.context(q), source=q.source, reader=reader, settings=settings)

    return _Asker(reader, answer, lambda q, _: ((0, len(eval_set.context(q))), None), reader.threshold)


def evaluate(dataset: str | Path | EvalSet, config: EvalConfig | None = None, embedder=None, **overrides) -> EvalReport:
    """Answer every question of a test set and score the answers.

    Args:
        dataset: a SQuAD .json / .jsonl path, or a loaded ``EvalSet``.
        config: how to run; keyword ``overrides`` change single fields (``mode="closed"``, ``limit=100``).
        embedder: an already loaded ``index.embedding.Embedder`` (None: the shared one).

    Returns:
        The ``EvalReport`` (write it with ``qa.eval.report.write_report``).

    Example:
        >>> r = evaluate("tests/data/seed_questions.jsonl", mode="closed")    # doctest: +SKIP
        >>> r.figures["f1"]                                                     # doctest: +SKIP
    """
    config = replace(config or EvalConfig(), **overrides)
    eval_set = prepare(dataset, config)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    settings = config.qa_settings()
    results: list[QuestionResult] = []
    skipped: list[dict] = []  # questions the engine refuses (empty, too long): reported, not fatal
    setup_began = time.perf_counter()
    asker = (_open_asker if config.mode == "open" else _closed_asker)(eval_set, config, settings, embedder)
    reader_threshold = float(asker.threshold)
    threshold = config.min_score if config.min_score is not None else reader_threshold
    setup_seconds = time.perf_counter() - setup_began
    reader_name = asker.reader.name
    answer_seconds = 0.0
    for q in progress_bar(eval_set.questions, config.progress, f"{eval_set.name} {config.mode}"):
        began = time.perf_counter()
        try:
            answer = asker.answer(q)
        except QuestionError as e:
            skipped.append({"id": q.id, "reason": str(e)})
            continue
        elapsed = time.perf_counter() - began
        answer_seconds += elapsed
        reader_name = answer.reader or reader_name
        gold, rank = asker.locate(q, answer)
        results.append(score_question(q, answer, threshold, gold, rank, elapsed * 1000))
    figures = summarize(results, threshold, answer_seconds, retrieval_ks=recall_ks(settings.top_k) if config.mode == "open" else (),
                        reader_threshold=reader_threshold)
    figures["setup_seconds"] = round(setup_seconds, 1)
    figures["documents"] = len(eval_set.documents)
    figures["reader_precision"] = getattr(asker.reader, "precision", None)  # as resolved ("auto" -> fp32/bf16)
    figures["early_exit"] = settings.early_exit if config.mode == "open" else None
    figures["skipped"] = skipped
    return EvalReport(
        name=run_name(eval_set, config), dataset=str(dataset if not isinstance(dataset, EvalSet) else dataset.name),
        mode=config.mode, reader=reader_name, config=asdict(config), figures=figures,
        curve=threshold_curve(results), results=tuple(results), started=started,
    )
