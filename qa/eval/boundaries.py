"""An answer-boundary set built from qa-train: Wikipedia paragraphs the reader never trained on.

Where the reader finds the right place but cuts the answer wrong (stops inside a noun
phrase, runs past it into the clause) shows on prose whose questions have short gold
spans. This set holds every answerable question of the held-out paragraphs
(``is_heldout(context, 50)``, the reader's own held-out slice) of the Wikipedia sets of
qa-train, SQuADShifts ``new_wiki`` and QED (Natural Questions passages), each paragraph
its own document. Run it with ``--closed``: each question is read with its own paragraph.

The set is split by article into a ``tune`` part and a ``check`` part with the long-document
set's rule (``qa.eval.longdocs.part_of``, a stable hash of the title), so that the articles
held out there are held out here too.

Example:
    >>> s = load_boundaries("check")                           # doctest: +SKIP
    >>> len(s.questions), len(s.documents)                     # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from qa.eval.datasets import EvalQuestion, EvalSet, is_heldout
from qa.eval.longdocs import DEFAULT_DATA_DIR, HELDOUT_PER_MILLE, _read
from qa.eval.longdocs import part_of as longdocs_part

SOURCES = ("new_wiki_v1.0", "qed-nq-train")
PARTS = ("tune", "check", "all")


def part_of(title: str) -> str:
    """``"tune"`` or ``"check"``: which part an article's questions belong to."""
    return "tune" if longdocs_part(title) == "tune" else "check"


def load_boundaries(part: str = "check", data_dir: str | Path = DEFAULT_DATA_DIR) -> EvalSet:
    """The answer-boundary set (see the module docstring).

    Args:
        part: "tune", "check" or "all".
        data_dir: the qa-train folder.

    Returns:
        An EvalSet named ``boundaries-<part>``, documents named ``para:<set>/<title>#<i>``.
    """
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}. Currently, part is {part!r}")
    data_dir = Path(data_dir)
    documents: dict[str, str] = {}
    questions: list[EvalQuestion] = []
    for name in SOURCES:
        for article in _read(data_dir / f"{name}.json"):
            title = article.get("title", "")
            if part != "all" and part_of(title) != part:
                continue
            for i, para in enumerate(article["paragraphs"]):
                context = para["context"]
                if not is_heldout(context, HELDOUT_PER_MILLE):
                    continue
                source = f"para:{name}/{title}#{i}"
                for qa in para["qas"]:
                    answers = qa.get("answers") or []
                    if not answers:
                        continue
                    documents[source] = context
                    questions.append(EvalQuestion(
                        id=str(qa["id"]), question=qa["question"], answers=tuple(a["text"] for a in answers),
                        source=source, context_start=0, context_end=len(context),
                        answer_starts=tuple(int(a.get("answer_start", -1)) for a in answers), title=title))
    return EvalSet(name=f"boundaries-{part}", questions=tuple(questions), documents=documents)
