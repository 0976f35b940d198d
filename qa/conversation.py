"""Follow-up questions: resolve "he", "it", "there", "that company" and "and ZTE?" against earlier turns.

No language model: the earlier questions and answers are scanned for names (runs of
capitalised words, acronyms, "Windows 95", "Charles I") and, in questions, for definite noun
phrases ("the executive order"); each is given a kind by simple rules (a person, a place, an
organisation or thing, a group), and a follow-up's pronouns and short elliptical forms are
replaced by the most recent mention of the fitting kind ("it": a thing before a place;
"they": a group before a thing; with none, the latest one-word name, whose kind is a guess).
Within one turn, a name the question asked for (its answer) comes first, then the question's
subject ("did *the DOJ* charge"), then the latest. The rewritten question is answered as
usual, and shown ("Understood as: ...") so a wrong rewrite is visible.

How a rewrite reads (the conversation test set follows the same rules):
- a pronoun becomes the name as written earlier, with its article ("the Chetniks");
- a possessive becomes "X's", or "X'" for a plural ("the Chetniks'");
- "there" becomes "in X" for a bare name (a city, a country: "in Paris") and "at X" for a
  name with an article or a building or institution word ("at the Center for ...",
  "at Oxford Castle");
- "and ZTE?" repeats the last question with the name swapped, "and when?" with the
  question word swapped.

A question that needs no context is left exactly as it was. Usage: ``Conversation``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

from qa.types import Answer

PERSON, PLACE, THING, GROUP = "person", "place", "thing", "group"

_WH = ("who", "whom", "whose", "what", "when", "where", "which", "why", "how")
_AUX = ("is was are were do does did has have had will would can could should shall may might must").split()
# Capitalised words that start questions or sentences without naming anything.
_NOT_NAMES = frozenset(
    """who whom whose what when where which why how is was are were do does did can could will would should shall
    may might must has have had the a an and or but in on at of for to from by with about as if then so yes no
    tell give list name show explain describe please i you we it he she they this that these those there
    january february march april may june july august september october november december
    monday tuesday wednesday thursday friday saturday sunday ceo cfo cto coo""".split()
)
_CONNECTORS = frozenset({"of", "for", "and", "the", "de", "von", "van", "&"})
_ROMAN = frozenset("I II III IV V VI VII VIII IX X XI XII".split())
_ORG_WORDS = frozenset("""company corporation corp inc ltd llc group department ministry agency bureau council committee commission
    university college institute school center centre foundation association society bank party union office
    administration court congress senate parliament army navy force network networks church museum hospital
    international""".split())
_PLACE_WORDS = frozenset("""city town village county state province country republic kingdom island islands river lake mountain
    street avenue road square park valley bay coast region district""".split())
# Buildings and sites: places one is "at".
_SITE_WORDS = frozenset("castle palace abbey cathedral tower bridge hall stadium airport station port plant observatory".split())
_KIND_NOUNS = {kind: tuple(words.split()) for kind, words in (
    (PERSON, "person man woman official spokesman spokeswoman executive officer author writer president leader player "
             "artist scientist reporter editor journalist architect astronomer chancellor member musician saxophonist"),
    (PLACE, "place city town country state region village area location"),
    (THING, "company firm organization organisation agency department business group institution conference event "
            "order church university band team product club newspaper paper union movement party"))}
_WORD = re.compile(r"[A-Za-z][\w’'&.-]*\w|[A-Za-z]|\d+(?:\.\d+)*")
_POSSESSIVE_END = re.compile(r"['’]s$")
_ELLIPSIS = re.compile(r"^\s*(?:and|what about|how about|and what about|same for|also)\s+(?P<rest>.+?)\s*[?.!]*\s*$",
                       re.IGNORECASE)
_THERE_EXISTENTIAL = re.compile(r"\b(?:is|are|was|were|will be|be)\s+there\b|\bthere\s+(?:is|are|was|were|be)\b",
                                re.IGNORECASE)
_DEFINITION = re.compile(r"^\s*(?:[Ww]ho|[Ww]hat)\s+(?:is|was|are|were)\s+[A-Z]")  # "who is Rob Strayer?"
_NATIONALITY = re.compile(r"^[A-Z][a-z]+(?:ese|ian|ish|ean)$")  # "Chinese", "Italian": adjectives, not names
_NOT_POSSESSED = frozenset("to in at about for with from on by of into over under after before and or".split())
# Words that end a noun phrase: prepositions, auxiliaries, articles, conjunctions, pronouns.
_PHRASE_END = _NOT_POSSESSED | frozenset(_AUX) | frozenset(
    "the a an that who which whom whose there here it its he she they them his her their than as since until".split())
_AFTER_AUX = re.compile(rf"\b(?:{'|'.join(_AUX)})\s+$", re.IGNORECASE)
# The answer names what was asked for: "who ...?", "which company ...?", "what conference ...?".
_ASKS_FOR_ENTITY = re.compile(rf"^\s*(?:who|whom|whose|which|where|what\s+(?!(?:{'|'.join(_AUX)})\b)\w+)\b",
                              re.IGNORECASE)


@dataclass(frozen=True)
class Mention:
    """A name (or, from a question, a noun phrase) of an earlier turn, with its kind and where it came from."""

    text: str
    kind: str
    turn: int
    from_answer: bool
    subject: bool = False  # the subject of its question ("did *the DOJ* charge")
    phrase: bool = False  # a lowercase noun phrase ("the executive order"): only "it" and "they" point at it


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
    """Capitalised runs, acronyms and numbered names ("Windows 95", "Charles I") in ``text`` with
    their start: connectors kept inside a run ("Center for Strategic and International Studies"),
    a trailing possessive dropped, an acronym in brackets after a name (its alias) skipped."""
    tokens = [(m.group(0), m.start(), m.end()) for m in _WORD.finditer(text)]
    out, i = [], 0
    while i < len(tokens):
        word, start, end = tokens[i]
        if word[0].isupper() and len(word) > 1 and word.lower().strip(".") not in _NOT_NAMES:
            j, last = i + 1, i
            while j < len(tokens):
                gap = text[tokens[j - 1][2]:tokens[j][1]].strip()
                if gap and not (gap == "." and len(tokens[j - 1][0]) <= 3):  # "Dr. Jonas Salk"
                    break
                w = tokens[j][0]
                if (j == last + 1 and (w in _ROMAN or w[0].isdigit())) or (w[0].isupper() and w.lower() not in _NOT_NAMES):
                    last = j
                elif w.lower() not in _CONNECTORS:
                    break
                j += 1
            if not text[:start].endswith("("):
                out.append((_POSSESSIVE_END.sub("", text[start:tokens[last][2]]), start))
            i = last + 1
        else:
            i += 1
    return out


def _plural(phrase: str) -> bool:
    last = phrase.split()[-1].lower()
    return last.endswith("s") and not last.endswith(("ss", "us", "is"))


def _phrases(question: str) -> list[tuple[str, int]]:
    """Definite lowercase noun phrases of a question with their start ("the executive order",
    "the German army"), where their end can be told: before a preposition, an article, a
    pronoun or the question mark; after "did"/"will" the last word is the verb and is dropped."""
    out = []
    for m in re.finditer(r"\b[Tt]he\s+((?:[A-Z][a-z]+\s+)?[a-z]+(?:\s+[a-z]+)*)", question):
        words = m.group(1).split()
        cut = next((i for i, w in enumerate(words) if i and w in _PHRASE_END), None)
        if cut is None and question[m.end():].strip()[:1].isalnum():
            continue  # runs into a name: where the phrase ends is unknown
        words = words[:cut]
        if words[0][0].isupper() and len(words) == 1:
            continue  # "the Cathedral of Learning": a name, not a phrase
        before = question[:m.start()]
        verb_follows = re.search(r"\b(?:do|does|did|will|would|can|could|should|may|might|must)\s+$", before, re.I) or (
            _AFTER_AUX.search(before) and words[-1].endswith(("ed", "en", "ing", "wn")))
        if verb_follows:
            words = words[:-1]
        if words and len(words) <= 4 and words[-1] not in _PHRASE_END:
            out.append(("the " + " ".join(words), m.start()))
    return out


def _kind(name: str, question: str, from_answer: bool, article: bool = False, place_before: bool = False) -> str:
    words = [w.lower().strip(".") for w in name.split()]
    q = question.strip().lower()
    if from_answer and q.startswith("where"):
        return PLACE
    if " and " in f" {name} " and not any(w in _ORG_WORDS for w in words):
        return GROUP
    if any(w in _ORG_WORDS for w in words):
        return THING
    if any(w in _PLACE_WORDS or w in _SITE_WORDS for w in words) or place_before:
        return PLACE
    if re.search(r"['’]s\b", name):  # "Murdoch's News International": something someone has
        return THING
    if from_answer and q.startswith(("who ", "whom ", "whose ")):
        return PERSON
    if article:  # "the Chetniks", "the Sunday Times": not a person's name
        return GROUP if len(words) == 1 and _plural(name) else THING
    asked = re.match(r"^(?:which|what)\s+(?:\w+\s+){0,2}?(\w+)\s+(?:is|was|are|were|did|does|do|has|have|had|will|can)\b", q)
    asked_kind = next((k for k, nouns in _KIND_NOUNS.items() if asked and asked.group(1) in nouns), None)
    if from_answer and asked_kind:  # "which company ...?": the answer is a company
        return asked_kind
    if re.match(rf"^(?:who|whom)\s+(?:is|was|are|were)\s+{re.escape(name.lower())}\b", q):
        return PERSON
    if len(words) in (2, 3) and all((w[:1].isupper() and w[1:].islower()) or w in _ROMAN for w in name.split()):
        return PERSON
    return THING


def _mentions_in(text: str, question: str, turn: int, from_answer: bool) -> list[Mention]:
    """The names of ``text`` (the question itself, or its answer), and the question's noun phrases."""
    phrases = [] if from_answer else _phrases(text)
    found = [(start, Mention(p, GROUP if _plural(p) else THING, turn, False, bool(_AFTER_AUX.search(text[:start])), True))
             for p, start in phrases]
    for name, start in _names(text):
        if _NATIONALITY.match(name) or any(s <= start and start + len(name) <= s + len(p) for p, s in phrases):
            continue
        article = text[max(0, start - 4):start].lower() == "the "
        at = start - 4 if article else start
        place_before = bool(re.search(r"\b(?:in|at|near)\s+$", text[:at]))
        kind = _kind(name, question, from_answer, article, place_before)
        found.append((at, Mention(("the " if article else "") + name, kind, turn, from_answer,
                                  not from_answer and bool(_AFTER_AUX.search(text[:at])))))
    return [m for _, m in sorted(found, key=lambda x: x[0])]


