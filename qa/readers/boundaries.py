"""Answer boundaries that follow the sentence: corrections to the neural reader's best span.

The model picks a start and an end token separately, so its best span can cut across the
syntax of the sentence. ``correct_span`` applies a few rules, each choosing among spans the
syntax allows by the model's own logit for them (``decoding.span_logit``):

- **one sentence** and **whole brackets** (``qa.readers.sentence_spans``): a span that runs
  over a sentence end ("... an Olympic sport. Many bandy players ...") is replaced by the
  model's best span inside one of the sentences it touches; a span with an unmatched bracket
  ("a fee (the insurance premium") becomes the best scored of the part inside the brackets,
  the part outside them, and the span widened to the matching bracket;
- **whole names**: a span that starts or ends inside a run of capitalised words that reads as
  one name ("Boro Science Center" of "the Plum Boro Science Center") widens to the whole name
  when the model scores it within ``NAME_MARGIN`` of the span, or within ``FRAGMENT_MARGIN`` when
  it was cut at a joiner ("Virginia" of "the Colony of Virginia"); ``name_runs`` says what is one
  name: never across a sentence end, a comma or a list, nor into a sentence's first word that is
  a common word, a title before a name or a date;
- **not the question's subject**: a span that holds a name the question itself names with
  other words beside it ("State Department official Rob Strayer at an event at the Center
  ..." for "Where did Rob Strayer speak?") becomes the model's best span after that name (the
  sentence's subject), or before it when nothing follows; a span that is only the title right
  before that name ("National Security Council spokesman" for "Who did Garrett Marquis speak
  to?") becomes the model's best span after the name; a word of nationality that modifies the
  noun after it ("American trade secrets") stays (not for role questions, whose answer is the
  title beside the name);
- **not the thing asked about**: a span that runs from two or more words the question says
  into their relative clause ("executive order that will ban Chinese telecom equipment" for
  "What would the executive order keep out of ...?") becomes the model's best span inside the
  clause;
- **the place asked for**: for "where" questions, a span that is an indefinite common
  noun phrase with a place after it ("a high school in Tucson, Arizona") becomes the
  prepositional object ("Tucson, Arizona"); for "where" and "when" questions a named place or
  a date loses the preposition that leads it ("at the Center for ...", "In January");
- **the noun asked for**: for "which N" questions, a span without N gives way to a name of the
  sentence headed by N ("State Department" for "Which department ...?") when the model scores
  it within ``HEAD_MARGIN`` of the span;
- **whole noun phrases**: a span that starts after a noun phrase's determiner and modifier
  ("diplomatic levels" of "the highest diplomatic levels") widens to the modifier when the
  model scores it within ``PHRASE_MARGIN``;
- **the role asked for**: for "who is X?" / "what is X's job?" / "what does X do?"
  (``is_role_question``) and "what is X?" about a name (``is_name_definition``), a span that
  is not attached to X gives way to the title or appositive beside X (``spans.extract_span``): always when the span is only
  another name of the sentence, else when the model scores the attached one within
  ``ROLE_MARGIN`` of it; a span that holds both the title and X is cut to the title.

Offsets stay exact: every span returned is ``(start, end)`` into the same text, and
``text[start:end]`` is the answer.
"""

from __future__ import annotations

import re
from typing import Sequence

from index.text import STOPWORDS, stem
from qa.readers.neural.agreement import sentence_around
from qa.readers.neural.decoding import WindowLogits, span_logit
from qa.readers.sentence_spans import (best_span_within, one_sentence, sentence_of, sentence_pieces, sentences,
                                       whole_brackets)
from qa.readers.sentences import strip_span
from qa.readers.spans import (DATE_RE, ROLE_WORDS, SPEECH_VERBS, asked_noun, extract_span, question_names,
                              question_terms, question_type, question_words)

