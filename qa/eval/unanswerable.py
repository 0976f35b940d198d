"""Unanswerable twins of answerable questions, for teaching and checking "not found".

SQuAD 2.0's unanswerable questions were written against their paragraph: they name what
the paragraph names and have a plausible answer in it, but ask something it does not say.
Rajpurkar et al. (2018) sort them into negation, antonym, entity swap, mutual exclusion,
impossible condition and other. A reader that only ever saw "a passage on another topic"
as its no-answer examples learns topic mismatch, not this, and answers them anyway.

``perturb`` makes such a twin from an answerable question and its context by one of three
rules, each checked against the context so that the twin is not answerable from it:

- ``swap``: a name or number of the question is replaced by another of the same shape
  that the context does not contain ("When did Tesla move to Paris?" -> "... to Vienna?";
  "in 1887" -> "in 1893"); the names come from other contexts (``name_pool``).
- ``antonym``: a comparative word is flipped when its opposite is not in the context
  ("largest" -> "smallest", "first" -> "last", "before" -> "after").
- ``negation``: "not" goes after the verb of a wh-subject question ("Who was the first
  ..." -> "Who was not the first ..."), when the context has no negation.

and, when asked for (``ALL_KINDS``; it needs the gold answers), a fourth:

- ``swap_within``: a name or number of the question is replaced by another of the same
  shape that the context *does* contain, away from the gold answer ("When did Tesla move
  to Paris?" -> "When did Edison move to Paris?" over a text that names both). Every word
  of such a twin is in the context, so no "this word is missing" cue gives it away: this is
  SQuAD 2.0's entity swap. It is the noisiest rule (the text may happen to say that too).

The rules are simple on purpose (as in Jia & Liang 2017 and the rule-based baselines of
Zhu et al. 2019); what matters is that the context still holds a plausible answer, so the
reader must check the question's details rather than its topic.

Rules make a few kinds of near miss, and a reader that trains on them learns those kinds:
it then scores its own twins too low to stand in for the near misses it has never seen.
So near misses are also *written* (``load_near_misses``), in SQuAD 2.0's six ways, one per
answerable question of qa-train: ``data/near_misses_heldout.jsonl`` for the held-out
contexts (never trained on; what SQuAD 2.0's threshold is chosen on) and
``data/near_misses_train.jsonl``, ``data/near_misses_train_more.jsonl`` and
``data/near_misses_train_rest.jsonl`` (the rest of new_wiki's training contexts) for training
contexts (``train_reader --written-rate``). A second, independent pass that saw only the
paragraph and the near miss judged each training line (``second_pass``: "unanswerable",
"answerable" or "unsure"); ``load_near_misses(..., second_pass_only=True)`` keeps the
lines it judged unanswerable.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

_QA = Path(__file__).resolve().parent.parent
NEAR_MISSES_HELDOUT = _QA / "eval" / "data" / "near_misses_heldout.jsonl"
_TRAINING_DATA = _QA / "training" / "data"
NEAR_MISSES_TRAIN = _TRAINING_DATA / "near_misses_train.jsonl"
NEAR_MISSES_TRAIN_MORE = _TRAINING_DATA / "near_misses_train_more.jsonl"
NEAR_MISSES_TRAIN_REST = _TRAINING_DATA / "near_misses_train_rest.jsonl"

KINDS = ("swap", "antonym", "negation")
# Rules that need the original question's gold answers (``perturb(..., answers=...)``), not
# used unless asked for: ``swap_within`` keeps every word of the twin inside the context.
ALL_KINDS = KINDS + ("swap_within",)

_ANTONYM_PAIRS = (
    ("largest", "smallest"), ("biggest", "smallest"), ("highest", "lowest"), ("first", "last"),
    ("most", "least"), ("best", "worst"), ("oldest", "newest"), ("earliest", "latest"),
    ("longest", "shortest"), ("before", "after"), ("maximum", "minimum"), ("more", "less"),
    ("larger", "smaller"), ("higher", "lower"), ("older", "younger"), ("longer", "shorter"),
    ("increase", "decrease"), ("increased", "decreased"), ("north", "south"), ("east", "west"),
    ("northern", "southern"), ("eastern", "western"), ("won", "lost"), ("win", "lose"),
    ("start", "end"), ("began", "ended"), ("beginning", "end"), ("top", "bottom"),
    ("major", "minor"), ("positive", "negative"), ("public", "private"), ("import", "export"),
    ("imports", "exports"), ("above", "below"), ("inside", "outside"), ("early", "late"),
    ("strongest", "weakest"), ("fastest", "slowest"), ("richest", "poorest"), ("male", "female"),
    ("rise", "fall"), ("gained", "lost"), ("accepted", "rejected"), ("allowed", "forbidden"),
)
ANTONYMS: dict[str, str] = {}
for _a, _b in _ANTONYM_PAIRS:
    ANTONYMS.setdefault(_a, _b)
    ANTONYMS.setdefault(_b, _a)

_NEGATION = re.compile(r"\b(not|never|no|none|n't|nor|without)\b", re.IGNORECASE)
_NEGATABLE = re.compile(r"^(what|who|which)\s+(is|was|are|were|can|could|will|would|has|have|had)\s+(?!I\b)",
                        re.IGNORECASE)
_NAME = re.compile(r"\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+){0,2}\b")
_NUMBER = re.compile(r"\b\d{1,4}\b")
_WORD = re.compile(r"[A-Za-z]+")
_SENTENCE_START = re.compile(r"(?:[.!?:\"]\s*|\n\s*)$")
# Capitalised words that are not names (question words, pronouns, months are fine to swap).
_NOT_NAMES = {
    "What", "Who", "Whom", "Whose", "Which", "When", "Where", "Why", "How", "The", "A", "An", "In", "On", "At",
    "Of", "For", "To", "By", "Is", "Was", "Are", "Were", "Do", "Does", "Did", "Can", "Could", "I", "It", "This",
    "That", "These", "Those", "He", "She", "They", "We", "You", "His", "Her", "Their", "Its", "According", "After",
    "Before", "During", "If", "As", "And", "Or", "But", "From", "With", "Name", "Besides", "Other", "Along",
}


@dataclass(frozen=True)
class Perturbation:
    """An unanswerable twin: the new question, the rule that made it and what changed."""

    question: str
    kind: str
    old: str
    new: str


def name_pool(texts: Iterable[str], limit: int = 50_000) -> dict[int, list[str]]:
    """Names (runs of 1-3 capitalised words) found in ``texts``, by word count, to swap in.

    Args:
        texts: contexts to collect from (use other contexts than the ones perturbed).
        limit: stop after this many distinct names.

    Returns:
        ``{1: [...], 2: [...], 3: [...]}`` in first-seen order (deterministic).
    """
    seen: dict[str, None] = {}
    for text in texts:
        for name in _text_names(text):
            seen.setdefault(name, None)
        if len(seen) >= limit:
            break
    pool: dict[int, list[str]] = {1: [], 2: [], 3: []}
    for name in seen:
        pool[len(name.split())].append(name)
    return pool


def pool_for(kinds: Sequence[str], texts: Iterable[str]) -> dict[int, list[str]]:
    """The name pool ``perturb`` needs for ``kinds``: ``name_pool(texts)`` when the swap rule
    is among them (only it draws names from other texts), else empty (``texts`` unread)."""
    return name_pool(texts) if "swap" in kinds else {}


def load_near_misses(paths: str | Path | Sequence[str | Path],
                     second_pass_only: bool = False) -> dict[tuple[str, str], str]:
    """Written near misses, keyed by ``(source, of)``: the qa-train file (its stem, e.g.
    "new_wiki_v1.0") and the id of the answerable question each one stands in for.

    Each line of a JSONL file: ``source``, ``of``, ``question`` (the near miss: the same
    paragraph, a plausible answer in it, but the paragraph does not answer it), ``category``
    (SQuAD 2.0's kinds: negation, antonym, entity_swap, mutual_exclusion,
    impossible_condition, other), ``plausible_answer`` (verbatim in the paragraph),
    ``why_unanswerable`` and, where a second pass checked it, ``second_pass`` (its verdict:
    "unanswerable", "answerable" or "unsure"). Paragraphs are not stored: they are read from
    qa-train itself.

    Args:
        paths: one file or several (merged; a question has at most one near miss across them).
        second_pass_only: keep only the lines a second pass judged unanswerable.

    Raises:
        ValueError: a file cannot be read, or a line lacks a key or repeats a question.
    """
    out: dict[tuple[str, str], str] = {}
    seen: set[tuple[str, str]] = set()
    for p in [paths] if isinstance(paths, (str, Path)) else paths:
        p = Path(p)
        try:
            lines = p.read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise ValueError(f"cannot read the near misses {p} ({e})") from None
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                key, question = (str(row["source"]), str(row["of"])), row["question"].strip()
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                raise ValueError(f"{p}:{n} is not a near-miss line ({e}); each needs 'source', 'of' and 'question'") from None
            if key in seen:
                raise ValueError(f"{p}:{n}: a second near miss for question {key[1]} of {key[0]}; keep one per question")
            seen.add(key)
            if second_pass_only and row.get("second_pass") != "unanswerable":
                continue
            out[key] = question
    return out


def _text_names(text: str) -> Iterable[str]:
    """Names of 1-3 capitalised words in ``text``, in order (repeats included)."""
    for m in _NAME.finditer(text):
        if _SENTENCE_START.search(text[max(0, m.start() - 3):m.start()]) or m.start() == 0:
            continue  # a capital that only starts a sentence is no sign of a name
        words = m.group(0).split()
        if words[0] in _NOT_NAMES:
            words = words[1:]
        if words:
            yield " ".join(words)


def _question_targets(question: str, ctx_lower: str) -> list[tuple[int, int, str]]:
    """``(start, end, text)`` of the question's names and numbers that the context contains."""
    names = []
    for m in _NAME.finditer(question):
        words = m.group(0).split()
        start = m.start()
        while words and words[0] in _NOT_NAMES:
            start += len(words[0]) + 1
            words = words[1:]
        if words and start > 0:  # the question's first word is capitalised anyway
            names.append((start, start + len(" ".join(words)), " ".join(words)))
    numbers = [(m.start(), m.end(), m.group(0)) for m in _NUMBER.finditer(question)]
    return [t for t in names + numbers if _contains_word(ctx_lower, t[2])]


