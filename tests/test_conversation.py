"""Follow-up questions: rewrites against earlier turns, and the conversation test set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa.conversation import Conversation, Turn, rewrite
from qa.types import Answer

CONVERSATIONS = Path(__file__).parent / "data" / "conversations.jsonl"


def turn(question: str, answer: str) -> Turn:
    return Turn(question, question, Answer(question=question, text=answer, found=bool(answer), score=0.9))


@pytest.mark.parametrize("history, question, expected", [
    ([("who is Rob Strayer?", "State Department official")], "Where did he speak?", "Where did Rob Strayer speak?"),
    ([("who is Rob Strayer?", "State Department official")], "What is his job?", "What is Rob Strayer's job?"),
    ([("Which Chinese telecom company did the DOJ charge in January?", "Huawei")],
     "Who is its chief financial officer?", "Who is Huawei's chief financial officer?"),
    ([("What is Huawei?", "a Chinese telecom company")], "and ZTE?", "What is ZTE?"),
    ([("What is Huawei?", "a Chinese telecom company")], "what about ZTE?", "What is ZTE?"),
    ([("Where did Rob Strayer speak?", "the Center for Strategic and International Studies")], "and when?",
     "When did Rob Strayer speak?"),
    ([("Where did Rob Strayer speak?", "the Center for Strategic and International Studies")], "Who else spoke there?",
     "Who else spoke at the Center for Strategic and International Studies?"),
    ([("Who did the Department of Justice indict last December?", "two Chinese hackers")],
     "What had they been stealing?", "What had two Chinese hackers been stealing?"),
])
def test_follow_ups_are_rewritten_against_earlier_turns(history, question, expected):
    assert rewrite(question, [turn(q, a) for q, a in history]) == expected


@pytest.mark.parametrize("question", [
    "What is the capital of France?",          # names its own subject
    "Is there a ban on Chinese equipment?",    # "there" as in "there is", not a place
    "Who signed the executive order?",
])
def test_questions_that_need_no_context_are_left_alone(question):
    history = [turn("Where did Rob Strayer speak?", "the Center for Strategic and International Studies")]
    assert rewrite(question, history) == question


def test_a_first_question_is_never_rewritten():
    assert rewrite("Where did he speak?", []) == "Where did he speak?"


def test_the_conversation_set_is_rewritten_as_written():
    """At least 90% of the follow-ups of tests/data/conversations.jsonl are rewritten exactly
    as the set says (its answers stand in for the engine's, so the rewrite alone is tested)."""
    right, total, wrong = 0, 0, []
    for line in CONVERSATIONS.read_text(encoding="utf-8").splitlines():
        conversation = json.loads(line)
        history: list[Turn] = []
        for t in conversation["turns"]:
            got = rewrite(t["question"], history)
            if history:
                total += 1
                right += got == t["rewrite"]
                if got != t["rewrite"]:
                    wrong.append((conversation["id"], t["question"], got, t["rewrite"]))
            answer = t["answers"][0] if t["answers"] else ""
            history.append(Turn(t["question"], got, Answer(question=got, text=answer, found=bool(answer), score=0.9)))
    assert total >= 15
    assert right / total >= 0.9, wrong


def test_the_follow_up_on_the_seed_article_is_answered(seed_index):
    from qa import Engine

    conversation = Conversation(engine=Engine(seed_index))
    first = conversation.ask("who is Rob Strayer?")
    assert first.text == "State Department official" and first.understood_as == ""
    follow_up = conversation.ask("Where did he speak?")
    assert follow_up.question == "Where did he speak?"
    assert follow_up.understood_as == "Where did Rob Strayer speak?"
    assert follow_up.found and "Center for Strategic and International Studies" in follow_up.text
    assert follow_up.to_dict()["understood_as"] == "Where did Rob Strayer speak?"
    markdown = conversation.to_markdown()
    assert "*Understood as:* Where did Rob Strayer speak?" in markdown
    assert "000_ffecf142e84792ea.txt, characters 1828-1990" in markdown
