"""Follow-up questions: resolve "he", "it", "there", "that company" and "and ZTE?" against earlier turns.

No language model: ``qa.mentions`` lists what the earlier questions and answers name, each
with a kind (a person, a place, an organisation or thing, a group); a follow-up's pronouns
are replaced by the most recent mention of a fitting kind: "he"/"she" a person; "it" a thing
or a place, then a group, then a name that only looks like a person's ("Caribou Coffee");
"they" a group before a thing; "there" a place, then a one-word name of unknown kind. Within
the latest turn with a fitting mention, what the conversation is about comes first (what a
pronoun of that turn meant), then what the question asked for (its answer), then the
question's subject ("did *the DOJ* charge"); a follow-up that repeats a word of that question
("Where was the game *played*?" "When was it *played*?") keeps its subject before the answer.
"that alliance" means the latest name with that word, or the answer to "which alliance ...?".
The rewritten question is answered as usual, and shown ("Understood as: ...") so a wrong
rewrite is visible.

How a rewrite reads (the conversation sets follow the same rules):
- a pronoun becomes the name as written earlier, with its article ("the Chetniks"); a
  person an answer names by a full name after a title goes without the title and a
  following "of <place>" ("Dwight D. Eisenhower" for "President Dwight D. Eisenhower",
  while "President Trump" stays);
- a possessive becomes "X's", or "X'" for a plural ("the Chetniks'", "goaltenders'");
- "there" becomes "in X" for a bare name (a city, a country: "in Paris") and "at X" for a
  name with an article or a building or institution word ("at the Center for ...",
  "at Oxford Castle");
- "and ZTE?" repeats the last question with the name swapped (an adjective for an
  adjective: "and Democratic?" after "... identify as Republican according to Gallup?");
  "and when?" or "when?" with the question word swapped, "By which treaty?" with the
  question phrase swapped, "what about in 2004?" with the phrase "in <year>" swapped (or
  added).

A question that needs no context is left exactly as it was. Usage: ``Conversation``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

from qa.mentions import (
    AUX, GROUP, KIND_NOUNS, NOT_POSSESSED, ORG_WORDS, PERSON, PHRASE_END, PLACE, PREPOSITIONS, SITE_WORDS, THING, WH,
    Mention, kind_of, mentions, names,
)
from qa.types import Answer

__all__ = ["Conversation", "Mention", "Turn", "mentions", "rewrite"]

GUESSED = "guessed person"  # a tier for "it": a name that only looks like a person's
_PREP = "|".join(PREPOSITIONS)
_ELLIPSIS = re.compile(r"^\s*(?:and|what about|how about|and what about|same for|also)\s+(?P<rest>.+?)\s*[?.!]*\s*$",
                       re.IGNORECASE)
# "when?", "and why?", "By which treaty?", "in what year?": a question phrase alone.
_WH_PHRASE = rf"(?:(?:{_PREP})\s+)?(?:(?:which|what|whose|how\s+many|how\s+much)\s+\w+|when|where|why|how|who|whom|what)"
_WH_ALONE = re.compile(rf"^\s*(?:and\s+)?(?P<wh>{_WH_PHRASE})\s*[?.!]*\s*$", re.IGNORECASE)
_LEADING_WH = re.compile(rf"^\s*{_WH_PHRASE}\b", re.IGNORECASE)
_PREP_PHRASE = re.compile(rf"^(?P<prep>{_PREP})\s+(?P<obj>.+)$", re.IGNORECASE)
_YEAR = r"\d{3,4}s?"
_ADJECTIVE = re.compile(r"^[A-Z][a-z]+(?:an|ic|ese|ish|al)$")  # "Republican", "Democratic"
_THERE_EXISTENTIAL = re.compile(r"\b(?:is|are|was|were|will be|be)\s+there\b|\bthere\s+(?:is|are|was|were|be)\b",
                                re.IGNORECASE)
_DEMONSTRATIVE = re.compile(r"\b(?i:that|this|the said|the same)\s+([a-z]+)\b")
_NOT_CONTENT = frozenset(AUX) | frozenset(WH) | PHRASE_END | frozenset(
    "about also else from into with then than what does doing done other same".split())


@dataclass(frozen=True)
class Turn:
    """One exchange: what was asked, what it was understood as, and the answer."""

    question: str
    understood_as: str
    answer: Answer | None = None

    def to_dict(self) -> dict:
        return {"question": self.question, "understood_as": self.understood_as,
                "answer": self.answer.to_dict() if self.answer else None}

    @classmethod
    def from_dict(cls, d: dict) -> Turn:
        answer = d.get("answer")
        return cls(question=d["question"], understood_as=d.get("understood_as") or d["question"],
                   answer=Answer.from_dict(answer) if answer else None)


def _content_words(text: str) -> set[str]:
    """Lowercase words of four letters or more that carry meaning ("played", "member")."""
    return {w for w in re.findall(r"\b[a-z][a-z'-]{3,}\b", text) if w not in _NOT_CONTENT}


def _fits(m: Mention, kinds: Sequence[str], phrases: bool) -> bool:
    return (phrases or not m.phrase) and (m.kind in kinds or (GUESSED in kinds and m.kind == PERSON and m.guess))


def _pick(found: Sequence[Mention], tiers: Sequence[Sequence[str]], phrases: bool = False,
          parallel: frozenset[int] = frozenset()) -> Mention | None:
    """What a pronoun points at: the first tier of kinds with a mention; in it, the latest turn
    with one, and in that turn its topic, else what was asked for (the answer), else the
    subject, else the last; the subject before the answer in a turn the follow-up echoes
    (``parallel``)."""
    for kinds in tiers:
        fitting = [m for m in found if _fits(m, kinds, phrases)]
        if fitting:
            turn = fitting[-1].turn
            same = [m for m in fitting if m.turn == turn]
            topic = [m for m in same if m.topic]
            answers = [m for m in same if m.from_answer]
            subject = [m for m in same if m.subject]
            order = (topic[:1], subject[:1], answers[-1:]) if turn in parallel else (topic[:1], answers[-1:], subject[:1])
            return next((m[0] for m in order if m), same[-1])
    return None


def _single_word(found: Sequence[Mention], person: bool) -> Mention | None:
    """The latest one-word name of no known kind ("Murdoch", "Politico"): a thing only by
    default, so any pronoun may mean it (a person's pronoun, not an acronym)."""
    for m in reversed(found):
        if not m.phrase and " " not in m.text and m.kind == THING and not (person and m.text.isupper()):
            return m
    return None


_PRONOUNS = (
    # (pattern, tiers of kinds it may refer to, possessive, may refer to noun phrases)
    (re.compile(r"\b(?:he|him|she)\b", re.IGNORECASE), ((PERSON,),), False, False),
    (re.compile(r"\bhis\b", re.IGNORECASE), ((PERSON,),), True, False),
    (re.compile(r"\bher\b(?=\s+(?P<next>\w+))?", re.IGNORECASE), ((PERSON,),), None, False),  # object or possessive
    (re.compile(r"\b(?:they|them)\b", re.IGNORECASE), ((GROUP,), (THING,)), False, True),
    (re.compile(r"\btheir\b", re.IGNORECASE), ((GROUP,), (THING,)), True, True),
    (re.compile(r"\bits\b", re.IGNORECASE), ((THING, PLACE), (GROUP,), (GUESSED,)), True, True),
    (re.compile(r"\bit\b", re.IGNORECASE), ((THING, PLACE), (GROUP,), (GUESSED,)), False, True),
    (re.compile(r"\bthere\b", re.IGNORECASE), ((PLACE,),), False, False),
)


def _as_written(m: Mention, possessive: bool, there: bool) -> str:
    """"X's" ("X'" for a plural), "at X" (a site, "the ...") or "in X" (a bare name), or X."""
    if possessive:
        return f"{m.text}'" if m.text.endswith("s") and m.kind == GROUP else f"{m.text}'s"
    site = m.text.lower().startswith("the ") or {w.lower() for w in m.text.split()} & (ORG_WORDS | SITE_WORDS)
    return (f"at {m.text}" if site else f"in {m.text}") if there else m.text


def _demonstrative(noun: str, found: Sequence[Mention]) -> Mention | None:
    """What "that <noun>" means: the latest name with that word first or last ("that alliance":
    "the Alliance of ..."), else the answer to "which <noun> ...?", else the latest mention of
    the noun's kind ("that company": an organisation)."""
    if noun in PHRASE_END or noun in NOT_POSSESSED:
        return None
    for m in reversed(found):
        words = re.sub(r"^the\s+", "", m.text, flags=re.IGNORECASE).lower().split()
        if not m.phrase and words and noun in (words[0], words[-1]):
            return m
    answer = next((m for m in reversed(found) if m.from_answer and m.noun == noun), None)
    if answer is not None:
        return answer
    kind = next((k for k, nouns in KIND_NOUNS.items() if noun in nouns), None)
    return _pick(found, ((kind, GROUP) if kind == THING else (kind,),)) if kind else None


def _resolve_pronouns(question: str, history: Sequence[Turn], found: Sequence[Mention]) -> str:
    """``question`` with each pronoun and "that <noun>" replaced, every edit made on the question
    as typed (a name put in is never read again as a pronoun)."""
    lead = _LEADING_WH.match(question)  # "In which year": what is asked, not what is said of it
    echoed = _content_words(question[lead.end():] if lead else question)
    parallel = frozenset(n for n, t in enumerate(history) if echoed & _content_words(t.understood_as))
    edits: list[tuple[int, int, str]] = []

    def edit(start: int, end: int, text: str) -> None:
        if not any(s < end and start < e for s, e, _ in edits):
            edits.append((start, end, text[0].upper() + text[1:] if start == 0 else text))

    for m in _DEMONSTRATIVE.finditer(question):
        target = _demonstrative(m.group(1), found)
        if target is not None:
            edit(m.start(), m.end(), target.text)
    for pattern, tiers, possessive, phrases in _PRONOUNS:
        there = pattern.pattern == r"\bthere\b"
        target = _pick(found, tiers, phrases, parallel)
        if target is None:
            target = _single_word(found, person=tiers[0] == (PERSON,))
        if target is None or (there and _THERE_EXISTENTIAL.search(question)):
            continue
        for m in pattern.finditer(question):
            is_possessive = possessive
            if possessive is None:  # "her": possessive when a noun follows it
                following = m.groupdict().get("next")
                is_possessive = bool(following) and following.lower() not in NOT_POSSESSED
            edit(m.start(), m.end(), _as_written(target, is_possessive, there))
    text = question
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def _swap_question_phrase(wh: str, previous: str) -> str | None:
    """The previous question asked with ``wh`` instead of its own question phrase."""
    lead = _LEADING_WH.match(previous)
    if lead is None:
        return None
    return wh[0].upper() + wh[1:] + previous[lead.end():]


def _swap_phrase(rest: str, previous: str) -> str | None:
    """"in 2004" or "in Paris" in place of the previous question's "in <year>" or "in <name>"
    (added before the question mark where it has none); a bare year in place of its year."""
    if re.fullmatch(_YEAR, rest):
        years = list(re.finditer(rf"\b{_YEAR}\b", previous))
        return previous[:years[-1].start()] + rest + previous[years[-1].end():] if years else None
    pp = _PREP_PHRASE.match(rest)
    if pp is None:
        return None
    prep, obj = pp.group("prep").lower(), pp.group("obj")
    if re.fullmatch(_YEAR, obj):
        same = list(re.finditer(rf"\b{prep}\s+(?:the\s+)?{_YEAR}\b", previous, re.IGNORECASE)) or list(
            re.finditer(rf"\b(?:{_PREP})\s+(?:the\s+)?{_YEAR}\b", previous, re.IGNORECASE))
    elif obj[:1].isupper() or obj.lower().startswith("the "):
        name = r"[A-Z][\w.'’-]*(?:\s+(?:of\s+|the\s+)*[A-Z][\w.'’-]*)*"
        same = list(re.finditer(rf"\b{prep}\s+(?:the\s+)?{name}", previous))
    else:
        return None
    if same:
        return previous[:same[-1].start()] + f"{prep} {obj}" + previous[same[-1].end():]
    body = previous.rstrip().rstrip("?.!")
    return f"{body} {prep} {obj}{previous.rstrip()[len(body):] or '?'}"


def _swap_name(rest: str, previous: str, in_previous: Sequence[Mention]) -> str | None:
    """The previous question with one of its names swapped for the name of ``rest`` ("ZTE",
    "the Montreal Victorias"): one of the same kind, an adjective for an adjective."""
    new_names = names(rest[:1].upper() + rest[1:])
    if not new_names or not in_previous:
        return None
    new, start = new_names[0]
    if rest[:start].strip().lower() == "the":
        new = "the " + new
    kind, _ = kind_of(new_names[0][0], previous, False)
    adjective = bool(_ADJECTIVE.match(new))
    shaped = [x for x in in_previous if bool(_ADJECTIVE.match(x.text)) == adjective] or list(in_previous)
    old = next((x for x in reversed(shaped) if x.kind == kind), shaped[-1])
    return previous.replace(old.text, new, 1)


def _elliptical(question: str, history: Sequence[Turn], found: Sequence[Mention]) -> str | None:
    """"and ZTE?", "what about in 2004?", "when?", "By which treaty?" against the last question;
    None when not elliptical."""
    if not history:
        return None
    previous = history[-1].understood_as.strip()
    alone = _WH_ALONE.match(question)
    m = _ELLIPSIS.match(question)
    if alone is None and m is None:
        return None
    rest = alone.group("wh") if alone else m.group("rest").strip()
    if alone or _WH_ALONE.match(rest):
        out = _swap_question_phrase(rest, previous)
    elif len(rest.split()) > 6:
        return None
    else:
        out = _swap_phrase(rest, previous)
        if out is None:
            in_previous = [x for x in found if x.turn == len(history) - 1 and not x.from_answer and not x.phrase]
            out = _swap_name(rest, previous, in_previous)
    return out[0].upper() + out[1:] if out else None


def rewrite(question: str, history: Sequence[Turn]) -> str:
    """``question`` made self-contained using ``history`` (earlier turns, oldest first).

    Returns the question unchanged when it needs no context (no pronoun or short elliptical
    form with something earlier to point at).
    """
    if not history:
        return question
    found = mentions(history)
    elliptical = _elliptical(question, history, found)
    if elliptical is not None:
        return elliptical
    return _resolve_pronouns(question, history, found)


class Conversation:
    """A sequence of questions where later ones may refer to earlier ones.

    Args:
        index: an index location or opened Index (None: the default index over seeds/).
        engine: an Engine to use instead (its index wins over ``index``).
        **overrides: ``QASettings`` fields for every question of this conversation.

    Example:
        >>> c = Conversation(index=".index/default")          # doctest: +SKIP
        >>> c.ask("who is Rob Strayer?").text                 # doctest: +SKIP
        'State Department official'
        >>> c.ask("Where did he speak?").understood_as        # doctest: +SKIP
        'Where did Rob Strayer speak?'
    """

    def __init__(self, index=None, engine=None, history: Sequence[Turn] = (), **overrides) -> None:
        if engine is None:
            from qa import default_engine

            engine = default_engine(index)
        self.engine = engine
        self.overrides = overrides
        self.turns: list[Turn] = list(history)

    def understand(self, question: str) -> str:
        """What ``question`` means after the turns so far (without asking it)."""
        return rewrite(question, self.turns)

    def ask(self, question: str, **overrides) -> Answer:
        """Answer ``question`` in the context of the earlier turns.

        Returns the Answer of the rewritten question, whose ``question`` is what was typed
        and whose ``understood_as`` is the rewrite (empty when nothing was rewritten).
        """
        understood = self.understand(question.strip()) if isinstance(question, str) else question
        answer = self.engine.ask(understood, **{**self.overrides, **overrides})
        answer = replace(answer, question=question.strip(),
                         understood_as=understood if understood != question.strip() else "")
        self.turns.append(Turn(question=question.strip(), understood_as=understood, answer=answer))
        return answer

    def clear(self) -> None:
        """Forget the earlier turns."""
        self.turns.clear()

    def to_markdown(self) -> str:
        """The conversation as Markdown: each question, its rewrite, the answer and its quoted sources."""
        lines = ["# Conversation", ""]
        for n, turn in enumerate(self.turns, start=1):
            lines.append(f"## {n}. {turn.question}")
            if turn.understood_as != turn.question:
                lines.append(f"*Understood as:* {turn.understood_as}")
            lines.append("")
            answer = turn.answer
            if answer is None:
                continue
            lines.append(f"**{answer.text}**" if answer.found else "*Not found in the documents.*")
            lines.append("")
            for i, c in enumerate(answer.citations, start=1):
                where = Path(c.source).name + (f", page {c.page}" if c.page else "") + f", characters {c.start}-{c.end}"
                quote = " ".join(c.quote.split())
                lines.append(f"{i}. {where}: “{quote}”")
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"