__all__ = ["correct_span", "sentence_pieces", "sentences", "best_span_within", "one_sentence", "whole_brackets",
           "name_runs", "whole_name", "not_the_subject", "not_the_asked_thing", "question_names", "place_object",
           "prepositional_object", "whole_noun_phrase", "asked_head", "is_role_question", "asks_occupation",
           "is_name_definition", "role_of_name"]

ROLE_MARGIN = 2.0  # how far below the model's best a role span attached to the asked-about name may score
_NAME_JOINERS = frozenset("of de del der van von la le du da di al bin ibn y the and &".split())
_WHO_IS_RE = re.compile(r"who\s+(?:is|was|are|were)\s+(\S+)", re.IGNORECASE)
_WHAT_IS_RE = re.compile(r"what\s+(?:is|was|are|were)\s+(\S+)", re.IGNORECASE)
# "who is Huawei's chief financial officer?": a possessive before more words asks for a name.
_POSSESSIVE_OF_RE = re.compile(r"\w['’]s?\s+\w")
# "what is X's job?": a role asked of a named person or body.
_ROLE_QUESTION_RE = re.compile(r"\w['’]s\s+(?:job|role|title|position|occupation|profession)\b", re.IGNORECASE)
# "what does X do?" (present tense: an occupation, where "what did X do?" asks for an act).
_WHAT_DOES_DO_RE = re.compile(r"what\s+does\s+([A-Z][\w.'’-]*(?:\s+[A-Z][\w.'’-]*)*)\s+do"
                              r"(?:\s+for\s+(?:a\s+living|work))?\s*\??\s*$", re.IGNORECASE)


def correct_span(question: str, text: str, windows: Sequence[WindowLogits], start: int, end: int,
                 max_answer_tokens: int) -> tuple[int, int]:
    """The reader's span ``text[start:end]`` with its boundaries corrected (see the module docstring).

    Args:
        question: the question.
        text: the passage text the windows were read over.
        windows: the passage's window logits.
        start: the model's span start in ``text``.
        end: the model's span end in ``text``.
        max_answer_tokens: longest span allowed (the reader's).

    Returns:
        ``(start, end)`` in ``text``; the input span when no rule applies.
    """
    s, e = strip_span(text, start, end)
    s, e = one_sentence(text, windows, s, e, max_answer_tokens)
    s, e = whole_brackets(text, windows, s, e, max_answer_tokens)
    s, e = whole_name(text, windows, s, e, max_answer_tokens)
    role = is_role_question(question) or is_name_definition(question)
    if not role:
        s, e = not_the_subject(question, text, windows, s, e, max_answer_tokens)
        s, e = not_the_asked_thing(question, text, windows, s, e, max_answer_tokens)
        s, e = whole_name(text, windows, s, e, max_answer_tokens)
    qtype = question_type(question)
    if qtype == "place":
        s, e = place_object(text, s, e)
    if qtype in ("place", "date"):
        s, e = prepositional_object(text, s, e)
    s, e = asked_head(question, text, windows, s, e, max_answer_tokens)
    s, e = whole_noun_phrase(text, windows, s, e, max_answer_tokens)
    if role:
        s, e = role_of_name(question, text, windows, s, e, max_answer_tokens)
    return strip_span(text, s, e)


# ---- whole names -----------------------------------------------------------------------------------

NAME_MARGIN = 1.0  # how far below the model's best the whole name may score
FRAGMENT_MARGIN = 4.0  # the same, when the span was cut at a joiner inside the name ("Colony of | Virginia")
NAME_MAX_WORDS = 10  # longest name the span may grow to

