"""Training the neural reader: data, features, the training loop, calibration, export.

Not imported by the runtime (``qa`` outside ``qa.training`` and ``qa.eval``, ``index``, ``ui``).
``python -m qa.training`` (or ``python -m qa.train_reader``) trains; see ``qa.training.train``.
"""
