"""Follow-up questions: resolve "he", "it", "there", "that company" and "and ZTE?" against earlier turns.

No language model: the earlier questions and answers are scanned for names (runs of
capitalised words, acronyms), each given a kind by simple rules (a person, a place, an
organisation or thing, a group), and a follow-up's pronouns and short elliptical forms are
replaced by the most recent name of the fitting kind. The rewritten question is then
answered as usual, and shown ("Understood as: ...") so a wrong rewrite is visible.

A question that needs no context is left exactly as it was.

Example:
    >>> c = Conversation()                                   # doctest: +SKIP
    >>> c.ask("who is Rob Strayer?").text                    # doctest: +SKIP
    'State Department official'
    >>> c.ask("Where did he speak?").understood_as           # doctest: +SKIP
    'Where did Rob Strayer speak?'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

from qa.types import Answer

PERSON, PLACE, THING, GROUP = "person", "place", "thing", "group"

_WH = ("who", "whom", "whose", "what", "when", "where", "which", "why", "how")
# Capitalised words that start questions or sentences without naming anything.
_NOT_NAMES = frozenset(
    """who whom whose what when where which why how is was are were do does did can could will would should shall
    may might must has have had the a an and or but in on at of for to from by with about as if then so yes no
    tell give list name show explain describe please i you we it he she they this that these those there
    january february march april may june july august september october november december
    monday tuesday wednesday thursday friday saturday sunday ceo cfo cto coo""".split()
)
_CONNECTORS = frozenset({"of", "for", "and", "the", "de", "von", "van", "&"})
_ORG_WORDS = frozenset(
    """company corporation corp inc ltd llc group department ministry agency bureau council committee commission
    university college institute school center centre foundation association society bank party union office
    administration court congress senate parliament army navy force network networks church museum hospital""".split()
)
_PLACE_WORDS = frozenset(
    """city town village county state province country republic kingdom island islands river lake mountain
    street avenue road square park valley bay coast region district""".split()
)
_KIND_NOUNS = {
    PERSON: ("person", "man", "woman", "official", "spokesman", "spokeswoman", "executive", "officer", "author",
             "writer", "president", "leader", "player", "artist", "scientist"),
    PLACE: ("place", "city", "town", "country", "state", "region", "village", "area", "location"),
    THING: ("company", "firm", "organization", "organisation", "agency", "department", "business", "group",
            "institution", "conference", "event", "order", "church", "university", "band", "team", "product"),
}
_WORD = re.compile(r"[A-Za-z][\w’'&.-]*\w|[A-Za-z]")
_ELLIPSIS = re.compile(r"^\s*(?:and|what about|how about|and what about|same for|also)\s+(?P<rest>.+?)\s*[?.!]*\s*$",
                       re.IGNORECASE)
_THERE_EXISTENTIAL = re.compile(r"\b(?:is|are|was|were|will be|be)\s+there\b|\bthere\s+(?:is|are|was|were|be)\b",
                                re.IGNORECASE)
_DEFINITION = re.compile(r"^\s*(?:[Ww]ho|[Ww]hat)\s+(?:is|was|are|were)\s+[A-Z]")  # "who is Rob Strayer?"
_NATIONALITY = re.compile(r"^[A-Z][a-z]+(?:ese|ian|ish|ean)$")  # "Chinese", "Italian": adjectives, not names
_NOT_POSSESSED = frozenset("to in at about for with from on by of into over under after before and or".split())


@dataclass(frozen=True)
class Mention:
    """A name found in an earlier question or answer, with its kind and where it came from."""

    text: str
    kind: str
    turn: int
    from_answer: bool


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


def _names(text: str) -> list[tuple[str, int]]:
    """Capitalised runs and acronyms in ``text`` with their start, connectors kept inside a run
    ("Center for Strategic and International Studies")."""
    tokens = [(m.group(0), m.start(), m.end()) for m in _WORD.finditer(text)]
    out, i = [], 0
    while i < len(tokens):
        word, start, end = tokens[i]
        if word[0].isupper() and len(word) > 1 and word.lower().strip(".") not in _NOT_NAMES:
            j, last = i + 1, i
            while j < len(tokens):
                w = tokens[j][0]
                if w[0].isupper() and w.lower() not in _NOT_NAMES:
                    last = j
                elif w.lower() not in _CONNECTORS:
                    break
                j += 1
            out.append((text[start:tokens[last][2]], start))
            i = last + 1
        else:
            i += 1
    return out


def _kind(name: str, question: str, from_answer: bool) -> str:
    words = [w.lower().strip(".") for w in name.split()]
    q = question.strip().lower()
    if from_answer and q.startswith("where"):
        return PLACE
    if " and " in f" {name} " and not any(w in _ORG_WORDS for w in words):
        return GROUP
    if any(w in _ORG_WORDS for w in words):
        return THING
    if any(w in _PLACE_WORDS for w in words):
        return PLACE
    if from_answer and q.startswith(("who ", "whom ")):
        return PERSON
    asked = re.match(r"^(?:which|what)\s+(?:\w+\s+){0,2}?(\w+)\s+(?:is|was|are|were|did|does|do|has|have|had|will|can)\b", q)
    if from_answer and asked:
        noun = asked.group(1)
        for kind, nouns in _KIND_NOUNS.items():
            if noun in nouns:
                return kind
    if re.match(rf"^(?:who|whom)\s+(?:is|was|are|were)\s+{re.escape(name.lower())}\b", q):
        return PERSON
    if len(words) in (2, 3) and all(w[:1].isupper() and w[1:].islower() for w in name.split()):
        return PERSON
    return THING


def mentions(history: Sequence[Turn]) -> list[Mention]:
    """Every name of the earlier turns, oldest first (a turn's question before its answer)."""
    found: list[Mention] = []
    for n, turn in enumerate(history):
        for name, _ in _names(turn.understood_as):
            if not _NATIONALITY.match(name):
                found.append(Mention(name, _kind(name, turn.understood_as, False), n, False))
        # The answer to "who is X?" describes X; the names inside it are not what follow-ups mean.
        if turn.answer is not None and turn.answer.found and not _DEFINITION.match(turn.understood_as):
            text = turn.answer.text
            names = [(name, start) for name, start in _names(text) if not _NATIONALITY.match(name)]
            if not names and turn.understood_as.strip().lower().startswith(("who ", "whom ", "which ")):
                # "two Chinese hackers": a phrase, not a name, but what "they" will point at.
                words = text.split()
                kind = GROUP if words and words[-1].endswith("s") and not words[-1].endswith("ss") else (
                    PERSON if turn.understood_as.strip().lower().startswith("who") else THING)
                found.append(Mention(text, kind, n, True))
            for name, start in names:
                # "the Center for ...": keep the article that belongs to the name.
                shown = text[start - 4:start + len(name)] if text[max(0, start - 4):start].lower() == "the " else name
                found.append(Mention(shown, _kind(name, turn.understood_as, True), n, True))
    return found


def _latest(found: Sequence[Mention], kinds: Sequence[str]) -> Mention | None:
    for m in reversed(found):
        if m.kind in kinds:
            return m
    return None


_PRONOUNS = (
    # (pattern, kinds it may refer to, possessive)
    (re.compile(r"\b(?:he|him|she)\b", re.IGNORECASE), (PERSON,), False),
    (re.compile(r"\bhis\b", re.IGNORECASE), (PERSON,), True),
    (re.compile(r"\bher\b(?=\s+(?P<next>\w+))?", re.IGNORECASE), (PERSON,), None),  # object or possessive
    (re.compile(r"\b(?:they|them)\b", re.IGNORECASE), (GROUP, THING), False),
    (re.compile(r"\btheir\b", re.IGNORECASE), (GROUP, THING), True),
    (re.compile(r"\bits\b", re.IGNORECASE), (THING, GROUP), True),
    (re.compile(r"\bit\b", re.IGNORECASE), (THING, GROUP, PLACE), False),
    (re.compile(r"\bthere\b", re.IGNORECASE), (PLACE,), False),
)


def _possessive(name: str) -> str:
    return f"{name}’" if name.endswith("s") else f"{name}'s"


def _resolve_pronouns(question: str, found: Sequence[Mention]) -> str:
    text = question
    for pattern, kinds, possessive in _PRONOUNS:
        target = _latest(found, kinds)
        if target is None:
            continue
        if pattern.pattern == r"\bthere\b" and _THERE_EXISTENTIAL.search(text):
            continue

        def swap(m: re.Match, target=target, possessive=possessive) -> str:
            is_possessive = possessive
            if possessive is None:  # "her": possessive when a noun follows it
                following = m.groupdict().get("next")
                is_possessive = bool(following) and following.lower() not in _NOT_POSSESSED
            if is_possessive:
                return _possessive(target.text)
            if pattern.pattern == r"\bthere\b":
                return f"at {target.text}"
            return target.text

        text = pattern.sub(swap, text)
    for kind, nouns in _KIND_NOUNS.items():
        pattern = re.compile(rf"\b(?:that|this|the said|the same)\s+(?:{'|'.join(nouns)})\b", re.IGNORECASE)
        target = _latest(found, (kind, GROUP) if kind == THING else (kind,))
        if target is not None:
            text = pattern.sub(target.text, text)
    return text


def _elliptical(question: str, history: Sequence[Turn], found: Sequence[Mention]) -> str | None:
    """"and ZTE?" / "what about when?" against the last question; None when not elliptical."""
    m = _ELLIPSIS.match(question)
    if not m or not history:
        return None
    rest = m.group("rest").strip()
    previous = history[-1].understood_as.strip()
    if rest.lower() in _WH:
        wh = re.match(r"^\s*(\w+)", previous)
        if wh and wh.group(1).lower() in _WH:
            return rest.capitalize() + previous[wh.end():]
        return None
    new_names = _names(rest[:1].upper() + rest[1:])
    if not new_names or len(rest.split()) > 6:
        return None
    new = new_names[0][0]
    in_previous = [x for x in found if x.turn == len(history) - 1 and not x.from_answer]
    if not in_previous:
        return None
    kind = _kind(new, previous, False)
    old = next((x for x in reversed(in_previous) if x.kind == kind), in_previous[-1])
    return previous.replace(old.text, new, 1)


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
    return _resolve_pronouns(question, found)


class Conversation:
    """A sequence of questions where later ones may refer to earlier ones.

    Args:
        index: an index location or opened Index (None: the default index over seeds/).
        engine: an Engine to use instead (its index wins over ``index``).
        **overrides: ``QASettings`` fields for every question of this conversation.

    Example:
        >>> c = Conversation(index=".index/default")          # doctest: +SKIP
        >>> c.ask("who is Rob Strayer?"); c.ask("Where did he speak?")   # doctest: +SKIP
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