# Words of a name: a capitalised word (with its inner hyphens, apostrophes and dots: "AT&T",
# "O'Brien", "H.W."), or "&"; lower-case joiners stand inside a name only between capitalised words.
_NAME_TOKEN_RE = re.compile(r"(?:[^\W\d_]\.)+(?!\w)|[^\W_]+(?:[-'’.&][^\W_]+)*|&")
_JOINERS = frozenset("of the for de del der van von la le los las du da di al bin ibn y & and in".split())
_PARTICLES = frozenset("the de del der la le los las du da di".split())
_POSSESSIVE_RE = re.compile(r"['’]s?$")
# Common words capitalised only because they start the sentence ("After", "The").
_SENTENCE_STARTERS = frozenset("""a an the this that these those it its he she his her they their we our i my you your
    in on at of for from by with to into after before during while when where since until as if although though because
    but and or so yet however also then there here some many most all both each every one two no not what which who how
    why once later meanwhile despite following according among between under over""".split())
# Titles that precede a name without being part of it ("Senator John Hale"), with ``ROLE_WORDS``,
# and the names of months and days, which start dates ("Xbox One on October 26").
_TITLE_WORDS = frozenset("""mr mrs ms dr prof sir dame lord lady president senator governor mayor king queen prince
    princess emperor empress pope general gen colonel captain sergeant lieutenant chancellor minister secretary
    judge justice bishop archbishop cardinal reverend rev professor chairman ceo coach speaker
    january february march april may june july august september october november december
    monday tuesday wednesday thursday friday saturday sunday""".split())


def name_runs(text: str, lo: int, hi: int) -> list[tuple[int, int]]:
    """The runs of capitalised words that read as one name in the sentence ``text[lo:hi]``:
    "University of New South Wales", "Bill & Melinda Gates Foundation", "Bug in the Bassbin".

    Words are separated by white space alone (a comma, a bracket or a quotation mark ends a
    run) and a possessive ends one. Joiners stand only between capitalised words (``_joins``).
    A sentence's first word that is a common word ("After", "The") and a title before a name
    ("Senator", ``ROLE_WORDS``) are no part of one.
    """
    tokens = [(m.start(), m.end()) for m in _NAME_TOKEN_RE.finditer(text, lo, hi)]
    runs: list[tuple[int, int]] = []
    run: list[tuple[int, int]] = []
    joined: list[str] = []  # joiners waiting for the next capitalised word
    listed = False  # the run follows a comma: an item of a list, which "and" does not join

    def close() -> None:
        if run:
            runs.append((run[0][0], run[-1][1]))
        run.clear()
        joined.clear()

    for k, (a, z) in enumerate(tokens):
        word = text[a:z]
        gap = text[tokens[k - 1][1]:a] if k else ""
        if run and (gap.strip() or "\n" in gap):
            close()
        lower = word.lower()
        capital = word[:1].isupper() and not (k == 0 and lower in _SENTENCE_STARTERS) \
            and lower not in _TITLE_WORDS and lower not in ROLE_WORDS
        if capital:
            if run and not _joins(joined, listed):
                close()
            if not run:
                listed = "," in gap
            run.append((a, z))
            joined.clear()
            possessive = _POSSESSIVE_RE.search(word)
            if possessive:
                run[-1] = (a, a + possessive.start())
                close()
        elif run and lower in _JOINERS and len(joined) < 2:
            joined.append(lower)
        else:
            close()
    close()
    return [(a, z) for a, z in runs if 1 < len(text[a:z].split()) <= NAME_MAX_WORDS]


def _joins(joined: list[str], listed: bool) -> bool:
    """Whether the joiners between two capitalised words keep them in one name: none; one joiner
    ("of", "&", "de"); a particle pair ("of the", "van der"); "in the" ("Bug in the Bassbin",
    where "in" alone is a place: "the Science Center in Plum"); "and" unless the name is an item
    of a comma-separated list ("Huawei, ZTE and Apple")."""
    if not joined:
        return True
    if "and" in joined and listed:
        return False
    if joined == ["in", "the"]:
        return True
    return "in" not in joined and (len(joined) == 1 or joined[1] in _PARTICLES)