def _lead(answer: Answer) -> str:
    """"the " or a title ("Dr. ") that the cited document writes right before the answer's span."""
    c = answer.citations[0] if answer.citations else None
    at = c.answer_start - c.start if c is not None and c.answer_start is not None else -1
    lead = re.search(r"\b(?:[Tt]he|Dr\.|Mr\.|Mrs\.|Ms\.|Prof\.|Sir) $", c.quote[max(0, at - 6):at]) if at >= 0 else None
    return "" if lead is None or answer.text.lower().startswith(lead.group(0).lower()) else lead.group(0).replace("The", "the")


def mentions(history: Sequence[Turn]) -> list[Mention]:
    """Every mention of the earlier turns, oldest first (a turn's question before its answer).

    An answer's names count only where the question asked for one ("who ...?", "which
    company ...?"), not where the answer describes ("what is X?") or explains.
    """
    found: list[Mention] = []
    for n, turn in enumerate(history):
        q = turn.understood_as
        found.extend(_mentions_in(q, q, n, False))
        if turn.answer is None or not turn.answer.found or _DEFINITION.match(q) or not _ASKS_FOR_ENTITY.match(q):
            continue
        text = _lead(turn.answer) + turn.answer.text  # as the document writes it: "the Chetniks", not "Chetniks"
        from_answer = _mentions_in(text, q, n, True)
        if not from_answer and q.strip().lower().startswith(("who ", "whom ", "which ")):
            # "two Chinese hackers": a phrase, not a name, but what "they" will point at.
            words = turn.answer.text.split()
            kind = GROUP if words and _plural(words[-1]) else (PERSON if q.strip().lower().startswith("who") else THING)
            from_answer = [Mention(turn.answer.text, kind, n, True)]
        found.extend(from_answer)
    # A one-word name is a thing only by default: "Bowman" stays the person an answer said he was.
    known = {m.text: m.kind for m in found if m.kind != THING and not m.phrase}
    return [replace(m, kind=known.get(m.text, THING)) if m.kind == THING and not m.phrase and " " not in m.text else m
            for m in found]


