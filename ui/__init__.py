"""The chat page over the engine: ``python -m ui [--index [NAME=]LOCATION ...] [--host H] [--port P] [--auth-file FILE]``.

``ui`` only presents: it calls ``qa``'s public API (``Engine`` and its types) and never
reaches into the index store. ``ui.layout`` builds the page, ``ui.handlers`` holds what
its buttons do, ``ui.app`` serves it.
"""

import os

# No telemetry and no version check: the page must work offline. Set before any ui
# module imports Gradio, since some of its modules read the variable at import time.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
