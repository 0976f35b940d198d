"""The chat page: ask, read cited answers, see the passage highlighted, add documents.

Example:
    >>> from qa import Engine
    >>> from ui.app import UISettings, build_app, launch
    >>> settings = UISettings()
    >>> demo = build_app(Engine(), settings)          # doctest: +SKIP
    >>> launch(demo, settings)                        # doctest: +SKIP   (http://127.0.0.1:7860)

The page only presents: it calls ``qa.Engine`` (ask, add_files, remove_documents,
documents) and never reaches into the index store.
"""

from __future__ import annotations

import os
import sys

# No telemetry and no version check: the page must work offline. Set before Gradio is
# imported, since some of its modules read the variable themselves.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402

from index import SUPPORTED_SUFFIXES  # noqa: E402
from qa import Answer, Engine, QuestionError  # noqa: E402
from ui import render  # noqa: E402
from ui.feedback import FeedbackError, FeedbackLog, make_record  # noqa: E402
from ui.uploads import DEFAULT_MAX_UPLOAD_BYTES, store_uploads  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT / ".data"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
SEED_EXAMPLES = (
    "who is Rob Strayer?",
    "Who is the National Security Council spokesman?",
    "Which Chinese telecom company did the DOJ charge in January?",
    "What is the capital of France?",
)

TITLE = "Ask your documents"
DESCRIPTION = ("Ask questions of your own files and get short answers quoted from them, "
               "with the exact place each answer comes from. Everything runs on this machine.")

