"""Sentence boundaries on text as files give it: wrapped lines, headings, list items."""

from __future__ import annotations

from qa.readers.sentences import split_sentences

WRAPPED = """Annual Report 2024
The board appointed Maria Lindqvist as chief financial officer in
March, after a search that lasted most of the winter. She replaced
Tom Ahern, who retired.
Key figures
- Revenue grew 12 percent to 4.1 billion kronor during the year
- Staff numbers stayed at about 1,900 across the four sites we run
The report was approved on 2 April.
"""


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


def test_a_wrapped_sentence_is_one_sentence_and_headings_and_list_items_stay_apart():
    assert sentences(WRAPPED) == [
        "Annual Report 2024",
        "The board appointed Maria Lindqvist as chief financial officer in\nMarch, after a search that lasted most "
        "of the winter.",
        "She replaced\nTom Ahern, who retired.",
        "Key figures",
        "- Revenue grew 12 percent to 4.1 billion kronor during the year",
        "- Staff numbers stayed at about 1,900 across the four sites we run",
        "The report was approved on 2 April.",
    ]


def test_a_paragraph_per_line_still_ends_at_each_line():
    one_per_line = ("If you enjoyed this article and want to receive more valuable industry content like this, "
                    "click here to sign up for our digital newsletters and stay in touch with all of it\n"
                    "Relations are tense, especially with technology as a backdrop.")
    assert sentences(one_per_line) == one_per_line.split("\n")


def test_offsets_point_into_the_text_and_respect_the_window():
    start = WRAPPED.index("The board")
    end = WRAPPED.index("Key figures")
    spans = split_sentences(WRAPPED, start, end)
    assert [WRAPPED[s:e] for s, e in spans][0].startswith("The board appointed")
    assert all(start <= s < e <= end for s, e in spans)


def test_a_wrapped_list_item_goes_on_when_indented():
    text = ("- Revenue grew 12 percent to 4.1 billion kronor during the\n"
            "  year, the best result since the company was founded\n"
            "- Staff numbers stayed the same")
    assert sentences(text) == [text[:text.index("\n- Staff")], "- Staff numbers stayed the same"]
