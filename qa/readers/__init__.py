"""Readers: a question and retrieved passages in, scored answer spans out.

``Reader`` (``qa.readers.base``) is the interface; ``SentenceReader`` (``qa.readers.sentence``)
is the rule-based reader that needs no model; the trained extractive reader is
``qa.readers.neural``.
"""
