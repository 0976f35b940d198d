"""The chat page over the engine: ``python -m ui [--index DIR] [--host H] [--port P]``.

``ui`` only presents: it calls ``qa``'s public API (``Engine`` and its types) and never
reaches into the index store. The page itself is built by ``ui.app.build_app``.
"""