# System fonts only: the default theme would fetch Google Fonts, and the page must work offline.
THEME = gr.themes.Soft(
    font=["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica", "Arial", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
)
CSS = """
.qa-source { font-size: 0.95rem; line-height: 1.55; }
.qa-source-head { display: flex; justify-content: space-between; gap: 1em; flex-wrap: wrap; margin-bottom: .3em; }
.qa-source-path { color: var(--body-text-color-subdued); font-size: .85rem; margin-bottom: .6em; word-break: break-all; }
.qa-passage { white-space: pre-wrap; padding: .6em .8em; border-radius: 6px; max-height: 28rem; overflow-y: auto;
              background: var(--background-fill-secondary); border: 1px solid var(--border-color-primary); }
.qa-not-answer .qa-passage { border-style: dashed; }
.qa-not-answer .qa-source-head strong { color: #b45309; }
mark.qa-sentence { background: #fef3c7; color: inherit; padding: 0 1px; }
mark.qa-answer { background: #fcd34d; color: inherit; font-weight: 600; padding: 0 1px; }
.qa-legend { font-size: .8rem; }
.qa-legend mark { margin-left: .4em; }
.qa-empty { color: var(--body-text-color-subdued); }
"""


@dataclass(frozen=True)
class UISettings:
    """How the page runs.

    Args:
        data_dir: the app's own folder (default ``.data/`` in the repository, git-ignored).
        uploads_dir: where uploaded files are kept (default ``data_dir/uploads``).
        feedback_path: the JSONL file ratings go to (default ``data_dir/feedback.jsonl``).
        max_upload_bytes: larger uploads are refused (default 20 MB per file).
        concurrency_limit: questions (and uploads) answered at once (default 4).
        host: the address to bind (default 127.0.0.1: this machine only).
        port: the port to listen on (default 7860).
        examples: example questions shown under the chat.
    """

    data_dir: Path = DEFAULT_DATA_DIR
    uploads_dir: Path | None = None
    feedback_path: Path | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    concurrency_limit: int = 4
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    examples: tuple[str, ...] = field(default=SEED_EXAMPLES)

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        if self.uploads_dir is None:
            object.__setattr__(self, "uploads_dir", self.data_dir / "uploads")
        if self.feedback_path is None:
            object.__setattr__(self, "feedback_path", self.data_dir / "feedback.jsonl")
        object.__setattr__(self, "uploads_dir", Path(self.uploads_dir))
        object.__setattr__(self, "feedback_path", Path(self.feedback_path))
        if self.max_upload_bytes <= 0:
            raise ValueError(f"max_upload_bytes must be greater than 0. Currently, it is {self.max_upload_bytes}")
        if self.concurrency_limit < 1:
            raise ValueError(f"concurrency_limit must be at least 1. Currently, it is {self.concurrency_limit}")
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be in 1-65535. Currently, port is {self.port}")


# ---- helpers (pure, tested through the page) ------------------------------------------------------


def _answer(turns: list, turn: int | None) -> Answer | None:
    if not turns:
        return None
    i = len(turns) - 1 if turn is None or turn < 0 or turn >= len(turns) else turn
    d = turns[i]
    return Answer.from_dict(d) if d else None


def _citation_choices(answer: Answer | None) -> list[tuple[str, int]]:
    if answer is None:
        return []
    return [(render.citation_label(i, c, answer.found), i - 1) for i, c in enumerate(answer.citations, start=1)]


def _sources(answer: Answer | None, pick: int | None = 0) -> tuple[dict, str]:
    """The citation picker and the passage view for ``answer``."""
    choices = _citation_choices(answer)
    if answer is None or not choices:
        msg = "This answer cites no passage." if answer is not None else None
        return gr.update(choices=[], value=None), render.empty_sources_html(msg) if msg else render.empty_sources_html()
    pick = pick if pick is not None and 0 <= pick < len(choices) else 0
    c = answer.citations[pick]
    return gr.update(choices=choices, value=pick), render.passage_html(c, answer.found, pick + 1)


def _documents_table(engine: Engine) -> list[list]:
    return [[render.file_name(d.source), d.chunks, d.kind, d.source] for d in engine.documents()]


def _documents_choices(engine: Engine) -> list[tuple[str, str]]:
    return [(f"{render.file_name(d.source)} ({d.source})", d.source) for d in engine.documents()]


def _message_turn(history: list, index: int) -> int | None:
    """The answer (turn) number of the chat message at ``index``."""
    if not isinstance(index, int) or index < 0 or index >= len(history):
        return None
    turn = -1
    for m in history[: index + 1]:
        if m.get("role") == "assistant":
            turn += 1
    return turn if history[index].get("role") == "assistant" else turn + 1


def build_app(engine: Engine, settings: UISettings | None = None) -> gr.Blocks:
    """The chat page over ``engine``.

    Args:
        engine: the question-answering engine (shared by every visitor; it is thread-safe).
        settings: data folders, upload limit, concurrency (defaults when None).

    Returns:
        The page, ready for ``launch``. Besides the chat its API offers ``/ask``:
        ``gradio_client.Client(url).predict("who is Rob Strayer?", api_name="/ask")``
        returns ``Answer.to_dict()``.
    """
    settings = settings or UISettings()
    feedback = FeedbackLog(settings.feedback_path)
    limit_mb = settings.max_upload_bytes / 1e6

    # ---- event handlers --------------------------------------------------------------------

    def respond(message: str, history: list, turns: list):
        question = (message or "").strip()
        if not question:
            return (gr.update(), history, turns, gr.update(), gr.update(), gr.update(), gr.update())
        history = list(history or []) + [{"role": "user", "content": render.escape_markdown(question)}]
        try:
            answer = engine.ask(question)
        except QuestionError as e:
            history.append({"role": "assistant", "content": render.escape_markdown(str(e))})
            turns = list(turns or []) + [None]
            picker, view = _sources(None)
            return "", history, turns, len(turns) - 1, picker, view, ""
        history.append({"role": "assistant", "content": render.answer_markdown(answer)})
        turns = list(turns or []) + [answer.to_dict()]
        picker, view = _sources(answer)
        return "", history, turns, len(turns) - 1, picker, view, ""

    def pick_citation(pick: int | None, turns: list, turn: int):
        answer = _answer(turns, turn)
        return _sources(answer, pick)[1]

    def pick_message(history: list, turns: list, evt: gr.SelectData):
        turn = _message_turn(history or [], evt.index if isinstance(evt.index, int) else -1)
        if turn is None or not turns:
            return gr.update(), gr.update(), gr.update()
        turn = min(turn, len(turns) - 1)
        picker, view = _sources(_answer(turns, turn))
        return turn, picker, view

    def rate(rating: str, turns: list, turn: int, pick: int | None, correction: str, not_answerable: bool) -> str:
        answer = _answer(turns, turn)
        if answer is None:
            return "Ask a question first, then rate its answer."
        citation = answer.citations[pick] if pick is not None and 0 <= pick < len(answer.citations) else None
        try:
            record = make_record(answer, rating, correction or "", bool(not_answerable), citation)
        except FeedbackError as e:
            return f"Not saved: {render.escape_markdown(str(e))}."
        path = feedback.append(record)
        gold = ", ".join(f"“{render.escape_markdown(a)}”" for a in record.answers) or "not answerable"
        return (f"Saved {'👍' if rating == 'up' else '👎'} for “{render.escape_markdown(answer.question)}” "
                f"(gold: {gold}) to {render.code_markdown(str(path))}.")

    def rate_up(turns, turn, pick, correction, not_answerable):
        return rate("up", turns, turn, pick, correction, not_answerable)

    def rate_down(turns, turn, pick, correction, not_answerable):
        return rate("down", turns, turn, pick, correction, not_answerable)

    def like(history: list, turns: list, correction: str, not_answerable: bool, evt: gr.LikeData):
        turn = _message_turn(history or [], evt.index if isinstance(evt.index, int) else -1)
        if turn is None:
            return gr.update(), "Rate an answer, not a question."
        if evt.liked is True or evt.liked == "Like":
            rating = "up"
        elif evt.liked is False or evt.liked == "Dislike":
            rating = "down"
        else:  # the thumb was clicked off again
            return turn, f"Rating withdrawn here; lines already saved stay in {render.code_markdown(str(feedback.path))}."
        return turn, rate(rating, turns, turn, None, correction, not_answerable)

    def add_uploads(files: list | None, progress=gr.Progress()):
        paths = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in (files or [])]
        if not paths:
            return "Choose files to add.", gr.update(), gr.update(), None
        progress(0, desc="Saving uploads")
        saved = store_uploads(paths, settings.uploads_dir, settings.max_upload_bytes)
        indexed, unchanged, rejected = [], [], [(n, r) for n, r in saved.rejected]
        for i, path in enumerate(saved.stored):
            progress(i / max(len(saved.stored), 1), desc=f"Indexing {path.name}")
            report = engine.add_files([path])
            indexed += report.indexed
            unchanged += report.unchanged
            rejected += [(render.file_name(s), r) for s, r in report.skipped]
        progress(1, desc="Done")
        lines = []
        if indexed:
            lines.append(f"**Added {len(indexed)} document(s)**, ready to ask about: "
                         + ", ".join(f"{render.code_markdown(render.file_name(s))}" for s in indexed))
        if unchanged:
            lines.append("Already indexed (unchanged): "
                         + ", ".join(f"{render.code_markdown(render.file_name(s))}" for s in unchanged))
        for name, reason in rejected:
            lines.append(f"- ❌ Rejected {render.code_markdown(name)}: {render.escape_markdown(reason)}")
        return ("\n\n".join(lines) or "Nothing to add.", _documents_table(engine),
                gr.update(choices=_documents_choices(engine), value=[]), None)

    def remove(sources: list | None):
        sources = [s for s in (sources or []) if s]
        if not sources:
            return "Choose documents to remove.", gr.update(), gr.update()
        report = engine.remove_documents(sources)
        uploads = settings.uploads_dir.resolve()
        for s in report.removed:  # the app's own copies go too; nothing else is deleted
            p = Path(s)
            if p.parent == uploads and p.is_file():
                p.unlink()
        lines = [f"Removed {len(report.removed)} document(s) ({report.chunks_removed} chunks)."]
        lines += [f"- {render.code_markdown(render.file_name(s))}: {render.escape_markdown(r)}" for s, r in report.skipped]
        return "\n".join(lines), _documents_table(engine), gr.update(choices=_documents_choices(engine), value=[])

    def refresh_documents():
        return _documents_table(engine), gr.update(choices=_documents_choices(engine))

    def clear():
        picker, view = _sources(None)
        return [], [], -1, picker, view, "", "", False

    def ask_api(question: str) -> dict:
        """Answer ``question``; returns the Answer as a dict (text, found, score, citations...)."""
        try:
            return engine.ask(question).to_dict()
        except QuestionError as e:
            raise gr.Error(str(e)) from None

    # ---- layout ------------------------------------------------------------------------------

    suffixes = ", ".join(SUPPORTED_SUFFIXES)
    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        turns = gr.State([])
        turn = gr.State(-1)
        gr.Markdown(f"# {TITLE}\n{DESCRIPTION}")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=380):
                chatbot = gr.Chatbot(
                    label="Chat", show_label=False, height=480, elem_id="qa-chat", sanitize_html=True, render_markdown=True,
                    latex_delimiters=[], allow_tags=False, feedback_options=("Like", "Dislike"),
                    buttons=["copy"], placeholder="Ask a question about your documents.",
                )
                with gr.Row():
                    question = gr.Textbox(
                        placeholder="Ask a question, e.g. who is Rob Strayer?", show_label=False, scale=4,
                        elem_id="qa-question", max_lines=4, submit_btn=False,
                    )
                    ask_btn = gr.Button("Ask", variant="primary", scale=1, elem_id="qa-ask", min_width=80)
                    clear_btn = gr.Button("Clear chat", scale=1, elem_id="qa-clear", min_width=120)
                if settings.examples:
                    gr.Examples(examples=[[q] for q in settings.examples], inputs=[question], label="Example questions")
                with gr.Accordion("Rate the selected answer (feedback becomes test questions)", open=False):
                    with gr.Row():
                        correction = gr.Textbox(label="Corrected answer (optional, for 👎)", scale=3, elem_id="qa-correction")
                        not_answerable = gr.Checkbox(label="The documents don't answer this", scale=2, elem_id="qa-not-answerable")
                    with gr.Row():
                        up_btn = gr.Button("👍 Right answer", elem_id="qa-up")
                        down_btn = gr.Button("👎 Wrong answer", elem_id="qa-down")
                feedback_status = gr.Markdown(
                    f"Ratings (the thumbs under each reply, or the buttons above) are appended to "
                    f"{render.code_markdown(str(settings.feedback_path))}, a test set `python -m qa.eval` reads.",
                    elem_id="qa-feedback-status",
                )
            with gr.Column(scale=2, min_width=320):
                with gr.Tab("Sources"):
                    citation_pick = gr.Radio(label="Citations of the selected answer", choices=[], type="value",
                                             elem_id="qa-citations")
                    passage = gr.HTML(render.empty_sources_html(), elem_id="qa-passage", js_on_load=None)
                    gr.Markdown("Click a reply in the chat to see its sources.", elem_classes=["qa-empty"])
                with gr.Tab("Documents"):
                    uploads = gr.File(
                        label=f"Add documents ({suffixes}; several at once; up to {limit_mb:.0f} MB each)",
                        file_count="multiple", file_types=list(SUPPORTED_SUFFIXES), type="filepath",
                        elem_id="qa-upload", height=140,
                    )
                    upload_status = gr.Markdown(elem_id="qa-upload-status")
                    documents = gr.Dataframe(
                        value=_documents_table(engine), headers=["Document", "Chunks", "Type", "Path"],
                        datatype=["str", "number", "str", "str"], interactive=False,
                        column_widths=["32%", "13%", "10%", "45%"],
                        label="Indexed documents", elem_id="qa-documents", wrap=True,
                    )
                    with gr.Row():
                        to_remove = gr.Dropdown(choices=_documents_choices(engine), multiselect=True, scale=3,
                                                label="Remove from the index", elem_id="qa-remove-pick")
                        remove_btn = gr.Button("Remove", variant="stop", scale=1, elem_id="qa-remove")
                    remove_status = gr.Markdown()

        # ---- wiring ------------------------------------------------------------------------------

        chat_outputs = [question, chatbot, turns, turn, citation_pick, passage, correction]
        ask_btn.click(respond, [question, chatbot, turns], chat_outputs, api_name="chat", show_progress="minimal")
        question.submit(respond, [question, chatbot, turns], chat_outputs, api_visibility="private",
                        show_progress="minimal")
        citation_pick.input(pick_citation, [citation_pick, turns, turn], [passage], api_visibility="private")
        chatbot.select(pick_message, [chatbot, turns], [turn, citation_pick, passage], api_visibility="private")
        chatbot.like(like, [chatbot, turns, correction, not_answerable], [turn, feedback_status],
                     api_visibility="private")
        feedback_inputs = [turns, turn, citation_pick, correction, not_answerable]
        up_btn.click(rate_up, feedback_inputs, [feedback_status], api_name="rate_up", api_visibility="undocumented")
        down_btn.click(rate_down, feedback_inputs, [feedback_status], api_name="rate_down",
                       api_visibility="undocumented")
        clear_btn.click(clear, None, [chatbot, turns, turn, citation_pick, passage, question, correction,
                                      not_answerable], api_visibility="private")
        uploads.upload(add_uploads, [uploads], [upload_status, documents, to_remove, uploads], api_name="add_documents",
                       show_progress="full", show_progress_on=[upload_status])
        remove_btn.click(remove, [to_remove], [remove_status, documents, to_remove], api_name="remove_documents")
        demo.load(refresh_documents, None, [documents, to_remove], api_visibility="private")
        gr.api(ask_api, api_name="ask")
    return demo


