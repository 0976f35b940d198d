"""``python -m qa.readers.neural``: export the neural reader to ONNX (``make setup`` runs it)."""

from qa.readers.neural.export import main

main()