def _contains_word(text_lower: str, word: str) -> bool:
    return re.search(rf"\b{re.escape(word.lower())}\b", text_lower) is not None


def _swap(question: str, context: str, pool: dict[int, Sequence[str]], rng: random.Random) -> Perturbation | None:
    ctx_lower = context.lower()
    targets = _question_targets(question, ctx_lower)  # swap what the context names
    if not targets:
        return None
    rng.shuffle(targets)
    for s, e, old in targets:
        new = _replacement(old, question, context, ctx_lower, pool, rng)
        if new is not None:
            return Perturbation(question[:s] + new + question[e:], "swap", old, new)
    return None


def _replacement(old: str, question: str, context: str, ctx_lower: str, pool: dict[int, Sequence[str]],
                 rng: random.Random) -> str | None:
    """A number near ``old`` or a pooled name of as many words, that the context does not contain."""
    if old.isdigit():
        value = int(old)
        steps = [d for d in range(-12, 13) if d and value + d > 0]
        rng.shuffle(steps)
        return next((str(value + d) for d in steps if str(value + d) not in context), None)
    choices = pool.get(len(old.split())) or []
    for _ in range(20 if choices else 0):
        cand = rng.choice(choices)
        if cand != old and not _contains_word(ctx_lower, cand) and cand.lower() not in question.lower():
            return cand
    return None


