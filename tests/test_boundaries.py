"""Answer boundaries (qa.readers.boundaries): hand-made sentences whose right answers are known.

The rules choose among syntactic options by the model's logits; the rule tests give those
logits by hand (one window over the sentence, a logit per word) so that the model's best
span is known, then check the corrected span and its exact offsets. The role and whole-name
tests also run the real reader end to end.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from qa.eval.longdocs import DEFAULT_DATA_DIR
from qa.readers.boundaries import (FRAGMENT_MARGIN, HEAD_MARGIN, NAME_MARGIN, PHRASE_MARGIN, asked_head, correct_span,
                                   is_name_definition, is_role_question, name_runs, not_the_asked_thing,
                                   not_the_subject, one_sentence, place_object, prepositional_object, sentence_pieces,
                                   whole_brackets, whole_name, whole_noun_phrase)
from qa.readers.spans import asked_noun
from qa.readers.neural import NeuralReader
from qa.readers.neural.decoding import WindowLogits, best_of_windows
from qa.types import Passage

MAX_TOKENS = 30


def _window(text: str, starts: dict[str, float], ends: dict[str, float]) -> WindowLogits:
    """One window over ``text``, one token per word or punctuation mark ([CLS] first), with
    the start/end logit of the words named (by their text, first occurrence) and -5 elsewhere."""
    tokens = [(m.start(), m.end()) for m in re.finditer(r"\w+|[^\w\s]", text)]
    start = np.full(len(tokens) + 1, -5.0, dtype=np.float32)
    end = start.copy()
    start[0] = end[0] = -10.0
    for scores, arr in ((starts, start), (ends, end)):
        for word, value in scores.items():
            i = next(k for k, (a, b) in enumerate(tokens) if text[a:b] == word)
            arr[i + 1] = value
    return WindowLogits(start, end, [None] + tokens)


def _best(text: str, window: WindowLogits) -> tuple[int, int]:
    _, _, s, e = best_of_windows([window], MAX_TOKENS)
    return s, e


HOCKEY = "In 1920 ice hockey became an Olympic sport. Many bandy players switched to ice hockey then."


def test_a_span_over_a_sentence_end_becomes_the_best_span_inside_one_sentence():
    w = _window(HOCKEY, starts={"Olympic": 5.0, "bandy": 4.0}, ends={"players": 5.0, "sport": 3.0})
    s, e = _best(HOCKEY, w)
    assert HOCKEY[s:e] == "Olympic sport. Many bandy players"  # what the model alone would answer
    s, e = one_sentence(HOCKEY, [w], s, e, MAX_TOKENS)
    assert HOCKEY[s:e] == "bandy players"
    assert (s, e) == (HOCKEY.index("bandy"), HOCKEY.index("bandy") + len("bandy players"))


def test_initials_do_not_end_a_sentence():
    text = "He was succeeded by George H.W. Bush in 1989. The next year was calm."
    s = text.index("George")
    e = text.index(" in 1989")
    assert [text[a:b] for a, b in sentence_pieces(text, s, e)] == ["George H.W. Bush"]
    w = _window(text, starts={"George": 5.0}, ends={"Bush": 5.0})
    assert one_sentence(text, [w], s, e, MAX_TOKENS) == (s, e)


def test_an_abbreviation_before_a_number_does_not_end_a_sentence():
    text = "The republic had ca. 2 million people before the war. It grew later."
    s, e = text.index("ca."), text.index(" people")
    assert [text[a:b] for a, b in sentence_pieces(text, s, e)] == ["ca. 2 million"]


def test_a_span_inside_one_sentence_is_left_alone():
    w = _window(HOCKEY, starts={"ice": 5.0}, ends={"hockey": 5.0})
    s, e = _best(HOCKEY, w)
    assert HOCKEY[s:e] == "ice hockey"
    assert one_sentence(HOCKEY, [w], s, e, MAX_TOKENS) == (s, e)


FEE = "Each month, policyholders pay a fee (the insurance premium) to their insurer."


def test_an_unmatched_bracket_gives_the_best_balanced_span():
    # The model starts at "a" and ends at "premium": "a fee (the insurance premium".
    w = _window(FEE, starts={"a": 5.0, "the": 4.5}, ends={"premium": 5.0, "fee": 1.0})
    s, e = _best(FEE, w)
    assert FEE[s:e] == "a fee (the insurance premium"
    s, e = whole_brackets(FEE, [w], s, e, MAX_TOKENS)
    assert FEE[s:e] == "the insurance premium"
    assert s == FEE.index("the insurance")


def test_an_unmatched_bracket_widens_to_its_match_when_the_model_prefers_it():
    w = _window(FEE, starts={"a": 5.0}, ends={"premium": 5.0, ")": 4.8, "fee": 1.0})
    s, e = _best(FEE, w)
    s, e = whole_brackets(FEE, [w], s, e, MAX_TOKENS)
    assert FEE[s:e] == "a fee (the insurance premium)"


def test_balanced_brackets_are_left_alone():
    w = _window(FEE, starts={"a": 5.0}, ends={")": 5.0})
    s, e = _best(FEE, w)
    assert FEE[s:e] == "a fee (the insurance premium)"
    assert whole_brackets(FEE, [w], s, e, MAX_TOKENS) == (s, e)
    assert correct_span("What do policyholders pay?", FEE, [w], s, e, MAX_TOKENS) == (s, e)


MOVIE = "The film takes place at a high school in Tucson, Arizona, during one school year."
PLACE_NAME = "The ceremony was held at The Beverly Hilton in Beverly Hills, California."


def test_a_where_answer_that_is_a_common_noun_phrase_becomes_the_place_after_it():
    s, e = MOVIE.index("a high"), MOVIE.index(", during")
    assert place_object(MOVIE, s, e) == (MOVIE.index("Tucson"), e)
    w = _window(MOVIE, starts={"a": 5.0}, ends={"Arizona": 5.0})
    s, e = correct_span("Where does the film take place?", MOVIE, [w], *_best(MOVIE, w), MAX_TOKENS)
    assert MOVIE[s:e] == "Tucson, Arizona"


def test_a_named_place_and_other_questions_are_left_alone():
    s, e = PLACE_NAME.index("The Beverly"), len(PLACE_NAME) - 1
    assert place_object(PLACE_NAME, s, e) == (s, e)
    w = _window(MOVIE, starts={"a": 5.0}, ends={"Arizona": 5.0})
    s, e = _best(MOVIE, w)
    assert correct_span("What kind of school is the film set in?", MOVIE, [w], s, e, MAX_TOKENS) == (s, e)


# ---- whole names --------------------------------------------------------------------------------

def _runs(text: str) -> list[str]:
    return [text[a:z] for a, z in name_runs(text, 0, len(text))]


def test_name_runs_hold_whole_names_with_their_joiners():
    assert _runs("The jazz break on Carl Craig's Bug in the Bassbin was influential.") == ["Carl Craig",
                                                                                          "Bug in the Bassbin"]
    assert _runs("A grant from the Bill & Melinda Gates Foundation paid for the University of New South Wales "
                 "to host Tommy James and the Shondells.") == [
        "Bill & Melinda Gates Foundation", "University of New South Wales", "Tommy James and the Shondells"]


@pytest.mark.parametrize("text, runs", [
    ("Huawei, ZTE and Apple were named in the report.", []),  # a list, not a name
    ("Many Microsoft engineers left in 2001.", []),  # a common word that only starts the sentence
    ("The report was praised by Senator John Hale in Boston.", ["John Hale"]),  # a title; "in" alone is a place
    ("Xbox One owners got a discount on October 26.", ["Xbox One"]),  # a date is no part of a name
    ("The deal went to Acme Labs. Beta Corp sold it.", ["Acme Labs", "Beta Corp"]),  # a sentence end
])
def test_name_runs_stop_at_lists_sentence_starts_titles_dates_and_sentence_ends(text, runs):
    assert _runs(text) == runs


PLUM = "The university runs the Plum Boro Science Center in Plum."
COLONY = "The first permanent settlement was founded in the Colony of Virginia in 1607."


def test_a_span_inside_a_name_widens_to_the_whole_name_when_the_model_scores_it_close():
    w = _window(PLUM, starts={"Boro": 5.0, "Plum": 5.0 - NAME_MARGIN / 2}, ends={"Center": 5.0})
    s, e = _best(PLUM, w)
    assert PLUM[s:e] == "Boro Science Center"
    s, e = whole_name(PLUM, [w], s, e, MAX_TOKENS)
    assert PLUM[s:e] == "Plum Boro Science Center"
    assert s == PLUM.index("Plum Boro")
    assert PLUM[slice(*correct_span("What does the university run in Plum?", PLUM, [w], *_best(PLUM, w),
                                    MAX_TOKENS))] == "Plum Boro Science Center"


def test_a_whole_name_the_model_scores_far_lower_is_not_taken():
    w = _window(PLUM, starts={"Boro": 5.0, "Plum": 5.0 - 2 * NAME_MARGIN}, ends={"Center": 5.0})
    s, e = _best(PLUM, w)
    assert whole_name(PLUM, [w], s, e, MAX_TOKENS) == (s, e)


def test_a_span_cut_at_a_joiner_takes_the_wider_margin():
    gap = (NAME_MARGIN + FRAGMENT_MARGIN) / 2
    w = _window(COLONY, starts={"Virginia": 5.0, "Colony": 5.0 - gap}, ends={"Virginia": 5.0})
    s, e = _best(COLONY, w)
    assert COLONY[s:e] == "Virginia"
    assert COLONY[slice(*whole_name(COLONY, [w], s, e, MAX_TOKENS))] == "Colony of Virginia"


@pytest.mark.parametrize("text, starts, ends, answer", [
    ("Huawei, ZTE and Apple were named in the report.", {"ZTE": 5.0}, {"ZTE": 5.0, "Apple": 4.9}, "ZTE"),
    ("Many Microsoft engineers left in 2001.", {"Microsoft": 5.0, "Many": 4.9}, {"Microsoft": 5.0}, "Microsoft"),
    ("The report was praised by Senator John Hale in Boston.", {"John": 5.0, "Senator": 4.9}, {"Hale": 5.0},
     "John Hale"),
])
def test_a_list_a_sentence_start_and_a_title_are_left_alone_even_when_the_model_scores_them_close(
        text, starts, ends, answer):
    w = _window(text, starts=starts, ends=ends)
    s, e = _best(text, w)
    assert text[s:e] == answer
    assert whole_name(text, [w], s, e, MAX_TOKENS) == (s, e)


@pytest.mark.parametrize("question, role", [
    ("who is Tom Reyes?", True), ("What is Rob Strayer's job?", True), ("who was Lincoln?", True),
    ("What is SMS?", False), ("What is the title of the book?", False), ("Who is the CEO of Apple?", False),
    ("Who was the museum's first director?", False),
    ("What does Garrett Marquis do?", True), ("What does Tom Reyes do for a living?", True),
    ("What did Tom Reyes do?", False), ("What does he do?", False), ("What does ZTE make?", False),
])
def test_role_questions(question, role):
    assert is_role_question(question) is role


# ---- the real reader: role questions ------------------------------------------------------------

ACME = "Acme Robotics hired engineer Tom Reyes after its chief executive Dana Cole visited the plant in Ohio."
HARBOR = "The report was praised by Senator John Hale, who met Maria Lopez, the chief economist of the Harbor Bank, in Boston."


def _answer(reader: NeuralReader, question: str, text: str, boundaries: bool = True) -> str:
    doc = "Notes.\n\n" + text
    p = Passage(chunk_id=0, source="doc.txt", start=8, end=len(doc), text=text, score=0.5)
    r = NeuralReader(reader.model, reader.tokenizer, reader.config, reader.path, precision=reader.precision,
                     boundaries=boundaries)
    reading = r.score_passages(question, [p])[0]
    assert doc[reading.answer_start:reading.answer_end] == reading.answer
    return reading.answer


@pytest.mark.parametrize("question, answer", [
    ("who is Tom Reyes?", "engineer"),
    ("who is Dana Cole?", "chief executive"),
])
def test_who_is_x_takes_the_title_beside_x_not_another_name(reader, question, answer):
    assert _answer(reader, question, ACME) == answer
    # The model's own best span is the sentence's other person.
    assert _answer(reader, question, ACME, boundaries=False) not in (answer, "")


def test_a_role_question_takes_the_title_of_the_name_asked_about(reader):
    text = ("Huawei and ZTE were accused of spying, State Department official Rob Strayer told reporters "
            "at the Center for Strategic and International Studies.")
    assert _answer(reader, "what is Rob Strayer's role?", text) == "State Department official"


def test_what_does_x_do_takes_the_title_beside_x_not_what_the_sentence_says_is_done(reader):
    text = ("National Security Council spokesman Garrett Marquis told reporters that the agency was "
            "working with its allies to mitigate risk in the deployment of new wireless networks.")
    assert _answer(reader, "What does Garrett Marquis do?", text) == "National Security Council spokesman"
    assert _answer(reader, "What does Garrett Marquis do?", text, boundaries=False) != "National Security Council spokesman"


@pytest.mark.parametrize("question", ["who is Maria Lopez?", "What is Maria Lopez's job?"])
def test_a_right_role_answer_is_left_alone(reader, question):
    assert _answer(reader, question, HARBOR) == "the chief economist of the Harbor Bank"
    assert _answer(reader, question, HARBOR, boundaries=False) == "the chief economist of the Harbor Bank"


SHREW = "She played the lead in The Taming of the Shrew at the Globe Theatre."
PULITZER = "She won the Pulitzer Prize for Fiction in 1988 for her novel."


@pytest.mark.parametrize("question, text, cut, whole", [
    ("Which Shrew play did she act in?", SHREW, "Taming", "The Taming of the Shrew"),
    ("Which Pulitzer did she win?", PULITZER, "Fiction", "Pulitzer Prize for Fiction"),
    ("In which colony was the first permanent settlement founded?", COLONY, "Virginia", "Colony of Virginia"),
])
def test_the_reader_answers_with_the_whole_title_or_name(reader, question, text, cut, whole):
    assert _answer(reader, question, text, boundaries=False) == cut  # the model alone stops inside it
    assert _answer(reader, question, text) == whole


@pytest.mark.parametrize("question, text, answer", [
    ("Which company besides Huawei and Apple was named?", "Huawei, ZTE and Apple were named in the report.", "ZTE"),
    ("Which company's engineers left in 2001?", "Many Microsoft engineers left the company in 2001.", "Microsoft"),
    ("Which foundation gave the grant?", "The grant came from the Bill & Melinda Gates Foundation in 2010.",
     "Bill & Melinda Gates Foundation"),
])
def test_the_reader_leaves_a_name_of_a_list_a_sentence_start_and_a_whole_name_alone(reader, question, text, answer):
    assert _answer(reader, question, text) == answer


def test_boundaries_keep_every_answer_a_verbatim_substring(reader):
    text = HOCKEY + " " + FEE + " " + ACME
    for question in ("Which sport did bandy players switch to?", "What is the fee called?", "who is Tom Reyes?",
                     "When did ice hockey become an Olympic sport?"):
        assert _answer(reader, question, text) in text


# ---- the measurement set ------------------------------------------------------------------------

QA_TRAIN = DEFAULT_DATA_DIR


@pytest.mark.skipif(not QA_TRAIN.is_dir(), reason="needs ../shared/data/qa-train")
def test_the_boundary_set_holds_only_held_out_paragraphs_split_by_article():
    from qa.eval.boundaries import load_boundaries
    from qa.eval.datasets import is_heldout
    from qa.eval.longdocs import part_of

    tune, check = load_boundaries("tune", QA_TRAIN), load_boundaries("check", QA_TRAIN)
    assert len(tune.questions) > 300 and len(check.questions) > 300
    assert not {q.title for q in tune.questions} & {q.title for q in check.questions}
    assert {part_of(q.title) for q in check.questions} == {"heldout"}
    for part in (tune, check):
        for q in part.questions:
            context = part.context(q)
            assert is_heldout(context, 50)
            start = q.answer_starts[0]
            assert context[start:start + len(q.answers[0])] == q.answers[0]


def test_the_setting_turns_the_corrections_off(reader):
    from qa.engine import answer_from_context
    from qa.settings import QASettings

    on = answer_from_context("who is Tom Reyes?", ACME, reader="neural", settings=QASettings(min_score=0.0))
    off = answer_from_context("who is Tom Reyes?", ACME, reader="neural",
                              settings=QASettings(min_score=0.0, answer_boundaries=False))
    assert on.text == "engineer" and off.text == "Dana Cole"
    c = on.citations[0]
    assert ACME[c.start:c.end] == c.quote and "engineer Tom Reyes" in c.quote


STRAYER = ("“We’re raising it at the highest diplomatic levels,” said State Department official Rob Strayer at an "
           "event at the Center for Strategic and International Studies.")


def test_an_answer_that_restates_the_name_asked_about_becomes_what_follows_it(reader):
    question = "Where did Rob Strayer speak?"
    assert "Rob Strayer" in _answer(reader, question, STRAYER, boundaries=False)
    answer = _answer(reader, question, STRAYER)
    assert answer.endswith("Center for Strategic and International Studies") and "Strayer" not in answer


def test_the_name_asked_about_inside_a_longer_name_is_left_alone():
    from qa.readers.boundaries import _inside_longer_name, question_names

    assert question_names("Where did Rob Strayer speak with ZTE?") == [["Rob", "Strayer"], ["ZTE"]]
    text = "the Plum Boro Science Center; a book, Quebec and the Struggle over Sovereignty; said Rob Strayer at noon"
    plum, quebec, rob = text.index("Plum"), text.index("Quebec"), text.index("Rob")
    assert _inside_longer_name(text, plum, plum + len("Plum"))
    assert _inside_longer_name(text, quebec, quebec + len("Quebec"))
    assert not _inside_longer_name(text, rob, rob + len("Rob Strayer"))


# ---- the question's subject, the place, the noun and the phrase asked for -----------------------

PORT = "Port Authority spokeswoman Lena Ortiz told Reuters that the pier would reopen in May."


def test_a_title_right_before_the_name_asked_about_gives_way_to_what_follows_the_name():
    w = _window(PORT, starts={"Port": 6.0, "Reuters": 4.0}, ends={"spokeswoman": 6.0, "Reuters": 4.0})
    s, e = _best(PORT, w)
    assert PORT[s:e] == "Port Authority spokeswoman"  # the model alone names the subject's title
    s, e = not_the_subject("Who did Lena Ortiz speak to?", PORT, [w], s, e, MAX_TOKENS)
    assert PORT[s:e] == "Reuters" and (s, e) == (PORT.index("Reuters"), PORT.index("Reuters") + len("Reuters"))


def test_an_affiliation_without_a_title_word_is_left_alone():
    w = _window(PORT, starts={"Port": 6.0}, ends={"Authority": 6.0})
    s, e = _best(PORT, w)
    assert not_the_subject("Which agency does Lena Ortiz speak for?", PORT, [w], s, e, MAX_TOKENS) == (s, e)


@pytest.mark.parametrize("question, text, starts, last, answer", [
    # A word of nationality modifies its noun: the answer's noun phrase, not the question's subject.
    ("What were the spies taking from British companies?", "Police said the spies took British trade secrets.",
     {"British": 6.0, "trade": 5.0}, "secrets", "British trade secrets"),
    # A name followed by its verb is the subject: what the question asks comes after it.
    ("What name does Alaska use for a county?", "Alaska uses the term borough instead.",
     {"Alaska": 6.0, "borough": 5.0}, "borough", "borough"),
])
def test_a_name_the_question_says_is_cut_off_only_as_the_sentence_subject(question, text, starts, last, answer):
    w = _window(text, starts=starts, ends={last: 6.0})
    s, e = _best(text, w)
    s, e = not_the_subject(question, text, [w], s, e, MAX_TOKENS)
    assert text[s:e] == answer


@pytest.mark.parametrize("text, answer", [
    ("The council passed a parking rule that will ban trucks from the square.", "trucks"),
    # Without a relative clause the span is not the question's words and what is said of them.
    ("The council passed a parking rule banning trucks from the square.", "parking rule banning trucks"),
])
def test_a_span_from_the_question_s_words_into_their_relative_clause_becomes_the_best_span_in_it(text, answer):
    question = "What would the parking rule keep out of the square?"
    w = _window(text, starts={"parking": 6.0, "trucks": 5.0}, ends={"trucks": 6.0})
    s, e = _best(text, w)
    assert text[s:e].startswith("parking rule")
    s, e = not_the_asked_thing(question, text, [w], s, e, MAX_TOKENS)
    assert text[s:e] == answer


@pytest.mark.parametrize("span, answer", [
    ("at the Center for Strategic Studies", "the Center for Strategic Studies"),
    ("In January", "January"),
    ("on 4 July 1776", "4 July 1776"),
    ("on the walls of buildings", "on the walls of buildings"),  # a common noun phrase keeps it
    ("before the end of February", "before the end of February"),  # the preposition is the meaning
    ("At the start of Season 7", "At the start of Season 7"),
])
def test_a_named_place_or_a_date_loses_its_leading_preposition(span, answer):
    text = f"They met {span} and left."
    s = text.index(span)
    a, z = prepositional_object(text, s, s + len(span))
    assert text[a:z] == answer


def test_a_when_question_answer_loses_the_preposition_through_correct_span():
    text = "In January, the ministry charged the firm with fraud."
    w = _window(text, starts={"In": 6.0}, ends={"January": 6.0})
    s, e = _best(text, w)
    assert text[s:e] == "In January"
    assert text[slice(*correct_span("When was the firm charged?", text, [w], s, e, MAX_TOKENS))] == "January"
    assert text[slice(*correct_span("What happened to the firm?", text, [w], s, e, MAX_TOKENS))] == "In January"


DEPARTMENT = "Commerce Department official Mark Hale spoke at the Center for Strategic Studies on Monday."


@pytest.mark.parametrize("department_start, answer", [
    (5.5, "Commerce Department"),  # within HEAD_MARGIN of the span: the name headed by the asked noun
    (3.0, "Center for Strategic Studies"),  # far below: the model's span stays
])
def test_a_which_n_question_takes_a_name_headed_by_n_when_the_model_scores_it_close(department_start, answer):
    w = _window(DEPARTMENT, starts={"Center": 6.0, "Commerce": department_start},
                ends={"Studies": 6.0, "Department": 5.5})
    s, e = _best(DEPARTMENT, w)
    assert DEPARTMENT[s:e] == "Center for Strategic Studies"
    s, e = asked_head("Which department does Mark Hale work for?", DEPARTMENT, [w], s, e, MAX_TOKENS)
    assert DEPARTMENT[s:e] == answer
    assert HEAD_MARGIN < 6.0 + 6.0 - (3.0 + 5.5)


@pytest.mark.parametrize("question, noun", [
    ("Which department does Rob Strayer work for?", "department"), ("In what year did it open?", "year"),
    ("What does Garrett Marquis do?", None), ("What type of rail line is it?", None), ("What is ZTE?", None),
])
def test_the_noun_a_question_asks_for(question, noun):
    assert asked_noun(question) == noun


LEVELS = "“We are raising it at the highest diplomatic levels,” said the envoy."
PATH = "The ball follows a curving parabolic path through the air."


def test_a_span_inside_a_noun_phrase_widens_to_its_modifier_when_the_model_scores_it_close():
    w = _window(LEVELS, starts={"diplomatic": 6.0, "highest": 5.0}, ends={"levels": 6.0})
    s, e = _best(LEVELS, w)
    assert LEVELS[s:e] == "diplomatic levels"
    assert LEVELS[slice(*whole_noun_phrase(LEVELS, [w], s, e, MAX_TOKENS))] == "highest diplomatic levels"
    far = _window(LEVELS, starts={"diplomatic": 6.0, "highest": 6.0 - PHRASE_MARGIN - 0.5}, ends={"levels": 6.0})
    assert whole_noun_phrase(LEVELS, [far], s, e, MAX_TOKENS) == (s, e)


def test_a_span_that_is_itself_a_modifier_is_left_alone():
    w = _window(PATH, starts={"parabolic": 6.0, "curving": 5.9}, ends={"parabolic": 6.0})
    s, e = _best(PATH, w)
    assert PATH[s:e] == "parabolic"
    assert whole_noun_phrase(PATH, [w], s, e, MAX_TOKENS) == (s, e)


@pytest.mark.parametrize("question, role, definition", [
    ("Who is Huawei's chief financial officer?", False, False),
    ("What is ZTE?", False, True), ("What is SMS?", False, True), ("What is the capital?", False, False),
    ("What was Apple's revenue?", False, False), ("who is Tom Reyes?", True, False),
])
def test_role_and_name_definition_questions(question, role, definition):
    assert is_role_question(question) is role
    assert is_name_definition(question) is definition


def test_what_is_x_takes_the_appositive_without_the_name_beside_it():
    text = "Norvik and Altra, a Danish maker of wind turbines, are cutting prices."
    w = _window(text, starts={"Norvik": 6.0}, ends={"turbines": 6.0})
    s, e = _best(text, w)
    assert text[s:e] == "Norvik and Altra, a Danish maker of wind turbines"
    s, e = correct_span("What is Altra?", text, [w], s, e, MAX_TOKENS)
    assert text[s:e] == "a Danish maker of wind turbines"


# ---- the real reader: the question's subject, the place and the phrase asked for -----------------

@pytest.mark.parametrize("question, text, answer", [
    ("Who did Garrett Marquis speak to?",
     "As rivals gain ground, the White House is wary. National Security Council spokesman Garrett Marquis told "
     "Politico that the U.S. was working with its allies.", "Politico"),
    ("Where was Rob Strayer when he spoke?", STRAYER, "the Center for Strategic and International Studies"),
    ("At what level are they raising it?", STRAYER, "highest diplomatic levels"),
    ("What were the spies taking from British companies?",
     "Police said the spies took British trade secrets from the firms.", "British trade secrets"),
])
def test_the_reader_answers_with_the_phrase_asked_for(reader, question, text, answer):
    assert _answer(reader, question, text) == answer
