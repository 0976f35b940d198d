"""Readers: a question and retrieved passages in, scored answer spans out.

``base``       the ``Reader`` interface the engine calls
``sentence``   ``SentenceReader``, the rule-based reader that needs no model
``spans``      question types and short answers of the asked type (both readers use it)
``sentences``  sentence boundaries with offsets, for citing the supporting sentence
``neural``     ``NeuralReader``, the trained extractive reader (a package, one module per job)
"""
