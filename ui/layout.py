"""The page's components and their wiring to ``ui.handlers``.

Questions (the chat and the ``/ask`` API) share one pool of ``concurrency_limit``
workers; uploads and removals run one at a time in a pool of their own, so indexing an
upload never takes a question's place in the queue.

Example:
    >>> demo = build_app(Engine(), UISettings())      # doctest: +SKIP
    >>> ui.app.start(demo, UISettings())              # doctest: +SKIP   (http://127.0.0.1:7860)
"""

from __future__ import annotations

import html
import threading

import gradio as gr
from gradio.utils import get_upload_folder

from index import SUPPORTED_SUFFIXES
from qa import Engine
from ui import render
from ui.collections import CollectionError, Collections, collection_settings
from ui.downloads import Exports
from ui.handlers import DocumentsChange, InputError, PageHandlers, SourcesView, message_turn
from ui.settings import UISettings
from ui.style import DESCRIPTION, TITLE

QUESTIONS = "questions"  # concurrency group of everything that answers a question
DOCUMENTS = "documents"  # concurrency group of uploads and removals (one at a time)
# Uploaded files are deleted from the web server's cache as soon as the page keeps its
# own copy; this sweeps up any upload that never reached the page (seconds: every, older than).
CACHE_SWEEP = (1800, 1800)


def _sources(view: SourcesView) -> tuple[dict, str]:
    return gr.update(choices=list(view.choices), value=view.pick), view.html


def _documents(change: DocumentsChange) -> tuple:
    if change.documents is None:
        return change.status, gr.update(), gr.update()
    return change.status, change.documents.rows, gr.update(choices=change.documents.choices, value=[])