def _pick(found: Sequence[Mention], tiers: Sequence[Sequence[str]], phrases: bool = False) -> Mention | None:
    """What a pronoun points at: the first tier of kinds with a mention; in it, the latest turn
    with one, and in that turn what was asked for (the answer), else the subject, else the last."""
    for kinds in tiers:
        fitting = [m for m in found if m.kind in kinds and (phrases or not m.phrase)]
        if fitting:
            same = [m for m in fitting if m.turn == fitting[-1].turn]
            answers = [m for m in same if m.from_answer]
            return answers[-1] if answers else next((m for m in same if m.subject), same[-1])
    return None


def _single_word(found: Sequence[Mention], person: bool) -> Mention | None:
    """The latest one-word name ("Murdoch", "Politico"): its kind is a guess, so any pronoun may mean it."""
    for m in reversed(found):
        if not m.phrase and " " not in m.text and not (person and m.text.isupper()):
            return m
    return None


_PRONOUNS = (
    # (pattern, tiers of kinds it may refer to, possessive, may refer to noun phrases)
    (re.compile(r"\b(?:he|him|she)\b", re.IGNORECASE), ((PERSON,),), False, False),
    (re.compile(r"\bhis\b", re.IGNORECASE), ((PERSON,),), True, False),
    (re.compile(r"\bher\b(?=\s+(?P<next>\w+))?", re.IGNORECASE), ((PERSON,),), None, False),  # object or possessive
    (re.compile(r"\b(?:they|them)\b", re.IGNORECASE), ((GROUP,), (THING,)), False, True),
    (re.compile(r"\btheir\b", re.IGNORECASE), ((GROUP,), (THING,)), True, True),
    (re.compile(r"\bits\b", re.IGNORECASE), ((THING,), (PLACE,), (GROUP,)), True, True),
    (re.compile(r"\bit\b", re.IGNORECASE), ((THING,), (PLACE,), (GROUP,)), False, True),
    (re.compile(r"\bthere\b", re.IGNORECASE), ((PLACE,),), False, False),
)


