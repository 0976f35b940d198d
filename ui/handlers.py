"""What the page does, as plain methods over the engine: inputs in, values to show out.

No Gradio here: ``ui.layout`` wires these methods to the page's components, and tests
call them directly. Everything they return is safe to show: document and question text
is escaped by ``ui.render``, and documents are named by ``ui.names`` (no server paths).

Example:
    >>> page = PageHandlers(engine, UISettings())                  # doctest: +SKIP
    >>> page.ask("who is Rob Strayer?")["text"]                     # doctest: +SKIP
    'State Department official'
    >>> page.chat("who is Rob Strayer?", [], []).history[-1]        # doctest: +SKIP
    {'role': 'assistant', 'content': '**State Department official** <sup>[1]</sup>...'}
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from index.background import BackgroundIndexer
from qa import Answer, Engine, QuestionError
from qa.conversation import Conversation, Turn
from ui import render
from ui.feedback import FeedbackError, FeedbackLog, make_record
from ui.names import DocumentNames
from ui.pdfpage import NOT_LOCATED, PageError, citation_page
from ui.settings import UISettings
from ui.uploads import store_uploads

log = logging.getLogger("ui")

# progress(done, total, what): called before each file of an upload is indexed, and once at the end.
Progress = Callable[[int, int, str], None]


class InputError(ValueError):
    """Input the page refuses; the message is the one line the user sees."""


@dataclass(frozen=True)
class SourcesView:
    """The citation picker (label, citation number from 0) and the passage shown."""

    choices: tuple[tuple[str, int], ...]
    pick: int | None
    html: str


@dataclass(frozen=True)
class ChatResult:
    """The chat after one question: messages, answers by turn (server-side), the turn shown."""

    history: list[dict]
    turns: list[dict | None]
    turn: int
    sources: SourcesView


@dataclass(frozen=True)
class DocumentsView:
    """The documents table (name, chunks, type, origin) and the names that can be removed."""

    rows: list[list]
    choices: list[str]


@dataclass(frozen=True)
class DocumentsChange:
    """What an upload or removal did, in Markdown, and the documents afterwards (None: unchanged)."""

    status: str
    documents: DocumentsView | None


@dataclass(frozen=True)
class PageView:
    """The cited PDF page, the sentence and answer boxed on it (None: not a PDF citation), and
    the line shown under it (Markdown, already escaped)."""

    image: object | None  # a PIL image: the page shows it without any server path
    caption: str


def refuse(endpoint: str, message: str) -> InputError:
    """The error for refused input, logged as one line (no traceback: it is not a fault)."""
    log.warning("refused input on %s: %s", endpoint, message)
    return InputError(message)


def check_text(value: object, what: str = "question") -> str:
    """``value`` as a string that can be shown and encoded, or an InputError saying why not."""
    if not isinstance(value, str):
        raise InputError(f"{what} must be text, got {type(value).__name__}; send a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{what} holds characters that are not valid Unicode text; retype it") from None
    return value


def printable(text: str) -> str:
    """``text`` with anything that is not valid Unicode made '?', so it can be echoed."""
    return text.encode("utf-8", "replace").decode("utf-8")


def display_path(path: Path) -> str:
    """``path`` relative to the working folder when inside it, else its name: never absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path.name


def message_turn(history: list, index: object) -> int | None:
    """The answer (turn) number of the chat message at ``index``, counting from 0."""
    if not isinstance(index, int) or index < 0 or index >= len(history):
        return None
    turn = -1
    for m in history[: index + 1]:
        if m.get("role") == "assistant":
            turn += 1
    return turn if history[index].get("role") == "assistant" else turn + 1


def conversation_turns(turns: list | None) -> list[Turn]:
    """The chat's answers (``Answer.to_dict()`` by turn, None for a refused question) as
    conversation turns; refused questions were never asked and are left out."""
    out = []
    for d in turns or []:
        if d:
            answer = Answer.from_dict(d)
            out.append(Turn(answer.question, answer.understood_as or answer.question, answer))
    return out


