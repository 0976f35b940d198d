"""How the page looks: its title, a theme with system fonts only, and the passage styles."""

from __future__ import annotations

import gradio as gr

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
