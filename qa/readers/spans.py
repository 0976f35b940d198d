"""Short answers of the asked type inside a sentence, shared by both readers.

``question_type`` gives a question's coarse answer type; ``extract_span`` finds a span of
that type in one sentence: the title or appositive beside a name for "who is X?", a date
for "when", a number for "how many", a capitalised name for "who"/"where", else the
phrase nearest the question's words. The rule-based ``SentenceReader`` answers with it;
the neural reader uses it to prefer a typed span its model scores nearly as high.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from index.text import STOPWORDS, stem, terms

MONTHS = "january february march april may june july august september october november december".split()
_MONTH_RE = "|".join(m.capitalize() for m in MONTHS) + r"|Jan\.?|Feb\.?|Mar\.?|Apr\.?|Jun\.?|Jul\.?|Aug\.?|Sept?\.?|Oct\.?|Nov\.?|Dec\.?"
DATE_RE = re.compile(
    rf"\b(?:(?:early|late|mid|last|next|this)[ -])?(?:(?:\d{{1,2}}(?:st|nd|rd|th)?\s+)?(?:{_MONTH_RE})(?:\s+\d{{1,2}}(?:st|nd|rd|th)?)?(?:,?\s+\d{{3,4}})?"
    rf"|(?:1[0-9]|20)\d{{2}}s?|\d{{1,2}}(?:st|nd|rd|th) century|(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day)\b"
)
NUMBER_WORDS = "one two three four five six seven eight nine ten eleven twelve dozen hundred thousand million billion trillion half".split()
NUMBER_RE = re.compile(
    r"(?:[$€£]\s?)?\b\d[\d,]*(?:\.\d+)?(?:\s?(?:%|percent|million|billion|thousand|hundred|trillion))?\b"
    r"|\b(?:" + "|".join(NUMBER_WORDS) + r")(?:[ -](?:" + "|".join(NUMBER_WORDS) + r"))*\b",
    re.IGNORECASE,
)
TOKEN_RE = re.compile(r"(?:[A-Z]\.){2,}|[$€£]?\d[\d,.]*%?|[^\W_]+(?:['’\-][^\W_]+)*|[^\w\s]")
ROLE_WORDS = frozenset(
    """official officials spokesman spokeswoman spokesperson president vice minister secretary director chief executive
    officer chairman chairwoman chair founder cofounder co-founder ceo cfo cto head leader analyst professor author
    writer editor reporter correspondent senator governor mayor ambassador general commander king queen prince princess
    emperor judge lawyer attorney manager engineer scientist researcher economist member representative adviser advisor
    counsel former senior deputy assistant acting associate lead principal coach captain player singer actor actress
    artist composer poet philosopher economist physicist chemist biologist historian politician diplomat""".split()
)
SPEECH_VERBS = frozenset("said says say told tells according added wrote asked noted explained stated by".split())
# Words that shape a question without naming what it is about.
QUESTION_FILLER = frozenset("many much name named called kind type sort did does".split())
_NAME_WORD_RE = re.compile(r"[^\W_]+(?:['’.\-][^\W_]+)*")


@dataclass(frozen=True)
class _Token:
    text: str
    start: int  # offset in the sentence
    end: int
    is_word: bool
    is_cap: bool
    in_question: bool
    is_stop: bool


def question_terms(question: str) -> list[str]:
    """Stemmed content terms of a question, without filler such as "how many" or "name"."""
    return list(dict.fromkeys(t for t in terms(question) if t not in {stem(w) for w in QUESTION_FILLER}))


def question_type(question: str) -> str:
    """A coarse answer type: definition, person, date, number, place, or other."""
    q = question.lower().strip()
    if re.match(r"^(who|what)\s+(is|was|are|were)\s+(?!the\s+(name|number)\b)", q) and len(q.split()) <= 8:
        return "definition" if not re.search(r"\b(of|in|for|on|at|to|by|from|that|which|who)\b", " ".join(q.split()[3:])) else ("person" if q.startswith("who") else "other")
    if q.startswith(("who", "whom", "whose")) or re.search(r"\b(which|what)\s+(person|man|woman|company|organi[sz]ation|group)\b", q):
        return "person"
    if q.startswith("when") or re.search(r"\b(what|which)\s+(year|date|month|day|century|decade|time)\b", q) or "how long ago" in q:
        return "date"
    if re.search(r"\bhow\s+(many|much|long|far|old|large|big|tall|high)\b", q) or re.search(r"\bwhat\s+(percentage|percent|number|amount)\b", q):
        return "number"
    if q.startswith("where") or re.search(r"\b(what|which)\s+(city|country|state|place|region|continent|location|town)\b", q):
        return "place"
    return "other"


# "which/what N" where N is a noun the answer's phrase is headed by ("which department"); not an
# auxiliary ("what does"), a determiner or a pronoun ("what the", "which he"), nor "what kind of
# N", which asks for a sort of N ("freight" for "What type of rail line ...?"), not a named one.
_ASKED_NOUN_RE = re.compile(r"\b(?i:which|what)\s+(?!(?i:kinds?|types?|sorts?|forms?)\s+of\b)([a-z][a-z\-]*)\b")
_NOT_NOUNS = frozenset("""is was are were be been do does did has have had can could will would shall should may might
    must got gets""".split())


def asked_noun(question: str) -> str | None:
    """The noun a "which/what N" question asks for, lower-cased ("department" of "Which department
    does Rob Strayer work for?"), or None (also for "what kind of N")."""
    m = _ASKED_NOUN_RE.search(question)
    if m is None:
        return None
    word = m.group(1).lower()
    return None if word in STOPWORDS or word in _NOT_NOUNS else word


def question_names(question: str) -> list[list[str]]:
    """Runs of capitalised words the question names after its first word ("Rob Strayer" of
    "Where did Rob Strayer speak?")."""
    runs: list[list[str]] = []
    run: list[str] = []
    for i, m in enumerate(_NAME_WORD_RE.finditer(question)):
        if i > 0 and m.group()[:1].isupper():
            run.append(m.group())
            continue
        if run:
            runs.append(run)
        run = []
    if run:
        runs.append(run)
    return runs


def question_words(question: str) -> set[str]:
    """The question's words, lower-cased and unstemmed."""
    return {w.lower() for w in re.findall(r"[^\W_]+", question)}


def _tokens(sentence: str, q_terms: set[str], q_words: set[str]) -> list[_Token]:
    out = []
    for m in TOKEN_RE.finditer(sentence):
        t = m.group(0)
        word = bool(re.match(r"[\w$€£]", t))
        low = t.lower()
        in_q = word and (low in q_words or (low not in STOPWORDS and stem(t) in q_terms))
        out.append(_Token(t, m.start(), m.end(), word, word and t[0].isupper(), in_q, low in STOPWORDS))
    return out


def _question_runs(tokens: list[_Token]) -> list[tuple[int, int]]:
    runs, i = [], 0
    while i < len(tokens):
        if tokens[i].in_question and not tokens[i].is_stop:
            j = i
            while j + 1 < len(tokens) and (tokens[j + 1].in_question or (tokens[j + 1].is_stop and j + 2 < len(tokens) and tokens[j + 2].in_question and not tokens[j + 2].is_stop)):
                j += 1
            runs.append((i, j + 1))
            i = j + 1
        else:
            i += 1
    return runs


def _definition(tokens: list[_Token], sentence: str) -> tuple[int, int] | None:
    runs = _question_runs(tokens)
    runs.sort(key=lambda r: -(r[1] - r[0]))
    for a, b in runs:
        # Title before the name: "State Department official Rob Strayer".
        i = a - 1
        while i >= 0 and tokens[i].is_word and not tokens[i].in_question and tokens[i].text.lower() not in SPEECH_VERBS and (
            tokens[i].is_cap or tokens[i].text.lower() in ROLE_WORDS or (tokens[i].text.lower() in ("of", "for") and i > 0 and tokens[i - 1].is_cap)
        ):
            i -= 1
        left = (i + 1, a)
        if left[1] > left[0] and any(tokens[k].text.lower() in ROLE_WORDS for k in range(*left)):
            return tokens[left[0]].start, tokens[left[1] - 1].end
        # Appositive after the name: "Huawei, a Chinese telecom company, ..."; or a copula: "X is Y".
        if b < len(tokens) and tokens[b].text.lower() in (",", "(", "—", "–", "is", "was", "are", "were"):
            j = k = b + 1
            while k < len(tokens) and (tokens[k].in_question or (k > j and tokens[k - 1].in_question and tokens[k].is_stop)):
                k += 1  # "formerly known as": words the question already says
            j = k
            while j < len(tokens) and tokens[j].text not in (",", ")", ";", ".", "—", "–", ":"):
                j += 1
            if j > k and j - k <= 15:
                return tokens[k].start, tokens[j - 1].end
        if left[1] > left[0]:
            return tokens[left[0]].start, tokens[left[1] - 1].end
    return None


def _phrases(tokens: list[_Token]) -> list[tuple[int, int]]:
    """Runs of tokens that are not question words or punctuation, stop words trimmed at the ends."""
    out, i = [], 0
    while i < len(tokens):
        if tokens[i].is_word and not tokens[i].in_question:
            j = i
            while j < len(tokens) and tokens[j].is_word and not tokens[j].in_question:
                j += 1
            a, b = i, j
            while a < b and tokens[a].is_stop:
                a += 1
            while b > a and tokens[b - 1].is_stop:
                b -= 1
            if b > a:
                out.append((a, b))
            i = j
        else:
            i += 1
    return out


def _capitalised(tokens: list[_Token], a: int, b: int) -> list[tuple[int, int]]:
    out, i = [], a
    while i < b:
        if tokens[i].is_cap:
            j = i + 1
            while j < b and (tokens[j].is_cap or (tokens[j].text.lower() in ("of", "de", "the", "and", "&") and j + 1 < b and tokens[j + 1].is_cap)):
                j += 1
            out.append((i, j))
            i = j
        else:
            i += 1
    return out


def extract_span(question: str, sentence: str, q_terms: set[str], q_words: set[str], qtype: str) -> tuple[tuple[int, int] | None, bool]:
    """A short answer inside ``sentence``: ((start, end) or None, whether it is of the asked type)."""
    tokens = _tokens(sentence, q_terms, q_words)
    if not tokens:
        return None, False
    if qtype == "definition":
        span = _definition(tokens, sentence)
        if span:
            return span, True
    q_positions = [i for i, t in enumerate(tokens) if t.in_question and not t.is_stop]
    if not q_positions:
        return None, False

    def distance(a: int, b: int) -> int:
        return min(min(abs(p - a), abs(p - (b - 1))) for p in q_positions)

    def by_token(start: int, end: int) -> tuple[int, int]:
        a = next(i for i, t in enumerate(tokens) if t.end > start)
        b = max(i for i, t in enumerate(tokens) if t.start < end) + 1
        return a, b

    pattern = {"date": DATE_RE, "number": NUMBER_RE}.get(qtype)
    if pattern is not None:
        found = [m for m in pattern.finditer(sentence) if not any(tokens[i].in_question for i in range(*by_token(m.start(), m.end())))]
        if found:
            best = min(found, key=lambda m: distance(*by_token(m.start(), m.end())))
            return (best.start(), best.end()), True
    phrases = _phrases(tokens)
    if not phrases:
        return None, False
    if qtype in ("person", "place", "definition"):
        # A lone capitalised first word ("According", "Later") is the sentence's capital, not a name.
        names = [c for a, b in phrases for c in _capitalised(tokens, a, b) if not (c[0] == 0 and c[1] - c[0] == 1)]
        if qtype == "place":
            preferred = [c for c in names if c[0] > 0 and tokens[c[0] - 1].text.lower() in ("in", "at", "from", "near", "to")]
            names = preferred or names
        if names:
            a, b = min(names, key=lambda c: (distance(*c), -(c[1] - c[0])))
            return (tokens[a].start, tokens[b - 1].end), qtype != "definition"
    a, b = min(phrases, key=lambda c: (distance(*c) + max(0, (c[1] - c[0]) - 6) * 0.5, c[0]))
    b = min(b, a + 10)
    while b > a and tokens[b - 1].is_stop:
        b -= 1
    return (tokens[a].start, tokens[b - 1].end), False
