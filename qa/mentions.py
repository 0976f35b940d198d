"""What earlier turns of a conversation name: the candidates a follow-up's "he", "it" or "they" may mean.

No language model: the earlier questions and answers are scanned for names (runs of
capitalised words in any script, acronyms, initials and ordinals: "Windows 95", "Charles I",
"R.G.A. Levinge", "the 3rd Council of Dvin", "Commission on the Status of Women"), and, in
questions, for definite noun phrases ("the executive order") and bare plural subjects ("did
*goaltenders* wear"). Each mention gets a kind by simple rules:

- a person: the answer to "who ...?", a name after "who is", a "which <person noun>"
  answer ("which journalist"), or by shape, two or three capitalised words ("Betty Friedan"),
  which is only a guess (``guess``): "Caribou Coffee" has the same shape;
- a place: the answer to "where ...?", a "which city" answer, a name with a place word
  ("Çamlıca Hill") or after "in"/"at";
- a group: "X and Y", a plural demonym ("Republicans"), "the Chetniks", a plural phrase;
- an organisation or thing: everything else, and the answer to "which <other noun>"
  ("which track": a thing, whatever its shape).

An answer "not found" lends the span the reader scored best below the threshold
(``Answer.withheld``): the engine's best reading of what the question asked about is still
the likeliest thing "he" means next, and the rewrite shown ("Understood as: ...") makes it
visible. An answer's names count where the question asked for a name ("who ...?", "which
company ...?", "in which church ...?", "what was the first ice hockey club?") or where the
answer is itself a name ("What did he found?" "the Connecticut Colony"), not where it
describes ("what is X?") or explains. Usage: ``mentions(turns)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Sequence

from qa.types import Answer

if TYPE_CHECKING:
    from qa.conversation import Turn

PERSON, PLACE, THING, GROUP = "person", "place", "thing", "group"

WH = ("who", "whom", "whose", "what", "when", "where", "which", "why", "how")
AUX = ("is was are were do does did has have had will would can could should shall may might must").split()
PREPOSITIONS = "in on at to from by for with of during under after before since into about".split()
# Capitalised words that start questions or sentences without naming anything.
_NOT_NAMES = frozenset(
    """who whom whose what when where which why how is was are were do does did can could will would should shall
    may might must has have had the a an and or but in on at of for to from by with about as if then so yes no
    since during after before under over into through between among against within without until than whether
    tell give list name show explain describe please i you we it he she they this that these those there
    january february march april may june july august september october november december
    monday tuesday wednesday thursday friday saturday sunday ceo cfo cto coo""".split()
)
_CONNECTORS = frozenset({"of", "for", "and", "the", "de", "von", "van", "&"})
_ROMAN = frozenset("I II III IV V VI VII VIII IX X XI XII".split())
ORG_WORDS = frozenset("""company corporation corp inc ltd llc group department ministry agency bureau council committee
    commission university college institute school center centre foundation association society bank party union office
    administration court congress senate parliament army navy force network networks church museum hospital
    international alliance coalition federation league club assembly records studios press""".split())
# Laws, treaties and the like: things, whatever their shape ("the Taft-Hartley Act").
_THING_WORDS = frozenset("act treaty amendment code law constitution accord agreement".split())
_PLACE_WORDS = frozenset("""city town village county state province country republic kingdom island islands river lake
    mountain street avenue road square park valley bay coast region district hill hills mount peninsula strait sea ocean
    creek harbor harbour gulf cape desert forest canyon falls""".split())
# Buildings and sites: places one is "at".
SITE_WORDS = frozenset(
    "castle palace abbey cathedral tower bridge hall stadium airport station port plant observatory rink".split())
KIND_NOUNS = {kind: tuple(words.split()) for kind, words in (
    (PERSON, "person man woman official spokesman spokeswoman executive officer author writer president leader player "
             "artist scientist reporter editor journalist architect astronomer chancellor member musician saxophonist "
             "captain sultan king queen emperor governor senator justice explorer priest founder composer producer "
             "singer actor actress poet novelist minister general dj researcher scholar professor"),
    (PLACE, "place city town country state region village area location county province island lake river strait sea "
            "mountain hill neighborhood neighbourhood district port capital"),
    (THING, "company firm organization organisation agency department business group institution conference event "
            "order church university band team product club newspaper paper union movement party college school "
            "alliance label book track album song film"))}
# Titles of works keep their article as written ("The Second Sex").
_WORKS = frozenset("""book novel song track album film movie play poem painting opera newspaper magazine journal review
    series show article essay report""".split())
# Articles of other languages: "La Géométrie", "Le Monde", "Der Spiegel" are titles, not people.
_FOREIGN_ARTICLES = frozenset("la le les el los las il der die das".split())
_WORD = re.compile(r"[^\W\d_][\w’'&.-]*\w|[^\W\d_]|\d+(?:\.\d+)*(?:st|nd|rd|th)?")
_INITIALS = re.compile(r"^(?:[A-Z]\.)*[A-Z]$")  # "W", "R.G.A" (each followed by ".")
_ORDINAL = re.compile(r"^\d+(?:st|nd|rd|th)$")
_POSSESSIVE_END = re.compile(r"['’]s$")
_DEFINITION = re.compile(r"^\s*(?:[Ww]ho|[Ww]hat)\s+(?:is|was|are|were)\s+[A-Z]")  # "who is Rob Strayer?"
_NATIONALITY = re.compile(r"^[A-Z][a-z]+(?:ese|ian|ish|ean)$")  # "Chinese", "Italian": adjectives, not names
_DEMONYMS = re.compile(r"^[A-Z][a-z]+(?:ans|ats|ists|ites)$")  # "Republicans", "Democrats": groups
NOT_POSSESSED = frozenset("to in at about for with from on by of into over under after before and or".split())
# Words that end a noun phrase: prepositions, auxiliaries, articles, conjunctions, pronouns.
PHRASE_END = NOT_POSSESSED | frozenset(AUX) | frozenset(
    "the a an that who which whom whose there here it its he she they them his her their than as since until".split())
AFTER_AUX = re.compile(rf"\b(?:{'|'.join(AUX)})\s+$", re.IGNORECASE)
_LEADING_PREP = rf"(?:(?:{'|'.join(PREPOSITIONS)})\s+)?"
# The answer names what was asked for: "who ...?", "in which church ...?", "what conference ...?".
_ASKS_FOR_ENTITY = re.compile(
    rf"^\s*{_LEADING_PREP}(?:who|whom|whose|which|where|what\s+(?!(?:{'|'.join(AUX)})\b)\w+)\b", re.IGNORECASE)
# "What was the first ice hockey club?" names it; "what is the capital of France?" relates it to a name.
_WHAT_IS_THE = re.compile(r"^\s*what\s+(?:is|was|are|were)\s+the\s+", re.IGNORECASE)
_OF_NAME = re.compile(r"\bof\s+(?:the\s+)?[A-Z]")
# "did *blacks* support", "do *Armenian bishops* wear": a plural subject without an article.
_BARE_SUBJECT = re.compile(rf"\b(?:{'|'.join(AUX)})\s+((?:[A-Z][a-z]+\s+)?[a-z]+s)\s+(?=[a-z])")
# Titles and offices before a person's name: an answer's "President Dwight D. Eisenhower" is
# named "Dwight D. Eisenhower" where a full name remains ("President Trump" stays).
_TITLES = frozenset("""president vice representative senator governor archbishop bishop cardinal father reverend
    captain lieutenant colonel general major sergeant admiral commander judge justice chief chancellor secretary
    minister mayor ambassador professor""".split())
_NOT_NOUNS = frozenset("first last same other next former latter following rest most least best worst".split())
# A title: capitalised words with short lowercase ones between ("Bug in the Bassbin", "Gone with the Wind").
_TITLE = re.compile(
    r"^[A-Z][\w’'-]*(?:\s+(?:[A-Z][\w’'.-]*|in|on|at|of|the|a|an|and|for|to|with|from|by))*\s+[A-Z][\w’'-]*$")
_NOT_PLURAL = frozenset("its his hers ours yours theirs this was has does is as us yes less always perhaps whereas".split())


@dataclass(frozen=True)
class Mention:
    """A name (or, from a question, a noun phrase) of an earlier turn, with its kind and where it came from."""

    text: str
    kind: str
    turn: int
    from_answer: bool
    subject: bool = False  # the subject of its question ("did *the DOJ* charge")
    phrase: bool = False  # a lowercase noun phrase ("the executive order"): only "it" and "they" point at it
    guess: bool = False  # a person by its shape alone ("Caribou Coffee" looks like "Betty Friedan")
    topic: bool = False  # what a pronoun of its turn was understood as: the conversation goes on about it
    noun: str = ""  # for an answer to "which <noun> ...?", that noun ("that book" means it)


def names(text: str) -> list[tuple[str, int]]:
    """Capitalised runs, acronyms and numbered names ("Windows 95", "Charles I") in ``text`` with
    their start: connectors kept inside a run ("Center for Strategic and International Studies",
    "on" after an organisation word), initials ("R.G.A. Levinge") and a leading ordinal ("3rd
    Council of Dvin") kept, a trailing possessive dropped, an acronym in brackets after a name
    (its alias) skipped."""
    tokens = [(m.group(0), m.start(), m.end()) for m in _WORD.finditer(text)]
    out, i = [], 0
    while i < len(tokens):
        word, start, end = tokens[i]
        ordinal = (_ORDINAL.match(word) is not None and i + 1 < len(tokens) and tokens[i + 1][0][0].isupper()
                   and text[end:tokens[i + 1][1]] == " ")
        if ordinal or (word[0].isupper() and len(word) > 1 and word.lower().strip(".") not in _NOT_NAMES):
            j, last = i + 1, i
            while j < len(tokens):
                before = tokens[j - 1][0]
                gap = text[tokens[j - 1][2]:tokens[j][1]].strip()
                if gap and not (gap == "." and (len(before) <= 3 or _INITIALS.match(before))):  # "Dr. Jonas Salk"
                    break
                w = tokens[j][0]
                if (j == last + 1 and (w in _ROMAN or w[0].isdigit())) or (w[0].isupper() and w.lower() not in _NOT_NAMES):
                    last = j
                elif not (w.lower() in _CONNECTORS
                          or (w == "on" and j == last + 1 and tokens[last][0].lower() in ORG_WORDS)):
                    break
                j += 1
            if not text[:start].endswith("("):
                stop = tokens[last][2] + (1 if _INITIALS.match(tokens[last][0]) and text[tokens[last][2]:][:1] == "." else 0)
                out.append((_POSSESSIVE_END.sub("", text[start:stop]), start))
            i = last + 1
        else:
            i += 1
    return out


def plural(phrase: str) -> bool:
    last = phrase.split()[-1].lower()
    return last.endswith("s") and not last.endswith(("ss", "us", "is")) and last not in _NOT_PLURAL


def _phrases(question: str) -> list[tuple[str, int, bool]]:
    """Definite lowercase noun phrases of a question with their start ("the executive order",
    "the German army") and whether "of <Name>" follows ("the capital city of Connecticut": the
    name is what the question is about), where their end can be told: before a preposition, an
    article, a pronoun or the question mark; after "did"/"will" the last word is the verb and is
    dropped."""
    out = []
    for m in re.finditer(r"\b[Tt]he\s+((?:[A-Z][a-z]+\s+)?[a-z]+(?:\s+[a-z]+)*)", question):
        tokens = list(re.finditer(r"\S+", m.group(1)))
        words = [t.group(0) for t in tokens]
        cut = next((i for i, w in enumerate(words) if i and w in PHRASE_END), None)
        if cut is None and question[m.end():].strip()[:1].isalnum():
            continue  # runs into a name: where the phrase ends is unknown
        relational = (cut is not None and words[cut] == "of"
                      and bool(_OF_NAME.match(question[m.start(1) + tokens[cut].start():])))
        words = words[:cut]
        if len(words) == 1 and (words[0][0].isupper() or words[0] in _NOT_NOUNS):
            continue  # "the Cathedral of Learning": a name; "the first": no noun
        before = question[:m.start()]
        verb_follows = (cut is None or tokens[cut].group(0) != "of") and (
            re.search(r"\b(?:do|does|did|will|would|can|could|should|may|might|must)\s+$", before, re.I) or (
                AFTER_AUX.search(before) and words[-1].endswith(("ed", "en", "ing", "wn"))))
        if verb_follows:
            words = words[:-1]
        if words and len(words) <= 4 and words[-1] not in PHRASE_END:
            out.append(("the " + " ".join(words), m.start(), relational))
    return out


def asked_noun(question: str) -> str | None:
    """The noun of "which <noun> ...?" ("which team captain refused" -> "captain"; "which of his
    tracks" -> "track"), else None."""
    m = re.match(rf"^\s*{_LEADING_PREP}(?:which|what|whose)\s+(.*)$", question.strip(), re.IGNORECASE)
    if not m:
        return None
    of = re.match(r"of\s+(?:the|his|her|its|their|these|those|our|your)\s+([a-z]+)\b", m.group(1), re.IGNORECASE)
    if of:  # "which of his tracks": one of several, named in the plural
        noun = of.group(1).lower()
        return noun[:-3] + "y" if noun.endswith("ies") else noun[:-1] if plural(noun) else noun
    words = re.findall(r"[\w’'-]+", m.group(1))
    noun = None
    for i, w in enumerate(words[:4]):
        after = words[i + 1] if i + 1 < len(words) else ""
        # Once a noun is read, a word before a name or an article is the verb ("chose Bowman's").
        verb_like = noun is not None and (w.endswith("ed") or not after or after[0].isupper() or after.lower() in (
            "the", "a", "an", "its", "his", "her", "their"))
        w = w.lower()
        if w in AUX or w in PREPOSITIONS or w in ("the", "a", "an") or verb_like:
            break
        noun = w
    return noun


def kind_of(name: str, question: str, from_answer: bool, article: bool = False,
            place_before: bool = False) -> tuple[str, bool]:
    """(kind, is a guess) of a name met in ``question`` (or in its answer)."""
    words = [w.lower().strip(".") for w in name.split()]
    q = question.strip().lower()
    if from_answer and re.match(rf"^{_LEADING_PREP}where\b", q):
        return PLACE, False
    if " and " in f" {name} " and not any(w in ORG_WORDS for w in words):
        return GROUP, False
    if any(w in ORG_WORDS or w in _THING_WORDS for w in words):
        return THING, False
    if any(w in _PLACE_WORDS or w in SITE_WORDS for w in words) or place_before:
        return PLACE, False
    if re.search(r"['’]s\b", name):  # "Murdoch's News International": something someone has
        return THING, False
    if from_answer and q.startswith(("who ", "whom ", "whose ")):
        return PERSON, False
    if article and len(words) == 1 and plural(name):  # "the Chetniks"
        return GROUP, False
    noun = asked_noun(question) if from_answer else None
    if noun and noun.endswith(("ist", "ian")):  # "which historian", "which physicist"
        return PERSON, False
    if noun and any(noun in KIND_NOUNS[k] for k in KIND_NOUNS):  # "which company ...?": a company, "which track": a thing
        return next(k for k in (PERSON, PLACE, THING) if noun in KIND_NOUNS[k]), False
    if article:  # "the Sunday Times": not a person's name
        return THING, False
    if re.match(rf"^(?:who|whom)\s+(?:is|was|are|were)\s+{re.escape(name.lower())}\b", q):
        return PERSON, False
    if len(words) == 1 and _DEMONYMS.match(name):
        return GROUP, False
    if words[0] in _FOREIGN_ARTICLES:
        return THING, False
    if len(words) in (2, 3) and all((w[:1].isupper() and (w[1:].islower() or not w[1:].strip("."))) or w in _ROMAN
                                    or _INITIALS.match(w.rstrip(".")) for w in name.split()):
        return PERSON, True
    return THING, False


def _mentions_in(text: str, question: str, turn: int, from_answer: bool) -> list[Mention]:
    """The names of ``text`` (the question itself, or its answer), and the question's noun phrases."""
    phrases = [] if from_answer else _phrases(text)
    found = [(start, Mention(p, GROUP if plural(p) else THING, turn, False,
                             bool(AFTER_AUX.search(text[:start])) and not relational, True))
             for p, start, relational in phrases]
    possessors = {start + len(p) for p, start, relational in phrases if relational}  # "the capital city| of X"
    for m in ([] if from_answer else _BARE_SUBJECT.finditer(text)):
        words = m.group(1).split()
        if plural(words[-1]) and not _NATIONALITY.match(m.group(1)) and (len(words) == 1 or _NATIONALITY.match(words[0])):
            found.append((m.start(1), Mention(m.group(1), GROUP, turn, False, True, True)))
    for name, start in names(text):
        article = text[max(0, start - 4):start].lower() == "the "
        if _NATIONALITY.match(name):  # an adjective, or with an article a people: "the Portuguese"
            if article:
                found.append((start - 4, Mention("the " + name, GROUP, turn, from_answer)))
            continue
        if any(s <= start and start + len(name) <= s + len(p) for p, s, _ in phrases):
            continue
        at = start - 4 if article else start
        place_before = bool(re.search(r"\b(?:in|at|near)\s+$", text[:at]))
        kind, guess = kind_of(name, question, from_answer, article, place_before)
        of_possessor = any(re.match(r"\s*of\s+$", text[e:at]) for e in possessors if e <= at)
        found.append((at, Mention(("the " if article else "") + name, kind, turn, from_answer,
                                  not from_answer and (bool(AFTER_AUX.search(text[:at])) or of_possessor), guess=guess)))
    return [m for _, m in sorted(found, key=lambda x: x[0])]


def said(answer: Answer | None) -> str:
    """What an earlier answer names: its text, or, where it was "not found", the span the reader
    scored best below the threshold (``Answer.withheld``): still what "he" or "it" most likely
    means next."""
    if answer is None:
        return ""
    return answer.text if answer.found else answer.withheld


def _lead(answer: Answer, text: str) -> str:
    """"the " or a title ("Dr. ") that the cited document writes right before ``text``, what
    ``answer`` names (``said``)."""
    c = answer.citations[0] if answer.citations else None
    if c is None:
        at = -1
    elif c.answer_start is not None:
        at = c.answer_start - c.start
    else:  # a withheld span: the best candidate's sentence is cited first
        at = c.quote.find(text) if text else -1
    lead = re.search(r"\b(?:[Tt]he|Dr\.|Mr\.|Mrs\.|Ms\.|Prof\.|Sir) $", c.quote[max(0, at - 6):at]) if at >= 0 else None
    return "" if lead is None or text.lower().startswith(lead.group(0).lower()) else lead.group(0).replace("The", "the")


def _without_title(m: Mention, who: bool) -> Mention:
    """A person named by an answer, without the titles before a full name and the " of <X>"
    after it ("Representative Paul Ryan of Wisconsin": "Paul Ryan"; to a "who" question, "Jane
    Miller of the State Department" is Jane Miller, not the department)."""
    words = m.text.split()
    at = words.index("of") if "of" in words else -1
    if who and m.kind != PERSON and at in (2, 3) and kind_of(" ".join(words[:at]), "", False)[0] == PERSON:
        m = replace(m, kind=PERSON, guess=False)
    if m.kind != PERSON or " " not in m.text:
        return m
    last_title = max((i for i, w in enumerate(words) if w.lower() in _TITLES), default=-1)
    if len(words) - last_title - 1 >= 2:
        words = words[last_title + 1:]
    at = words.index("of") if "of" in words else -1
    if at in (2, 3):
        words = words[:at]
    return replace(m, text=" ".join(words))


def _answer_mentions(turn: Turn, n: int) -> list[Mention]:
    q = turn.understood_as
    answered = said(turn.answer)
    if not answered or _DEFINITION.match(q):
        return []
    text = _lead(turn.answer, answered) + answered  # as the document writes it: "the Chetniks", not "Chetniks"
    noun = asked_noun(q) or ""
    if _WHAT_IS_THE.match(q) and _OF_NAME.search(q):  # "the largest city of Brazil": the question is about Brazil
        return []
    if not (_ASKS_FOR_ENTITY.match(q) or _WHAT_IS_THE.match(q)):
        # Any other question: its answer counts only where it is a name ("the Connecticut Colony").
        found = names(text)
        bare = re.sub(r"^(?:the|a|an)\s+", "", text.strip().strip('"“”'), flags=re.IGNORECASE)
        # With an article or more than one word: "Communications" may be a heading's first word.
        if not (len(found) == 1 and found[0][0] == bare and (bare != text.strip().strip('"“”') or " " in bare)):
            return []
    out = [replace(m, noun=noun) for m in _mentions_in(text, q, n, True)]
    title = text.strip().strip('"“”')
    whole = len(out) == 1 and out[0].text.lower() == title.lower()
    if out and not whole and len(title.split()) <= 6 and _TITLE.match(title) and " and " not in title:
        kind, guess = kind_of(title, q, True)  # one title, not its capitalised words apart
        out = [Mention(title, kind, n, True, guess=guess, noun=noun)]
    out = [_without_title(m, q.strip().lower().startswith(("who ", "whom "))) for m in out]
    if re.match(rf"^\s*{_LEADING_PREP}what\b", q, re.IGNORECASE):  # "what ...?" asks for a thing: "North America"
        out = [replace(m, kind=THING, guess=False) if m.guess else m for m in out]
    if noun in _WORKS and text.startswith("The "):  # a title: "The Second Sex"
        out = [replace(m, text="The" + m.text[3:]) if m.text.startswith("the ") else m for m in out]
    if not out and q.strip().lower().startswith(("who ", "whom ", "which ")):
        # "two Chinese hackers": a phrase, not a name, but what "they" will point at.
        words = answered.split()
        kind = GROUP if words and plural(words[-1]) else (PERSON if q.strip().lower().startswith("who") else THING)
        out = [Mention(answered, kind, n, True, noun=noun)]
    return out


def mentions(history: Sequence[Turn]) -> list[Mention]:
    """Every mention of the earlier turns, oldest first (a turn's question before its answer).

    A name a turn's rewrite put in place of a pronoun is that turn's topic.
    """
    found: list[Mention] = []
    for n, turn in enumerate(history):
        q = turn.understood_as
        rewritten = q != turn.question
        asked = [replace(m, topic=True) if rewritten and m.text not in turn.question and not m.phrase else m
                 for m in _mentions_in(q, q, n, False)]
        answered = _answer_mentions(turn, n)
        what_is_the = _WHAT_IS_THE.match(q)
        if answered and what_is_the:  # "What was the first railway?" "the Ludwig Railway": one thing, by its name
            named = {p for p, start, _ in _phrases(q) if start == what_is_the.end() - 4}
            asked = [m for m in asked if not (m.phrase and m.text in named)]
        found.extend(asked + answered)
    # A one-word name is a thing only by default: "Bowman" stays the person an answer said he was.
    known = {m.text: m.kind for m in found if m.kind != THING and not m.phrase}
    return [replace(m, kind=known.get(m.text, THING)) if m.kind == THING and not m.phrase and " " not in m.text else m
            for m in found]