def build_app(engine: Engine | Collections, settings: UISettings | None = None) -> gr.Blocks:
    """The chat page over ``engine``, or over several named collections.

    Args:
        engine: the question-answering engine (shared by every visitor; it is thread-safe),
            or ``Collections``: the page then offers a "Collection" choice, and questions,
            uploads, the document list and removal go to the picked one.
        settings: data folders, upload limit, concurrency (defaults when None).

    Returns:
        The page, ready for ``ui.app.start``. Besides the chat its API offers ``/ask``:
        ``gradio_client.Client(url).predict("who is Rob Strayer?", api_name="/ask")``
        returns ``Answer.to_dict()`` with each citation's source as the page names it;
        ``predict("Where did he speak?", ["who is Rob Strayer?"], api_name="/ask")`` answers
        a follow-up, its ``understood_as`` the rewritten question.
    """
    settings = settings or UISettings()
    collections = engine if isinstance(engine, Collections) else Collections.of(engine)
    cache = get_upload_folder()
    exports = Exports(cache)
    pages: dict[str, PageHandlers] = {}
    pages_lock = threading.Lock()

    def page_of(name: object) -> PageHandlers:
        """The handlers of collection ``name`` (the first collection when None)."""
        name = collections.default if name is None else name
        if name not in collections.names:
            raise gr.Error(html.escape(f"no collection named {name!r}; pick one of: {', '.join(collections.names)}",
                                       quote=False), print_exception=False)
        with pages_lock:
            if name in pages:
                return pages[name]
        try:  # opened outside the lock: questions to other collections go on meanwhile
            opened = collections.engine(name)
        except CollectionError as e:
            raise gr.Error(html.escape(str(e), quote=False), print_exception=False) from None
        with pages_lock:
            return pages.setdefault(name, PageHandlers(opened, collection_settings(settings, name), upload_cache=cache))

    page = page_of(collections.default)  # ratings and feedback: the same file for every collection
    limit_mb = settings.max_upload_bytes / 1e6
    questions = {"concurrency_id": QUESTIONS, "concurrency_limit": settings.concurrency_limit}
    documents_pool = {"concurrency_id": DOCUMENTS, "concurrency_limit": 1}

    # ---- adapters: handler values -> component updates ------------------------------------------

    def respond(message, history, turns, collection):
        result = page_of(collection).chat(message, history, turns)
        if result is None:
            return gr.update(), history, turns, gr.update(), gr.update(), gr.update(), gr.update()
        picker, view = _sources(result.sources)
        return "", result.history, result.turns, result.turn, picker, view, ""

    def offer(name: str, text: str | None, previous: str | None) -> tuple[dict, str | None]:
        """The download button holding ``text`` as file ``name`` (disabled when None); the file's path."""
        exports.discard(previous)
        path = exports.write(name, text) if text else None
        return gr.update(value=path, interactive=path is not None), path

    def export_conversation(turns, collection, previous):
        return offer("conversation.md", page_of(collection).conversation_markdown(turns), previous)

    def export_feedback(previous):
        return offer("feedback.jsonl", page.feedback_jsonl(), previous)

    def pick_citation(pick, turns, turn, collection):
        return page_of(collection).sources(page.answer_at(turns, turn), pick).html

    def pick_message(history, turns, collection, evt: gr.SelectData):
        turn = message_turn(history or [], evt.index)
        if turn is None or not turns:
            return gr.update(), gr.update(), gr.update()
        turn = min(turn, len(turns) - 1)
        picker, view = _sources(page_of(collection).sources(page.answer_at(turns, turn)))
        return turn, picker, view

    def show_page(pick, turns, turn, collection):
        view = page_of(collection).cited_page(turns, turn, pick)
        return (gr.update(value=view.image, visible=view.image is not None),
                gr.update(value=view.caption, visible=bool(view.caption)))

    def rate_up(turns, turn, pick, correction, not_answerable):
        return page.rate("up", turns, turn, pick, correction, not_answerable)

    def rate_down(turns, turn, pick, correction, not_answerable):
        return page.rate("down", turns, turn, pick, correction, not_answerable)

    def like(history, turns, correction, not_answerable, evt: gr.LikeData):
        turn, status = page.like(history, turns, evt.index, evt.liked, correction, not_answerable)
        return (gr.update() if turn is None else turn), status

    def add_documents(files, collection, progress=gr.Progress()):
        def report(done: int, total: int, what: str) -> None:
            progress((done, total), desc=what, unit="files")

        return (*_documents(page_of(collection).add_uploads(files, report)), None)

    def remove_documents(chosen, collection):
        return _documents(page_of(collection).remove(chosen))

    def refresh_documents(collection):
        view = page_of(collection).documents()
        return view.rows, gr.update(choices=view.choices)

    def clear(previous):
        picker, view = _sources(page.sources(None))
        exports.discard(previous)
        return [], [], -1, picker, view, "", "", False, gr.update(value=None, interactive=False), None

    def switch_collection(collection, previous):
        """Another collection: its documents, and a new conversation (answers name their own documents)."""
        try:
            rows, choices = refresh_documents(collection)
        except gr.Error as e:
            return (*clear(previous), gr.update(), gr.update(), f"⚠️ {e.message}")
        return (*clear(previous), rows, choices, "")

    def ask(question: str, history: list | None = None, collection: str | None = None) -> dict:
        """Answer ``question``; returns the Answer as a dict (text, found, score, citations, understood_as...).

        ``history``: earlier turns, oldest first, for a follow-up such as "Where did he speak?":
        each an earlier question, or {"question", "understood_as", "answer"} as returned before.
        ``collection``: which collection to ask (the first when left out).
        """
        try:
            return page_of(collection).ask(question, history)
        except InputError as e:
            raise gr.Error(html.escape(str(e), quote=False), print_exception=False) from None

    # ---- layout ----------------------------------------------------------------------------------

    suffixes = ", ".join(SUPPORTED_SUFFIXES)
    listing = page.documents()
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=CACHE_SWEEP) as demo:
        turns = gr.State([])
        turn = gr.State(-1)
        # This visitor's download files, deleted when the visitor leaves.
        conversation_path = gr.State(None, delete_callback=exports.discard)
        feedback_path = gr.State(None, delete_callback=exports.discard)
        gr.Markdown(f"# {TITLE}\n{DESCRIPTION}")
        with gr.Row(visible=collections.named):
            collection = gr.Dropdown(choices=collections.names, value=collections.default, label="Collection",
                                     info="Questions, uploads and the document list go to this collection.",
                                     elem_id="qa-collection", scale=1, interactive=True)
            collection_status = gr.Markdown(elem_id="qa-collection-status")
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
                    f"{render.code_markdown(page.feedback_shown)}, a test set `python -m qa.eval` reads.",
                    elem_id="qa-feedback-status",
                )
                with gr.Row():
                    conversation_download = gr.DownloadButton(
                        "Download conversation", interactive=False, size="sm", elem_id="qa-download-conversation")
                    feedback_download = gr.DownloadButton(
                        "Download feedback", interactive=False, size="sm", elem_id="qa-download-feedback")
            with gr.Column(scale=2, min_width=320):
                with gr.Tab("Sources"):
                    citation_pick = gr.Radio(label="Citations of the selected answer", choices=[], type="value",
                                             elem_id="qa-citations")
                    passage = gr.HTML(render.empty_sources_html(), elem_id="qa-passage", js_on_load=None)
                    # The cited PDF page with the sentence and answer boxed; shown for PDF citations only.
                    page_image = gr.Image(label="Cited page", show_label=False, type="pil", format="png",
                                          interactive=False, visible=False, elem_id="qa-page",
                                          buttons=["fullscreen", "download"], alt_text="The cited page of the PDF")
                    page_caption = gr.Markdown(visible=False, elem_id="qa-page-caption")
                    gr.Markdown("Click a reply in the chat to see its sources.", elem_classes=["qa-empty"])
                with gr.Tab("Documents"):
                    uploads = gr.File(
                        label=f"Add documents ({suffixes}; several at once; up to {limit_mb:.0f} MB each)",
                        file_count="multiple", file_types=list(SUPPORTED_SUFFIXES), type="filepath",
                        elem_id="qa-upload", height=140,
                    )
                    upload_status = gr.Markdown(elem_id="qa-upload-status")
                    documents = gr.Dataframe(
                        value=listing.rows, headers=["Document", "Chunks", "Type", "Origin"],
                        datatype=["str", "number", "str", "str"], interactive=False,
                        column_widths=["55%", "15%", "12%", "18%"],
                        label="Indexed documents", elem_id="qa-documents", wrap=True,
                    )
                    with gr.Row():
                        to_remove = gr.Dropdown(choices=listing.choices, multiselect=True, scale=3,
                                                allow_custom_value=True, label="Remove from the index",
                                                elem_id="qa-remove-pick")
                        remove_btn = gr.Button("Remove", variant="stop", scale=1, elem_id="qa-remove")
                    remove_status = gr.Markdown(elem_id="qa-remove-status")

        # ---- wiring --------------------------------------------------------------------------------

        private = {"api_visibility": "private"}
        chat_inputs = [question, chatbot, turns, collection]
        chat_outputs = [question, chatbot, turns, turn, citation_pick, passage, correction]
        export = (export_conversation, [turns, collection, conversation_path], [conversation_download, conversation_path])
        export_ratings = (export_feedback, [feedback_path], [feedback_download, feedback_path])
        ask_btn.click(respond, chat_inputs, chat_outputs, api_name="chat", show_progress="minimal",
                      **questions).then(*export, **private)
        question.submit(respond, chat_inputs, chat_outputs, show_progress="minimal", **private,
                        **questions).then(*export, **private)
        citation_pick.input(pick_citation, [citation_pick, turns, turn, collection], [passage], **private)
        passage.change(show_page, [citation_pick, turns, turn, collection], [page_image, page_caption], **private,
                       show_progress="hidden")
        chatbot.select(pick_message, [chatbot, turns, collection], [turn, citation_pick, passage], **private)
        chatbot.like(like, [chatbot, turns, correction, not_answerable], [turn, feedback_status],
                     **private).then(*export_ratings, **private)
        feedback_inputs = [turns, turn, citation_pick, correction, not_answerable]
        up_btn.click(rate_up, feedback_inputs, [feedback_status], api_name="rate_up",
                     api_visibility="undocumented").then(*export_ratings, **private)
        down_btn.click(rate_down, feedback_inputs, [feedback_status], api_name="rate_down",
                       api_visibility="undocumented").then(*export_ratings, **private)
        cleared = [chatbot, turns, turn, citation_pick, passage, question, correction, not_answerable,
                   conversation_download, conversation_path]
        clear_btn.click(clear, [conversation_path], cleared, **private)
        collection.input(switch_collection, [collection, conversation_path],
                         cleared + [documents, to_remove, collection_status], **private)
        uploads.upload(add_documents, [uploads, collection], [upload_status, documents, to_remove, uploads],
                       api_name="add_documents", show_progress="full", show_progress_on=[upload_status],
                       **documents_pool)
        remove_btn.click(remove_documents, [to_remove, collection], [remove_status, documents, to_remove],
                         api_name="remove_documents", **documents_pool)
        demo.load(refresh_documents, [collection], [documents, to_remove], **private)
        if settings.refresh_seconds:  # a watched folder changes the documents behind the page
            gr.Timer(settings.refresh_seconds).tick(refresh_documents, [collection], [documents, to_remove], **private)
        demo.load(*export_ratings, **private)
        gr.api(ask, api_name="ask", **questions)
    return demo
