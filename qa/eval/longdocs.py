"""A long-document test set built from qa-train: whole articles, questions the text almost answers.

SQuAD's paragraphs are short and each question was written while looking at its paragraph.
People's documents are long. This set puts every paragraph of each SQuADShifts ``new_wiki``
article back together into one document per article (20,000 characters at the median) and
adds the PolicyQA privacy policies (long documents already) as further documents of the
collection. Questions are asked open, over all of them:

- **answerable**: the questions of the paragraphs the reader was not trained on
  (``is_heldout(context, 50)``, the reader's own held-out slice);
- **near miss** (unanswerable): for about half of those questions, the question is
  replaced by its written near miss (``unanswerable.load_near_misses``: same paragraph, a
  plausible answer in it, but the paragraph does not say it);
- **absent document** (unanswerable): the held-out questions of a quarter of the articles,
  whose documents are left out of the collection; their topic's neighbours stay.

PolicyQA's questions are not asked: they are generic ("How does this website inform users
about policy changes?"), so another policy of the collection answers them as well as the
gold one does. The labels carry some noise a person would see: a near miss written for one
paragraph may be answered by another paragraph of the same article.

The set is split by article into a tuning part (to choose thresholds and features on) and
a held-out part (to report), by a stable hash of the title, before any result is looked at.

Example:
    >>> s = load_longdocs("heldout")                      # doctest: +SKIP
    >>> len(s.documents), sum(not q.answerable for q in s.questions)   # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from qa.eval.datasets import DatasetError, EvalQuestion, EvalSet, is_heldout
from qa.eval.unanswerable import NEAR_MISSES_HELDOUT, load_near_misses

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "qa-train"
ARTICLES_FILE = "new_wiki_v1.0.json"
POLICY_FILES = ("policyqa-dev.json", "policyqa-test.json")
PARTS = ("tune", "heldout", "all")
HELDOUT_PER_MILLE = 50  # the reader's held-out slice of qa-train contexts
ABSENT_PER_MILLE = 250  # articles left out of the collection
NEAR_MISS_RATE = 0.5  # share of eligible questions replaced by their written near miss
SEPARATOR = "\n\n"


def _bucket(title: str, salt: str) -> int:
    return int(hashlib.sha1(f"{salt}:{title}".encode("utf-8")).hexdigest()[:8], 16) % 1000


def part_of(title: str) -> str:
    """``"tune"`` or ``"heldout"``: which part an article's questions belong to."""
    return "tune" if _bucket(title, "part") < 500 else "heldout"


def _read(path: Path) -> list[dict]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))["data"]
    except (OSError, ValueError, KeyError) as e:
        raise DatasetError(f"cannot read {path} ({e}); the long-document set is built from ../shared/data/qa-train") from None


def _document(article: dict) -> tuple[str, list[tuple[int, int]]]:
    """The article's paragraphs joined into one text, with each paragraph's span in it."""
    spans, parts, at = [], [], 0
    for para in article["paragraphs"]:
        context = para["context"]
        spans.append((at, at + len(context)))
        parts.append(context)
        at += len(context) + len(SEPARATOR)
    return SEPARATOR.join(parts), spans


def load_longdocs(part: str = "heldout", data_dir: str | Path = DEFAULT_DATA_DIR, seed: int = 0) -> EvalSet:
    """The long-document set (see the module docstring).

    Args:
        part: "tune", "heldout" or "all" (questions of which articles; the documents are the same).
        data_dir: the qa-train folder.
        seed: which questions are replaced by their near miss.

    Returns:
        An EvalSet named ``longdocs-<part>``, documents named ``longdoc:<set>/<title>``.
    """
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}. Currently, part is {part!r}")
    data_dir = Path(data_dir)
    near = {of: q for (source, of), q in load_near_misses(NEAR_MISSES_HELDOUT).items()
            if source == Path(ARTICLES_FILE).stem}
    rng = random.Random(seed)
    documents: dict[str, str] = {}
    questions: list[EvalQuestion] = []
    absent: list[tuple[str, dict, list[tuple[int, int]]]] = []
    for article in _read(data_dir / ARTICLES_FILE):
        title = article.get("title", "")
        text, spans = _document(article)
        source = f"longdoc:new_wiki/{title}"
        if _bucket(title, "absent") < ABSENT_PER_MILLE:
            absent.append((title, article, spans))
            continue
        documents[source] = text
        if part != "all" and part_of(title) != part:
            continue
        for para, (start, end) in zip(article["paragraphs"], spans):
            if not is_heldout(para["context"], HELDOUT_PER_MILLE):
                continue
            for qa in para["qas"]:
                answers = tuple(a["text"] for a in qa.get("answers", ()))
                if not answers:
                    continue
                starts = tuple(int(a["answer_start"]) for a in qa.get("answers", ()))
                base = EvalQuestion(id=str(qa["id"]), question=qa["question"], answers=answers, source=source,
                                    context_start=start, context_end=end, answer_starts=starts, title=title)
                if str(qa["id"]) in near and rng.random() < NEAR_MISS_RATE:
                    questions.append(EvalQuestion(id=f"{qa['id']}-nearmiss", question=near[str(qa["id"])], answers=(),
                                                  source=source, context_start=start, context_end=end, title=title))
                else:
                    questions.append(base)
    # The questions of an absent article ask about a text the collection lacks; like
    # add_unanswerable's other-article kind, each points at a present article (its whole text)
    # as the context a closed run reads.
    present = sorted(documents)
    for title, article, _ in absent:
        if part != "all" and part_of(title) != part:
            continue
        for para in article["paragraphs"]:
            if not is_heldout(para["context"], HELDOUT_PER_MILLE):
                continue
            for qa in para["qas"]:
                if qa.get("answers"):
                    other = rng.choice(present)
                    questions.append(EvalQuestion(id=f"{qa['id']}-absent", question=qa["question"], answers=(),
                                                  source=other, context_start=0, context_end=len(documents[other]),
                                                  title=title))
    for name in POLICY_FILES:
        for policy in _read(data_dir / name):
            text, _ = _document(policy)
            documents[f"longdoc:policyqa/{policy.get('title', '')}"] = text
    return EvalSet(name=f"longdocs-{part}", questions=tuple(questions), documents=documents)