def _as_written(m: Mention, possessive: bool, there: bool) -> str:
    """"X's" ("X'" for a plural), "at X" (a site, "the ...") or "in X" (a bare name), or X."""
    if possessive:
        return f"{m.text}'" if m.text.endswith("s") and m.kind == GROUP else f"{m.text}'s"
    site = m.text.startswith("the ") or {w.lower() for w in m.text.split()} & (_ORG_WORDS | _SITE_WORDS)
    return (f"at {m.text}" if site else f"in {m.text}") if there else m.text


def _resolve_pronouns(question: str, found: Sequence[Mention]) -> str:
    text = question
    for pattern, tiers, possessive, phrases in _PRONOUNS:
        there = pattern.pattern == r"\bthere\b"
        target = _pick(found, tiers, phrases)
        if target is None and not there:
            target = _single_word(found, person=tiers[0] == (PERSON,))
        if target is None or (there and _THERE_EXISTENTIAL.search(text)):
            continue

        def swap(m: re.Match, target=target, possessive=possessive, there=there) -> str:
            is_possessive = possessive
            if possessive is None:  # "her": possessive when a noun follows it
                following = m.groupdict().get("next")
                is_possessive = bool(following) and following.lower() not in _NOT_POSSESSED
            out = _as_written(target, is_possessive, there)
            return out[0].upper() + out[1:] if m.start() == 0 else out

        text = pattern.sub(swap, text)
    for kind, nouns in _KIND_NOUNS.items():
        pattern = re.compile(rf"\b(?:that|this|the said|the same)\s+(?:{'|'.join(nouns)})\b", re.IGNORECASE)
        target = _pick(found, ((kind, GROUP) if kind == THING else (kind,),))
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
    in_previous = [x for x in found if x.turn == len(history) - 1 and not x.from_answer and not x.phrase]
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