def whole_name(text: str, windows: Sequence[WindowLogits], s: int, e: int, max_answer_tokens: int) -> tuple[int, int]:
    """A span that starts or ends inside a name (``name_runs``) widened to the whole name when the
    model scores it within ``NAME_MARGIN`` of the span ("Boro Science Center" of "the Plum Boro
    Science Center"), or within ``FRAGMENT_MARGIN`` when the span was cut at a joiner, where what is
    left is no name of its own ("Virginia" of "the Colony of Virginia", "Taming" of "The Taming of
    the Shrew"). A cut at "and" or "&" takes ``NAME_MARGIN``: "Melinda Gates" of "the Bill & Melinda
    Gates Foundation" is a name."""
    ss, se = sentence_of(text, s, e)
    a, z, fragment = s, e, False
    for r0, r1 in name_runs(text, ss, se):
        if r0 < s < r1:
            a = r0
            fragment |= _cut_at_joiner(text[r0:s].split()[-1], text[s:e].split()[0])
        if r0 < e < r1:
            z = r1
            fragment |= _cut_at_joiner(text[s:e].split()[-1], text[e:r1].split()[0])
    if (a, z) == (s, e):
        return s, e
    best = span_logit(windows, s, e, max_answer_tokens)
    whole = span_logit(windows, a, z, max_answer_tokens)
    if best is None or whole is None or whole[0] < best[0] - (FRAGMENT_MARGIN if fragment else NAME_MARGIN):
        return s, e
    return a, z


def _cut_at_joiner(before: str, after: str) -> bool:
    """Whether a cut between the words ``before`` and ``after`` of a name falls at a joiner other
    than "and" and "&"."""
    return any(w.lower() in _JOINERS and w.lower() not in ("and", "&") for w in (before, after))


# ---- the question's own subject -------------------------------------------------------------------

_WORD_RE = re.compile(r"[^\W_]+(?:['’.\-][^\W_]+)*")
# One capitalised word of nationality or language: "American", "Chinese", "British", "Iraqi".
_DEMONYM_RE = re.compile(r"[A-Z][a-z]+(?:an|ese|ish|ic|i)")


def _inside_longer_name(text: str, a: int, z: int) -> bool:
    """Whether ``text[a:z]`` is part of a longer name: a capitalised word beside it, past joiners
    only ("Plum Boro Science Center", "Quebec and the Struggle over ...", "The Taming of the Shrew")."""
    preceding = re.search(r"(?:[^\W_]+[ \t]+)*$", text[max(0, a - 80):a]).group().split()[::-1]
    following = re.match(r"(?:[ \t]+[^\W_]+)*", text[z:z + 80]).group().split()
    for words in (preceding, following):
        for word in words:
            if word[:1].isupper():
                return True
            if word.lower() not in _JOINERS:
                break
    return False


def not_the_subject(question: str, text: str, windows: Sequence[WindowLogits], s: int, e: int,
                    max_answer_tokens: int) -> tuple[int, int]:
    """A span that holds a name the question itself names, with other words beside it, restates
    the question ("State Department official Rob Strayer at an event at the Center ..." for
    "Where did Rob Strayer speak?"): it becomes the model's best span in the part after the
    name, or before it when nothing follows. A span that is only the title right before that
    name ("National Security Council spokesman" of "... spokesman Garrett Marquis told
    Politico" for "Who did Garrett Marquis speak to?") names the question's subject again: it
    becomes the model's best span after the name. A word of nationality that modifies the noun
    after it ("American trade secrets") is part of the answer's noun phrase and stays."""
    span = text[s:e]
    _, se = sentence_of(text, s, e)
    for run in question_names(question):
        pattern = r"(?<!\w)" + r"\W+".join(map(re.escape, run)) + r"(?!\w)"
        m = re.search(pattern, span)
        if m is None:
            title = re.match(r"[ \t]+" + pattern, text[e:se])
            if title is not None and _is_title(span) and _WORD_RE.search(text, e + title.end(), se):
                found = best_span_within(windows, e + title.end(), se, max_answer_tokens)
                return (found[1], found[2]) if found is not None else (s, e)
            continue
        a, z = s + m.start(), s + m.end()
        if _inside_longer_name(text, a, z) or _modifies_next(text, a, z, e):
            continue
        # The name asked about is the sentence's subject: what the question asks comes after it
        # (verb, object, place, time); before it stand its title and appositives.
        for lo, hi in ((z, e), (s, a)):
            if _WORD_RE.search(text, lo, hi):
                found = best_span_within(windows, lo, hi, max_answer_tokens)
                return (found[1], found[2]) if found is not None else (s, e)
        return s, e
    return s, e