def parse_history(history: object) -> list[Turn]:
    """The ``history`` of an ``/ask`` call as turns, oldest first.

    Each item is an earlier question (a string) or ``{"question": ..., "understood_as": ...,
    "answer": Answer.to_dict()}`` with the last two optional.

    Raises:
        InputError: ``history`` is not a list of such items (the message names the item).
    """
    if history is None:
        return []
    if not isinstance(history, (list, tuple)):
        raise InputError(f"history must be a list of earlier turns, got {type(history).__name__}; "
                         'send [] or ["who is Rob Strayer?"]')
    turns = []
    for n, item in enumerate(history):
        if isinstance(item, str):
            turns.append(Turn(check_text(item, f"history[{n}]"), check_text(item, f"history[{n}]")))
            continue
        if not isinstance(item, dict) or not isinstance(item.get("question"), str):
            raise InputError(f"history[{n}] must be a question or a dict with a 'question' string; "
                             'send {"question": "who is Rob Strayer?"}')
        question = check_text(item["question"], f"history[{n}].question")
        try:
            answer = Answer.from_dict(item["answer"]) if item.get("answer") else None
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"history[{n}].answer is not an answer dict (missing or bad {e}); "
                             "send what /ask returned, or leave 'answer' out") from None
        understood = item.get("understood_as") or (answer.understood_as if answer else "") or question
        turns.append(Turn(question, check_text(understood, f"history[{n}].understood_as"), answer))
    return turns


def rating_of(liked: object) -> str | None:
    """"up"/"down" for a chat thumb (True/False or "Like"/"Dislike"); None when it was clicked off."""
    if liked is True or liked == "Like":
        return "up"
    if liked is False or liked == "Dislike":
        return "down"
    return None


