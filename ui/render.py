"""Answers and passages as safe chat Markdown and HTML.

Citations are shown with ``Citation.source`` as it is: the page passes answers whose
sources are already the short names of ``ui.names`` (never a server path). Everything
that comes from a document or a question is escaped here, once, before it reaches a
chat message or an HTML component: a document holding ``<script>`` or
``<img onerror=...>`` is shown as those characters and never runs.
"""

from __future__ import annotations

import html
import re

from qa import Answer, Citation

# Markdown punctuation that could turn document text into emphasis, links, code or
# tables. '&', '<' and '>' are left to html.escape (a backslash before an entity would
# show the entity's letters).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-!|~$])")


def escape_html(text: str) -> str:
    """``text`` as HTML character data, also inert inside JS and Handlebars templates.

    ``gr.HTML`` fills a template (``${value}``, ``{{...}}``), so ``$``, ``{``, ``}`` and
    the backtick become character references too.
    """
    out = html.escape(text, quote=True)
    return out.replace("$", "&#36;").replace("{", "&#123;").replace("}", "&#125;").replace("`", "&#96;")


def escape_markdown(text: str) -> str:
    """``text`` as literal characters in a chat message (Markdown with HTML allowed)."""
    return html.escape(_MARKDOWN_SPECIAL.sub(r"\\\1", text), quote=False)


def code_markdown(text: str) -> str:
    """``text`` in a monospace span of a chat message or Markdown block, escaped.

    Not a backtick span: inside one the escapes would show as backslashes.
    """
    return f"<code>{escape_markdown(text)}</code>"


def one_line(text: str) -> str:
    """``text`` with each run of whitespace (newlines included) made one space."""
    return re.sub(r"\s+", " ", text)


def location(c: Citation) -> str:
    """'file.txt, page 2, characters 10–42' (no page for unpaged documents)."""
    page = f", page {c.page}" if c.page else ""
    return f"{c.source}{page}, characters {c.start}–{c.end}"


def supporting(answer: Answer) -> list[tuple[int, Citation]]:
    """The numbered citations a found answer shows in the chat: those holding the answer span."""
    numbered = list(enumerate(answer.citations, start=1))
    if not answer.found:
        return []
    support = [(i, c) for i, c in numbered if c.answer_start is not None]
    return support or numbered[:1]


def quote_markdown(c: Citation) -> str:
    """The cited sentence, escaped, with the answer span (when inside it) in bold."""
    quote = c.quote
    if c.answer_start is not None and c.answer_end is not None and c.start <= c.answer_start < c.answer_end <= c.end:
        a, b = c.answer_start - c.start, c.answer_end - c.start
        return (escape_markdown(one_line(quote[:a])) + "<b>" + escape_markdown(one_line(quote[a:b])) + "</b>"
                + escape_markdown(one_line(quote[b:]))).strip()
    return escape_markdown(one_line(quote).strip())


def answer_markdown(answer: Answer, max_passages: int = 3) -> str:
    """The chat reply: the answer in bold with citation marks, then the quoted support.

    When the engine abstains the reply says so plainly and lists the closest passages,
    marked as not an answer. A follow-up that was rewritten opens with what it was
    understood as ("Understood as: Where did Rob Strayer speak?"), escaped as text.
    """
    reply = answer_body(answer, max_passages)
    if answer.understood_as:
        return f"*Understood as:* {escape_markdown(one_line(answer.understood_as))}\n\n{reply}"
    return reply


def answer_body(answer: Answer, max_passages: int = 3) -> str:
    """The answer in bold with its citation marks and quoted support (no rewrite line)."""
    if answer.found:
        support = supporting(answer)
        marks = "".join(f"<sup>[{i}]</sup>" for i, _ in support)
        lines = [f"**{escape_markdown(answer.text)}** {marks}", ""]
        for i, c in support[:max_passages]:
            lines.append(f"> <sup>[{i}]</sup> {quote_markdown(c)}  ")
            lines.append(f"> — *{escape_markdown(location(c))}*")
            lines.append("")
        return "\n".join(lines).rstrip()
    lines = ["**Not found: the documents don't answer this question.**"]
    if answer.citations:
        lines += ["", "Closest passages — ⚠️ *not an answer*:", ""]
        for i, c in enumerate(answer.citations[:max_passages], start=1):
            lines.append(f"> <sup>[{i}]</sup> {quote_markdown(c)}  ")
            lines.append(f"> — *{escape_markdown(location(c))}* (not an answer)")
            lines.append("")
    else:
        lines += ["", "The index holds no documents yet: add some in the Documents tab."]
    return "\n".join(lines).rstrip()


def citation_label(i: int, c: Citation, found: bool) -> str:
    tag = "" if found else " (not an answer)"
    return f"[{i}] {location(c)}{tag}"


def passage_html(c: Citation, found: bool, number: int | None = None) -> str:
    """The passage around citation ``c``, its sentence and answer span highlighted.

    Offsets in ``c`` are document offsets; the passage (``c.context``) begins at
    ``c.context_start``. Every character of document text is escaped.
    """
    text, base = c.context, c.context_start
    s, e = c.start - base, c.end - base
    a = b = None
    if found and c.answer_start is not None and c.answer_end is not None:
        a, b = c.answer_start - base, c.answer_end - base
    if not 0 <= s < e <= len(text):
        body = escape_html(text)  # the sentence lies outside this passage: show it unmarked
        a = None
    elif a is not None and s <= a < b <= e:
        body = (escape_html(text[:s]) + '<mark class="qa-sentence">' + escape_html(text[s:a])
                + f'<mark class="qa-answer">{escape_html(text[a:b])}</mark>' + escape_html(text[b:e])
                + "</mark>" + escape_html(text[e:]))
    else:
        a = None
        body = escape_html(text[:s]) + f'<mark class="qa-sentence">{escape_html(text[s:e])}</mark>' + escape_html(text[e:])
    if not found:
        heading = "Closest passage — not an answer"
    else:
        heading = "Supporting passage" if a is not None else "Related passage (does not hold the answer)"
    mark = f"[{number}] " if number is not None else ""
    page = f" · page {c.page}" if c.page else ""
    legend = ('<span class="qa-legend"><mark class="qa-sentence">cited sentence</mark> '
              + ('<mark class="qa-answer">answer</mark>' if a is not None else "") + "</span>")
    return (
        f'<div class="qa-source{"" if found else " qa-not-answer"}">'
        f'<div class="qa-source-head"><strong>{escape_html(mark + heading)}</strong>{legend}</div>'
        f'<div class="qa-source-path">File: <code>{escape_html(c.source)}</code>{escape_html(page)}'
        f' · characters {c.start}–{c.end} (passage {c.context_start}–{c.context_end})</div>'
        f'<div class="qa-passage">{body}</div>'
        "</div>"
    )


def empty_sources_html(message: str = "Ask a question: the passage behind the answer appears here.") -> str:
    return f'<div class="qa-source qa-empty">{escape_html(message)}</div>'