_RELATIVE_RE = re.compile(r"[ \t]*,?[ \t]+(?:that|which|who)[ \t]+", re.IGNORECASE)


def not_the_asked_thing(question: str, text: str, windows: Sequence[WindowLogits], s: int, e: int,
                        max_answer_tokens: int) -> tuple[int, int]:
    """A span that runs from two or more words the question says in a row into their relative
    clause ("executive order that will ban Chinese telecom equipment" for "What would the
    executive order keep out of ...?") names the thing asked about and then what is said of
    it: it becomes the model's best span inside the clause."""
    stems = {stem(w) for w in question_words(question) if w not in STOPWORDS}
    run, last = 0, s
    for w in _WORD_RE.finditer(text, s, e):
        if w.group().lower() not in STOPWORDS and stem(w.group()) in stems:
            run, last = run + 1, w.end()
            continue
        m = _RELATIVE_RE.match(text, last, e) if run >= 2 else None
        if m is not None and _WORD_RE.search(text, m.end(), e):
            found = best_span_within(windows, m.end(), e, max_answer_tokens)
            return (found[1], found[2]) if found is not None else (s, e)
        run = 0
    return s, e


def _is_title(span: str) -> bool:
    """Whether ``span`` reads as a title before a name: it ends with a role word ("spokesman",
    "official", ``ROLE_WORDS``)."""
    words = re.findall(r"[^\W_]+", span)
    return bool(words) and words[-1].lower() in ROLE_WORDS


def _modifies_next(text: str, a: int, z: int, e: int) -> bool:
    """Whether the name ``text[a:z]`` is a word of nationality that modifies the next word of the
    span ``...:e`` ("American | trade secrets", "Chinese | hackers"), and so belongs to its noun
    phrase; not a name followed by its verb ("Alaska | uses") or a preposition ("Rob Strayer | at")."""
    if not _DEMONYM_RE.fullmatch(text[a:z]):
        return False
    m = re.match(r"[ \t]+([^\W\d_][\w'’\-]*)", text[z:e])
    return m is not None and m.group(1)[:1].islower() and m.group(1).lower() not in STOPWORDS


# ---- places --------------------------------------------------------------------------------------

_INDEFINITE_PLACE_RE = re.compile(r"(?:a|an|one)\s+[a-z][\w'’\-]*\s+(?:[\w'’\-]+\s+){0,3}?(?:in|at|near|outside(?: of)?)\s+(?=\S)")
# A preposition that says where or when a thing is, before the place or time itself.
_LEADING_PREPOSITION_RE = re.compile(r"(?:in|at|on|near|inside|within|during)\s+(?=\S)", re.IGNORECASE)


def place_object(text: str, s: int, e: int) -> tuple[int, int]:
    """For "where" questions: "a high school in Tucson, Arizona" -> "Tucson, Arizona".

    Only a span that starts with an indefinite article and a lower-case word (a common noun
    phrase, not a named place such as "The Beverly Hilton in Beverly Hills") is cut to what
    follows its first locative preposition.
    """
    m = _INDEFINITE_PLACE_RE.match(text, s, e)
    if not m or m.end() >= e:
        return s, e
    return m.end(), e