class PageHandlers:
    """The page's actions over one engine, shared by every visitor (the engine is thread-safe).

    Args:
        engine: answers questions and holds the documents.
        settings: folders and limits.
        upload_cache: the web server's folder of uploaded files; each upload's copy there
            is deleted once the page has kept its own (None: nothing to delete).
    """

    def __init__(self, engine: Engine, settings: UISettings, upload_cache: str | Path | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.indexer = BackgroundIndexer(engine.index)  # uploads and removals, beside the questions
        self.feedback = FeedbackLog(settings.feedback_path)
        self.upload_cache = Path(upload_cache).resolve() if upload_cache else None
        self.feedback_shown = display_path(settings.feedback_path)

    # ---- names ---------------------------------------------------------------------------------

    def names(self) -> DocumentNames:
        return DocumentNames(d.source for d in self.engine.documents())

    def public(self, answer: Answer, names: DocumentNames | None = None) -> Answer:
        """``answer`` with each citation's source as the page names it."""
        names = names or self.names()
        return replace(answer, citations=tuple(replace(c, source=names.name(c.source)) for c in answer.citations))

    def _scrub(self, text: str, names: DocumentNames) -> str:
        folders = [self.settings.uploads_dir.resolve(), self.settings.data_dir.resolve()]
        return names.scrub(text, folders + ([self.upload_cache] if self.upload_cache else []))

    # ---- questions -----------------------------------------------------------------------------

    def conversation(self, turns: list[Turn] | None = None) -> Conversation:
        """A conversation over this page's engine that goes on from ``turns``."""
        return Conversation(engine=self.engine, history=turns or ())

    def ask(self, question: object, history: object = None) -> dict:
        """The answer to ``question`` as ``Answer.to_dict()``, sources named as on the page.

        Args:
            question: the question; with ``history`` a follow-up may say "he" or "and ZTE?".
            history: earlier turns, oldest first (see ``parse_history``); None or [] for none.

        Returns:
            ``Answer.to_dict()``; its ``understood_as`` holds the rewritten question ("" when
            the question needed no context).

        Raises:
            InputError: the question or history is malformed, or the question is empty or
                too long (logged as one line).
        """
        try:
            answer = self.conversation(parse_history(history)).ask(check_text(question))
        except (QuestionError, InputError) as e:
            raise refuse("/ask", str(e)) from None
        return self.public(answer).to_dict()

    def chat(self, message: object, history: list | None, turns: list | None) -> ChatResult | None:
        """The chat with ``message`` asked and answered; None for an empty message (nothing to do).

        ``turns`` (the answers so far) are the conversation: a follow-up is rewritten
        against them and the reply opens with what it was understood as. A refused question
        gets the reason as the reply (and one line in the server log).
        """
        question = message.strip() if isinstance(message, str) else message
        if not question:
            return None
        history = list(history or []) + [{"role": "user", "content": render.escape_markdown(printable(str(question)))}]
        turns = list(turns or [])
        try:
            answer = self.conversation(conversation_turns(turns)).ask(check_text(question))
        except (QuestionError, InputError) as e:
            refuse("/chat", str(e))
            history.append({"role": "assistant", "content": render.escape_markdown(str(e))})
            return ChatResult(history, turns + [None], len(turns), self.sources(None))
        names = self.names()
        history.append({"role": "assistant", "content": render.answer_markdown(self.public(answer, names))})
        return ChatResult(history, turns + [answer.to_dict()], len(turns), self.sources(answer, 0, names))

    @staticmethod
    def answer_at(turns: list | None, turn: int | None) -> Answer | None:
        """The answer of ``turn`` (the latest when out of range); None when there is none."""
        if not turns:
            return None
        i = len(turns) - 1 if turn is None or not 0 <= turn < len(turns) else turn
        return Answer.from_dict(turns[i]) if turns[i] else None

    def sources(self, answer: Answer | None, pick: int | None = 0, names: DocumentNames | None = None) -> SourcesView:
        """The citation picker and the passage of citation ``pick`` of ``answer``."""
        if answer is None:
            return SourcesView((), None, render.empty_sources_html())
        if not answer.citations:
            return SourcesView((), None, render.empty_sources_html("This answer cites no passage."))
        shown = self.public(answer, names)
        choices = tuple((render.citation_label(i, c, shown.found), i - 1)
                        for i, c in enumerate(shown.citations, start=1))
        pick = pick if pick is not None and 0 <= pick < len(choices) else 0
        return SourcesView(choices, pick, render.passage_html(shown.citations[pick], shown.found, pick + 1))

    def cited_page(self, turns: list | None, turn: int | None, pick: int | None) -> PageView:
        """The PDF page of citation ``pick`` of the answer of ``turn``, rendered, with the cited
        sentence and the answer boxed; no image for citations of other formats."""
        answer = self.answer_at(turns, turn)
        if answer is None or not answer.citations:
            return PageView(None, "")
        c = answer.citations[pick if isinstance(pick, int) and 0 <= pick < len(answer.citations) else 0]
        if not c.page or Path(c.source).suffix.lower() != ".pdf" or self.engine.document_text(c.source) is None:
            return PageView(None, "")
        try:
            shown = citation_page(c.source, c, with_answer=answer.found)
        except PageError as e:
            return PageView(None, f"The page cannot be shown: {render.escape_markdown(str(e))}.")
        where = f"Page {shown.page} of {shown.pages}"
        if not shown.located:
            return PageView(shown.image, f"{where}: {NOT_LOCATED}.")
        boxed = "the cited sentence in yellow" + (", the answer outlined in red" if shown.answer_boxes else "")
        return PageView(shown.image, f"{where}: {boxed}.")

    # ---- taking it away ------------------------------------------------------------------------

    def conversation_markdown(self, turns: list | None) -> str | None:
        """The chat as Markdown (``Conversation.to_markdown()``): each question, its rewrite,
        the answer and its quoted sentences with file, page and offsets, documents named as
        on the page. None before the first answer."""
        names = self.names()
        asked = [Turn(t.question, t.understood_as, self.public(t.answer, names) if t.answer else None)
                 for t in conversation_turns(turns)]
        return self.conversation(asked).to_markdown() if asked else None

    def feedback_jsonl(self) -> str | None:
        """The feedback file's records as JSONL, each ``source`` the document's name as the
        page shows it (the file itself keeps server paths). None while there is no rating."""
        records = self.feedback.records()
        if not records:
            return None
        names = self.names()
        lines = [json.dumps({**r, "source": names.name(r["source"])} if r.get("source") else r, ensure_ascii=False)
                 for r in records]
        return "\n".join(lines) + "\n"

    # ---- ratings -------------------------------------------------------------------------------

    def rate(self, rating: str, turns: list | None, turn: int | None, pick: int | None, correction: str | None,
             not_answerable: bool) -> str:
        """Append a rating of the answer of ``turn`` to the feedback file; the status line."""
        answer = self.answer_at(turns, turn)
        if answer is None:
            return "Ask a question first, then rate its answer."
        citation = answer.citations[pick] if pick is not None and 0 <= pick < len(answer.citations) else None
        try:
            record = make_record(answer, rating, correction or "", bool(not_answerable), citation)
        except FeedbackError as e:
            return f"Not saved: {render.escape_markdown(str(e))}."
        self.feedback.append(record)
        gold = ", ".join(f"“{render.escape_markdown(a)}”" for a in record.answers) or "not answerable"
        return (f"Saved {'👍' if rating == 'up' else '👎'} for “{render.escape_markdown(answer.question)}” "
                f"(gold: {gold}) to {render.code_markdown(self.feedback_shown)}.")

    def like(self, history: list | None, turns: list | None, index: object, liked: object, correction: str | None,
             not_answerable: bool) -> tuple[int | None, str]:
        """A thumb under chat message ``index``: the turn it rated and the status line."""
        turn = message_turn(history or [], index)
        if turn is None:
            return None, "Rate an answer, not a question."
        rating = rating_of(liked)
        if rating is None:
            return turn, f"Rating withdrawn here; lines already saved stay in {render.code_markdown(self.feedback_shown)}."
        return turn, self.rate(rating, turns, turn, None, correction, not_answerable)

    # ---- documents -----------------------------------------------------------------------------

    def documents(self) -> DocumentsView:
        docs = self.engine.documents()
        names = DocumentNames(d.source for d in docs)
        uploads = self.settings.uploads_dir.resolve()
        rows = [[names.name(d.source), d.chunks, d.kind, "uploaded" if Path(d.source).parent == uploads else "folder"]
                for d in docs]
        return DocumentsView(rows, names.names())

    def forget_cached(self, paths: list[str]) -> None:
        """Delete the web server's copies of uploaded files (only ever inside ``upload_cache``)."""
        if self.upload_cache is None:
            return
        for p in paths:
            path = Path(p).resolve()
            if self.upload_cache not in path.parents or not path.is_file():
                continue
            path.unlink(missing_ok=True)
            if path.parent != self.upload_cache:
                try:
                    path.parent.rmdir()  # the per-upload folder, when now empty
                except OSError:
                    pass

    def add_uploads(self, files: list | None, progress: Progress | None = None) -> DocumentsChange:
        """Keep the uploaded ``files`` in the uploads folder and index them one by one.

        Each file is indexed on its own, so questions are answered between files; files
        that cannot be added are named with the reason.
        """
        paths = [os.fspath(f) for f in (files or []) if f]
        if not paths:
            return DocumentsChange("Choose files to add.", None)
        try:
            saved = store_uploads(paths, self.settings.uploads_dir, self.settings.max_upload_bytes)
        finally:
            self.forget_cached(paths)
        indexed: list[str] = []
        unchanged: list[str] = []
        rejected = list(saved.rejected)
        total = len(saved.stored)
        for i, path in enumerate(saved.stored):
            if progress:
                progress(i, total, f"Indexing {path.name}")
            try:
                report = self.indexer.add([path])
            except Exception as e:  # a fault, not the user's: the log gets the traceback, the page one line
                log.exception("indexing the upload %s failed", path.name)
                failed = [(str(path), f"could not be indexed ({type(e).__name__})")]
            else:
                indexed += report.indexed
                unchanged += report.unchanged
                failed = list(report.skipped)
            if failed and str(path) not in {d.source for d in self.engine.documents()}:
                path.unlink(missing_ok=True)  # nothing indexed from it: keep no copy
            rejected += [(path.name, reason) for _, reason in failed]
        if progress and total:
            progress(total, total, "Done")
        names = self.names()
        lines = []
        if indexed:
            lines.append(f"**Added {len(indexed)} document(s)**, ready to ask about: "
                         + ", ".join(render.code_markdown(names.name(s)) for s in indexed))
        if unchanged:
            lines.append("Already indexed (unchanged): " + ", ".join(render.code_markdown(names.name(s)) for s in unchanged))
        for name, reason in rejected:
            lines.append(f"- ❌ Rejected {render.code_markdown(name)}: {render.escape_markdown(self._scrub(reason, names))}")
        return DocumentsChange("\n\n".join(lines) or "Nothing to add.", self.documents())

    def remove(self, chosen: list | None) -> DocumentsChange:
        """Drop the documents shown as ``chosen`` from the index; the page's own uploaded
        copies are deleted too, nothing else on disk is touched."""
        chosen = [c for c in (chosen or []) if isinstance(c, str) and c]
        if not chosen:
            return DocumentsChange("Choose documents to remove.", None)
        names = self.names()
        sources = [names.source(c) for c in chosen]
        unknown = [c for c, s in zip(chosen, sources) if s is None]
        known = [s for s in sources if s is not None]
        removed, chunks, skipped = [], 0, []
        if known:
            report = self.indexer.remove(known)
            removed, chunks, skipped = list(report.removed), report.chunks_removed, list(report.skipped)
        uploads = self.settings.uploads_dir.resolve()
        for s in removed:
            p = Path(s)
            if p.parent == uploads and p.is_file():
                p.unlink()
        lines = [f"Removed {len(removed)} document(s) ({chunks} chunks)."]
        lines += [f"- {render.code_markdown(printable(c))}: not in the index" for c in unknown]
        lines += [f"- {render.code_markdown(names.name(s))}: {render.escape_markdown(self._scrub(r, names))}"
                  for s, r in skipped]
        return DocumentsChange("\n".join(lines), self.documents())
