"""Serve the chat page: ask, read cited answers, see the passage highlighted, add documents.

Example:
    >>> from qa import Engine
    >>> from ui.app import UISettings, build_app, launch, start
    >>> settings = UISettings()
    >>> demo = build_app(Engine(), settings)          # doctest: +SKIP
    >>> start(demo, settings)                         # doctest: +SKIP   (http://127.0.0.1:7860)

The page only presents: it calls ``qa.Engine`` (ask, add_files, remove_documents,
documents) and never reaches into the index store.
"""

from __future__ import annotations

import sys

from qa import Engine
from ui.collections import Collections
from ui.auth import PasswordCheck, load_auth_file
from ui.layout import build_app
from ui.settings import DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_PORT, UISettings
from ui.style import CSS, THEME

__all__ = ["DEFAULT_DATA_DIR", "DEFAULT_HOST", "DEFAULT_PORT", "UISettings", "build_app", "launch", "start"]

AUTH_MESSAGE = "Ask your documents: sign in with a user name and password from the page's auth file."


def start(demo, settings: UISettings | None = None, prevent_thread_lock: bool = False, quiet: bool = False) -> str:
    """Serve ``demo`` at ``settings.host:settings.port`` (127.0.0.1:7860 by default).

    With ``settings.auth_file`` the page and its API ask for a user name and password.
    The app's data folder is never served; neither is an uploaded file once the page has
    kept its own copy.

    Args:
        demo: the page from ``build_app``.
        settings: host, port, auth, upload limit, concurrency (defaults when None).
        prevent_thread_lock: return at once and serve from a background thread (tests).
        quiet: print nothing.

    Returns:
        The page's local URL.

    Raises:
        AuthFileError: the auth file cannot be read or has a malformed line.
    """
    settings = settings or UISettings()
    auth = PasswordCheck(load_auth_file(settings.auth_file)).as_gradio_auth() if settings.auth_file else None
    settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    demo.queue(default_concurrency_limit=settings.concurrency_limit)
    _, local_url, _ = demo.launch(
        server_name=settings.host, server_port=settings.port, prevent_thread_lock=prevent_thread_lock,
        quiet=quiet, share=False, inbrowser=False, ssr_mode=False, pwa=False, mcp_server=False,
        max_file_size=settings.max_upload_bytes, theme=THEME, css=CSS, footer_links=["api"],
        auth=auth, auth_message=AUTH_MESSAGE if auth else None,
        blocked_paths=[str(settings.data_dir.resolve()), str(settings.uploads_dir.resolve())],
        # Messages of unexpected errors may hold server paths: the page shows only the
        # one-line messages written for users (gr.Error); the log keeps the rest.
        show_error=False, enable_monitoring=False,
    )
    return local_url


def launch(engine: Engine | Collections | None = None, settings: UISettings | None = None, warm_up: bool = True,
           prevent_thread_lock: bool = False) -> str:
    """Build the page over ``engine`` (the default index over seeds/ when None), or over
    several named ``Collections``, and serve it.

    With ``warm_up`` one question is answered before the page opens (in the first
    collection), so the first visitor does not wait for the models to load.
    """
    settings = settings or UISettings()
    engine = engine or Engine()
    first = engine.engine(engine.default) if isinstance(engine, Collections) else engine
    if warm_up and first.documents():
        try:
            first.ask(settings.examples[0] if settings.examples else "warm up")
        except Exception as e:  # the page still opens; the error shows again on the first question
            print(f"warning: answering a first question failed ({type(e).__name__}: {e}); "
                  "questions may fail until that is fixed (try --reader sentence)", file=sys.stderr)
    return start(build_app(engine, settings), settings, prevent_thread_lock=prevent_thread_lock)
