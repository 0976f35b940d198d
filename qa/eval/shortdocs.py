"""A short-document set built from qa-train: single paragraphs, asked open, some questions they do not answer.

The long-document set (``qa.eval.longdocs``) teaches the answer-or-abstain decision the case
where several passages of one long text compete. Its counterpart is the collection of short,
clean paragraphs, each its own document, where the reader's score is what it was trained to
be. This set holds the held-out paragraphs of ``new_wiki``, ``reddit``, ``amazon_reviews``
and ``qed`` (``is_heldout(context, 50)``: the reader never trained on them), each one
document, and asks open over all of them:

- **answerable**: one question per paragraph (chosen with a seeded draw), three for the
  ``new_wiki`` paragraphs (the ones with written near misses);
- **near miss** (unanswerable): for about half of the ``new_wiki`` questions that have a
  written near miss (``unanswerable.load_near_misses``), the near miss instead;
- **absent document** (unanswerable): the questions of a fifth of the articles, whose
  paragraphs are left out of the collection.

Only ``new_wiki`` articles of the long-document set's tuning part are used, so no question
of ``longdocs-heldout`` is asked here in another form. The set is split into a ``fit`` part
and a ``check`` part by a stable hash of the article (of the paragraph for ``reddit``, one
"article" of unrelated comments), fixed before any result is looked at.

Example:
    >>> s = load_shortdocs("check")                                         # doctest: +SKIP
    >>> len(s.documents), sum(not q.answerable for q in s.questions)         # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

from qa.eval.datasets import EvalQuestion, EvalSet, is_heldout
from qa.eval.longdocs import DEFAULT_DATA_DIR, HELDOUT_PER_MILLE, NEAR_MISS_RATE, _read
from qa.eval.longdocs import part_of as longdocs_part
from qa.eval.unanswerable import NEAR_MISSES_HELDOUT, load_near_misses

SOURCES = ("new_wiki_v1.0", "reddit_v1.0", "amazon_reviews_v1.0", "qed-nq-train")
BY_PARAGRAPH = ("reddit_v1.0",)  # one "article" holding unrelated paragraphs: split and drop by paragraph
PARTS = ("fit", "check", "all")
ABSENT_PER_MILLE = 200  # articles whose paragraphs are left out of the collection
QUESTIONS_PER_PARAGRAPH = {"new_wiki_v1.0": 3}  # elsewhere one


def _bucket(key: str, salt: str) -> int:
    return int(hashlib.sha1(f"short-{salt}:{key}".encode("utf-8")).hexdigest()[:8], 16) % 1000


def part_of(key: str) -> str:
    """``"fit"`` or ``"check"``: which part the questions of an article (or paragraph) belong to."""
    return "fit" if _bucket(key, "part") < 500 else "check"


def load_shortdocs(part: str = "check", data_dir: str | Path = DEFAULT_DATA_DIR, seed: int = 0) -> EvalSet:
    """The short-document set (see the module docstring).

    Args:
        part: "fit", "check" or "all" (questions of which articles; the documents are the same).
        data_dir: the qa-train folder.
        seed: which question of each paragraph is asked, and which are replaced by their near miss.

    Returns:
        An EvalSet named ``shortdocs-<part>``, documents named ``short:<set>/<title>#<i>``.
    """
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}. Currently, part is {part!r}")
    data_dir = Path(data_dir)
    near = load_near_misses(NEAR_MISSES_HELDOUT)
    rng = random.Random(seed)
    documents: dict[str, str] = {}
    asked: list[tuple[str, EvalQuestion, bool]] = []  # (part, question, its document is absent)
    for name in SOURCES:
        for article in _read(data_dir / f"{name}.json"):
            title = article.get("title", "")
            if name == "new_wiki_v1.0" and longdocs_part(title) != "tune":
                continue
            for i, para in enumerate(article["paragraphs"]):
                context = para["context"]
                qas = [qa for qa in para["qas"] if qa.get("answers")]
                if not qas or not is_heldout(context, HELDOUT_PER_MILLE):
                    continue
                key = f"{name}/{context}" if name in BY_PARAGRAPH else f"{name}/{title}"
                source = f"short:{name}/{title}#{i}"
                absent = _bucket(key, "absent") < ABSENT_PER_MILLE
                if not absent:
                    documents[source] = context
                for qa in rng.sample(qas, min(len(qas), QUESTIONS_PER_PARAGRAPH.get(name, 1))):
                    asked.append((part_of(key), _question(name, qa, source, context, title, absent, near, rng), absent))
    # An absent paragraph's question points at a present document (the whole of it) as the
    # context a closed run reads, as the long-document set's absent articles do.
    present = sorted(documents)
    questions = []
    for p, q, absent in asked:
        if absent:
            other = rng.choice(present)
            q = EvalQuestion(id=f"{q.id}-absent", question=q.question, answers=(), source=other, context_start=0,
                             context_end=len(documents[other]), title=q.title)
        if part in ("all", p):
            questions.append(q)
    return EvalSet(name=f"shortdocs-{part}", questions=tuple(questions), documents=documents)



def _question(name: str, qa: dict, source: str, context: str, title: str, absent: bool, near: dict,
              rng: random.Random) -> EvalQuestion:
    """The question asked for ``qa``: itself, or its written near miss for about half of those that have one."""
    written = near.get((name, str(qa["id"])))
    if not absent and written and rng.random() < NEAR_MISS_RATE:
        return EvalQuestion(id=f"{qa['id']}-nearmiss", question=written, answers=(), source=source,
                            context_start=0, context_end=len(context), title=title)
    return EvalQuestion(id=str(qa["id"]), question=qa["question"], answers=tuple(a["text"] for a in qa["answers"]),
                        source=source, context_start=0, context_end=len(context),
                        answer_starts=tuple(int(a.get("answer_start", -1)) for a in qa["answers"]), title=title)