def _swap_within(question: str, context: str, answers: Sequence[str], rng: random.Random) -> Perturbation | None:
    ctx_lower = context.lower()
    q_lower = question.lower()
    answers_lower = [a.lower() for a in answers]
    targets = _question_targets(question, ctx_lower)
    if not targets:
        return None
    ctx_names = list(dict.fromkeys(_text_names(context)))
    ctx_numbers = list(dict.fromkeys(m.group(0) for m in _NUMBER.finditer(context)))

    def unrelated(cand: str, old: str) -> bool:
        c, o = cand.lower(), old.lower()
        return (c != o and c not in o and o not in c and c not in q_lower
                and not any(c in a or a in c for a in answers_lower))

    rng.shuffle(targets)
    for s, e, old in targets:
        if old.isdigit():
            pool = [n for n in ctx_numbers if len(n) == len(old) and unrelated(n, old)]
        else:
            pool = [n for n in ctx_names if len(n.split()) == len(old.split()) and unrelated(n, old)]
        if pool:
            new = rng.choice(pool)
            return Perturbation(question[:s] + new + question[e:], "swap_within", old, new)
    return None


def _antonym(question: str, context: str, rng: random.Random) -> Perturbation | None:
    ctx_lower = context.lower()
    hits = [(m.start(), m.end(), m.group(0)) for m in _WORD.finditer(question)
            if m.group(0).lower() in ANTONYMS and not _contains_word(ctx_lower, ANTONYMS[m.group(0).lower()])]
    if not hits:
        return None
    s, e, old = rng.choice(hits)
    new = ANTONYMS[old.lower()]
    if old[0].isupper():
        new = new[0].upper() + new[1:]
    return Perturbation(question[:s] + new + question[e:], "antonym", old, new)


def _negation(question: str, context: str) -> Perturbation | None:
    m = _NEGATABLE.match(question)
    if m is None or _NEGATION.search(question) or _NEGATION.search(context):
        return None
    return Perturbation(question[: m.end()] + "not " + question[m.end():], "negation", "", "not")


def perturb(question: str, context: str, pool: dict[int, Sequence[str]], rng: random.Random,
            kinds: Sequence[str] = KINDS, answers: Sequence[str] = ()) -> Perturbation | None:
    """An unanswerable twin of ``question`` for ``context``, or None when no rule applies.

    Args:
        question: an answerable question.
        context: the text that answers it (stays the same; the twin asks what it does not say).
        pool: names to swap in (``name_pool`` over other contexts).
        rng: chooses the rule and what it changes (deterministic for a seeded generator).
        kinds: rules to try, in random order, the first that applies wins.
        answers: the question's gold answers; ``swap_within`` needs them (it never swaps in
            a name or number that is, or is part of, an answer) and is skipped without them.

    Returns:
        The twin, or None.
    """
    order = list(kinds)
    rng.shuffle(order)
    for kind in order:
        if kind == "swap":
            p = _swap(question, context, pool, rng)
        elif kind == "antonym":
            p = _antonym(question, context, rng)
        elif kind == "negation":
            p = _negation(question, context)
        elif kind == "swap_within":
            p = _swap_within(question, context, answers, rng) if answers else None
        else:
            raise ValueError(f"unknown kind {kind!r}; kinds are {ALL_KINDS}")
        if p is not None and p.question != question:
            return p
    return None
