"""The trained neural reader: an extractive span reader on the bundled MiniLM encoder.

The weights are trained by ``python -m qa.train_reader`` and shipped in
``qa/models/reader/`` (fp16 safetensors, SHA-256 checked at load). Loading never
touches the network.

How scores work (for fusing with retrieval):
    For every passage the model gives a best span logit ``span_logit`` (start logit +
    end logit of the best legal span) and a no-answer logit ``null_logit`` (start + end
    logit of the [CLS] token). ``margin = span_logit - null_logit`` is the raw evidence
    that the passage answers the question. ``score = sigmoid(a * margin + b)`` with
    ``a, b`` fitted on held-out training data (logistic regression of "the span is right"
    on the margin), so ``score`` estimates the probability that the span is a correct
    answer; 0.5 is the natural "found" threshold. ``NeuralReader.score_passages`` returns
    all of these per passage as ``PassageReading`` records.

The modules, by job:
    ``files``        the reader's folder: file names, checksums, ``ReaderConfig``, tokenizer
    ``windows``      the question against each passage, long passages in overlapping windows
    ``decoding``     running the model over windows; best spans and their logits
    ``calibration``  margin -> probability that the span is right
    ``precision``    fp32, bf16 or int8 arithmetic, and what "auto" means on this CPU
    ``runtime``      what runs the model: ONNX Runtime or torch ("auto" picks)
    ``export``       the reader exported once to ONNX (``make setup``)
    ``agreement``    preferring the rule-based span of the asked type when the model nearly agrees
    ``reader``       ``NeuralReader``: load, read, return candidates

torch and transformers are imported only by the functions that load or run the torch model:
importing this package (and ``qa``) stays fast, and answering with the ONNX backend imports
neither.
"""

from qa.readers.neural.agreement import scored_typed_alternative, sentence_around, typed_alternative, typed_span_wins
from qa.readers.neural.calibration import calibrated
from qa.readers.neural.decoding import (WindowLogits, best_of_windows, best_span, default_batch_size, read_contexts,
                                       read_windows, span_logit)
from qa.readers.neural.export import exported_reader
from qa.readers.neural.files import (CHECKSUM_FILE, MODEL_DIR, READER_CONFIG_FILE, REQUIRED_FILES, TOKENIZER_FILES,
                                     WEIGHTS_FILE, ReaderConfig, ReaderIntegrityError, is_available, load_tokenizer,
                                     verify_checksums, write_checksums)
from qa.readers.neural.precision import cpu_has_bf16, resolve_precision
from qa.readers.neural.reader import NeuralReader, PassageReading
from qa.readers.neural.runtime import BACKENDS, OnnxReaderModel, resolve_backend
from qa.readers.neural.windows import WordPieceTokenizer, encode_windows

__all__ = [
    "BACKENDS", "CHECKSUM_FILE", "MODEL_DIR", "READER_CONFIG_FILE", "REQUIRED_FILES", "TOKENIZER_FILES", "WEIGHTS_FILE",
    "NeuralReader", "OnnxReaderModel", "PassageReading", "ReaderConfig", "ReaderIntegrityError", "WindowLogits",
    "WordPieceTokenizer", "best_of_windows", "best_span", "calibrated", "cpu_has_bf16", "default_batch_size",
    "encode_windows", "exported_reader", "is_available", "load_tokenizer", "read_contexts", "read_windows",
    "resolve_backend", "resolve_precision", "scored_typed_alternative", "sentence_around", "span_logit",
    "typed_alternative", "typed_span_wins", "verify_checksums", "write_checksums",
]