def prepositional_object(text: str, s: int, e: int) -> tuple[int, int]:
    """For "where" and "when" questions: a named place or a date without the preposition that
    leads the span ("at the Center for Strategic and International Studies" -> "the Center for
    Strategic and International Studies", "In January" -> "January"). A common noun phrase keeps
    its preposition ("on the walls of buildings", "At the start of Season 7"), and prepositions
    that change the meaning ("before the end of February", "after 1990") stay."""
    m = _LEADING_PREPOSITION_RE.match(text, s, e)
    if not m or m.end() >= e:
        return s, e
    rest = text[m.end():e]
    named = re.match(r"(?:the\s+)?[A-Z]", rest) is not None
    dated = (d := DATE_RE.match(rest)) is not None and d.end() > 0
    return (m.end(), e) if named or dated else (s, e)


# ---- whole noun phrases -------------------------------------------------------------------------

PHRASE_MARGIN = 1.5  # how far below the model's best the whole noun phrase may score
_NONSPACE_RE = re.compile(r"\S+")
_DETERMINERS = frozenset("the a an its their his her our this these those".split())


def whole_noun_phrase(text: str, windows: Sequence[WindowLogits], s: int, e: int,
                      max_answer_tokens: int) -> tuple[int, int]:
    """A span that starts inside a noun phrase, after its determiner and a modifier ("diplomatic
    levels" of "the highest diplomatic levels"), widened to the words after the determiner when
    the model scores that within ``PHRASE_MARGIN`` of the span. Only a span that starts with a
    lower-case word and ends its phrase, one or two lower-case content words after the
    determiner."""
    if not text[s:s + 1].islower():
        return s, e
    ss, _ = sentence_of(text, s, e)
    before = list(_NONSPACE_RE.finditer(text, max(ss, s - 60), s))[-3:]
    k = next((k for k in (1, 2) if len(before) > k and before[-k - 1].group().lower() in _DETERMINERS), None)
    if k is None or before[-1].end() < s - 1 or not all(
            re.fullmatch(r"[a-z][\w\-]*", w.group()) and w.group() not in STOPWORDS and w.group() not in SPEECH_VERBS
            for w in before[-k:]):
        return s, e
    after = re.match(r"[ \t]+([a-z][\w\-]*)", text[e:e + 40])
    if after is not None and after.group(1) not in STOPWORDS:
        return s, e  # the span is itself a modifier ("parabolic" of "a curving parabolic path")
    a = before[-k].start()
    best = span_logit(windows, s, e, max_answer_tokens)
    whole = span_logit(windows, a, e, max_answer_tokens)
    if best is None or whole is None or whole[0] < best[0] - PHRASE_MARGIN:
        return s, e
    return whole[1], whole[2]


# ---- the noun asked for --------------------------------------------------------------------------

HEAD_MARGIN = 1.0  # how far below the model's best a span headed by the asked noun may score


def asked_head(question: str, text: str, windows: Sequence[WindowLogits], s: int, e: int,
               max_answer_tokens: int) -> tuple[int, int]:
    """For "which/what N" questions (``asked_noun``), a span without N gives way to a name of its
    sentence that ends with N ("State Department" for "Which department does Rob Strayer work
    for?"), when the model scores it within ``HEAD_MARGIN`` of the span. A span that stops
    before N ("American 5G" of "the American 5G market" for "Which market ...?") is left as
    it is: the modifier alone is how such answers are usually given."""
    noun = asked_noun(question)
    if noun is None:
        return s, e
    head = stem(noun)
    if any(stem(w) == head for w in _WORD_RE.findall(text, s, e)):
        return s, e
    ss, se = sentence_of(text, s, e)
    options = []
    q_words = question_words(question)
    for r0, r1 in name_runs(text, ss, se):
        words = _WORD_RE.findall(text, r0, r1)
        if stem(words[-1]) == head and not all(w.lower() in q_words for w in words):
            options.append((r0, r1))
    best = span_logit(windows, s, e, max_answer_tokens)
    scored = [f for a, z in options if (f := span_logit(windows, a, z, max_answer_tokens)) is not None]
    if best is None or not scored:
        return s, e
    top = max(scored)
    return (top[1], top[2]) if top[0] >= best[0] - HEAD_MARGIN else (s, e)


