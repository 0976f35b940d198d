"""Training the neural reader, one module per job:

- ``config``: the recipe (``TrainConfig``), how a run is carried out (``RunOptions``), the data files;
- ``data``: SQuAD-format files read into questions, the held-out slice, no-answer readings;
- ``features``: token windows and padded batches;
- ``loop``: the optimiser, the learning-rate schedule, the training loop and resuming;
- ``reading``: held-out EM/F1 with the model being trained, and ``--eval-only``;
- ``calibration``: the score calibration and the held-out figures ``reader.json`` records;
- ``export``: checkpoints, the shippable export and averaging readers;
- ``agreement``: choosing ``agree_margin``;
- ``recipe``: one training run end to end; ``cli``: the command line.

Not imported by the runtime (``qa`` outside ``qa.training`` and ``qa.eval``, ``index``, ``ui``).
``python -m qa.train_reader`` (or ``python -m qa.training``) runs ``cli.main``.
"""