def start(demo: gr.Blocks, settings: UISettings | None = None, prevent_thread_lock: bool = False,
          quiet: bool = False) -> str:
    """Serve ``demo`` at ``settings.host:settings.port`` (127.0.0.1:7860 by default).

    Args:
        demo: the page from ``build_app``.
        settings: host, port, upload limit, concurrency (defaults when None).
        prevent_thread_lock: return at once and serve from a background thread (tests).
        quiet: print nothing.

    Returns:
        The page's local URL.
    """
    settings = settings or UISettings()
    settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    demo.queue(default_concurrency_limit=settings.concurrency_limit)
    _, local_url, _ = demo.launch(
        server_name=settings.host, server_port=settings.port, prevent_thread_lock=prevent_thread_lock,
        quiet=quiet, share=False, inbrowser=False, ssr_mode=False, pwa=False, mcp_server=False,
        max_file_size=settings.max_upload_bytes, theme=THEME, css=CSS, footer_links=["api"],
        show_error=True, enable_monitoring=False,
    )
    return local_url


def launch(engine: Engine | None = None, settings: UISettings | None = None, warm_up: bool = True,
           prevent_thread_lock: bool = False) -> str:
    """Build the page over ``engine`` (the default index over seeds/ when None) and serve it.

    With ``warm_up`` one question is answered before the page opens, so the first visitor
    does not wait for the models to load.
    """
    settings = settings or UISettings()
    engine = engine or Engine()
    if warm_up and engine.documents():
        try:
            engine.ask(settings.examples[0] if settings.examples else "warm up")
        except Exception as e:  # the page still opens; the error shows again on the first question
            print(f"warning: answering a first question failed ({type(e).__name__}: {e}); "
                  "questions may fail until that is fixed (try --reader sentence)", file=sys.stderr)
    return start(build_app(engine, settings), settings, prevent_thread_lock=prevent_thread_lock)