# ---- roles ----------------------------------------------------------------------------------------

def is_role_question(question: str) -> bool:
    """Whether the question asks who someone named is or what their role is ("who is Tom Reyes?",
    "what is X's job?", "what does X do?"); not "who was the first director?" nor "who is
    Huawei's chief financial officer?", whose answers are names, nor "what did X do?"."""
    q = question.strip()
    if _ROLE_QUESTION_RE.search(q):
        return True
    if asks_occupation(q):
        return True
    m = _WHO_IS_RE.match(q)
    return m is not None and m.group(1)[:1].isupper() and question_type(q) == "definition" \
        and not _POSSESSIVE_OF_RE.search(q, m.start(1))


def asks_occupation(question: str) -> bool:
    """Whether the question asks what someone named does for a living ("What does Garrett
    Marquis do?"); not "what did X do?" (an act) nor "what does he do?" (rewritten first)."""
    m = _WHAT_DOES_DO_RE.match(question.strip())
    return m is not None and m.group(1)[:1].isupper()


def is_name_definition(question: str) -> bool:
    """Whether the question asks what something named is ("What is ZTE?"): answered, as a role
    question is, by the appositive or title beside the name."""
    q = question.strip()
    m = _WHAT_IS_RE.match(q)
    return m is not None and m.group(1)[:1].isupper() and question_type(q) == "definition" \
        and not _POSSESSIVE_OF_RE.search(q, m.start(1))


def role_of_name(question: str, text: str, windows: Sequence[WindowLogits], s: int, e: int,
                 max_answer_tokens: int) -> tuple[int, int]:
    """For role questions: the title or appositive attached to the name asked about
    ("engineer" in "hired engineer Tom Reyes after its chief executive Dana Cole ..." for
    "who is Tom Reyes?") instead of a span elsewhere in the sentence. A span that is only
    another name ("Dana Cole") always gives way; any other when the model scores the
    attached one within ``ROLE_MARGIN`` of it, and for "what does X do?" always (the sentence's
    other spans say what is done, not X's occupation). A span that holds both the attached one
    and the name ("Huawei and ZTE, a Chinese multinational ... company" for "What is ZTE?") is
    cut to the attached one."""
    q_words = question_words(question)
    ss, se = sentence_around(text, s, e)
    span, typed = extract_span(question, text[ss:se], set(question_terms(question)), q_words, "definition")
    if span is None or not typed:
        return s, e
    a, z = ss + span[0], ss + span[1]
    if (a, z) == (s, e):
        return s, e
    if s <= a and z <= e:
        # The span holds the attached title and the name asked about: the name restates the question.
        return (a, z) if _names_asked(question, text, s, a) or _names_asked(question, text, z, e) else (s, e)
    if a < e and z > s:
        return s, e
    if _other_name(text[s:e], q_words) or asks_occupation(question):
        return a, z  # another name, or an act of the sentence where the occupation was asked
    best = span_logit(windows, s, e, max_answer_tokens)
    alt = span_logit(windows, a, z, max_answer_tokens)
    if best is None or alt is None or alt[0] < best[0] - ROLE_MARGIN:
        return s, e
    return alt[1], alt[2]


def _names_asked(question: str, text: str, lo: int, hi: int) -> bool:
    """Whether ``text[lo:hi]`` holds a name the question names (``question_names``)."""
    return any(re.search(r"(?<!\w)" + r"\W+".join(map(re.escape, run)) + r"(?!\w)", text[lo:hi])
               for run in question_names(question))


def _other_name(span: str, q_words: set[str]) -> bool:
    """Whether ``span`` is only a capitalised name that the question does not mention."""
    words = re.findall(r"[^\W_]+", span)
    return bool(words) and all(w[:1].isupper() or w.lower() in _NAME_JOINERS for w in words) \
        and not any(w.lower() in ROLE_WORDS or w.lower() in q_words for w in words)
