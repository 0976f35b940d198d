"""Property-based fuzzing of the loaders: random bytes, and truncations and mutations of real files.

The property, for every input: ``load_document`` returns a Document whose text is non-empty
text and whose offsets are consistent, or raises ``UnreadableFile``; never anything else, and
never for longer than its time limit. The budget is fixed (``max_examples``, derandomized, no
example database), so every run tries the same inputs and CI time stays bounded.

Outcome counts per property: ``pytest tests/test_loaders_fuzz.py --hypothesis-show-statistics``.
"""

from __future__ import annotations

import atexit
import io
import shutil
import tempfile
import time
import zipfile
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from index.decoding import decode_text, text_problem
from index.hashing import sha256_bytes
from index.loaders import UnreadableFile, load_document
from tests.test_loaders import GOOD_FILES, REAL_TEXT, html_text, pdf_bytes, replace_zip_member

TIME_LIMIT_S = 5.0
# A hang shows as a deadline failure: the loader's own limit, its 2 s grace, and room for a slow CI machine.
FUZZ = dict(
    derandomize=True,
    database=None,
    deadline=timedelta(seconds=TIME_LIMIT_S + 2 + 8),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SUFFIXES = (".txt", ".md", ".html", ".pdf", ".docx")
KINDS = {".txt": "txt", ".md": "md", ".html": "html", ".pdf": "pdf", ".docx": "docx"}

_WORKDIR = Path(tempfile.mkdtemp(prefix="loader-fuzz-"))
atexit.register(shutil.rmtree, _WORKDIR, True)

BASE = {
    ".txt": "\n".join(REAL_TEXT.values()).encode("utf-8"),
    ".html": html_text("Island ferries", [REAL_TEXT["french"], REAL_TEXT["russian"], REAL_TEXT["japanese"],
                                          "Ferries leave at <b>noon</b> &amp; at six."]).encode("utf-8"),
    # Uncompressed content streams, so that mutations reach pypdf's parser of text operators.
    ".pdf": pdf_bytes(["The island ferry leaves at noon. " * 6, "The museum opens at nine. " * 6], compress=False),
    ".docx": GOOD_FILES["memo.docx"],
}
DOCX_XML = zipfile.ZipFile(io.BytesIO(BASE[".docx"])).read("word/document.xml")


def check(suffix: str, data: bytes) -> None:
    """The property: a consistent Document, or UnreadableFile, within the time limit."""
    path = _WORKDIR / f"case{suffix}"
    path.write_bytes(data)
    start = time.monotonic()
    try:
        doc = load_document(path, time_limit=TIME_LIMIT_S)
    except UnreadableFile as e:
        reason = str(e)
        assert reason.strip(), "a refusal always says why"
        event(f"refused: {reason.split(' (')[0].split(':')[0][:50]}")
        return
    finally:
        assert time.monotonic() - start < TIME_LIMIT_S + 2 + 1
    event("loaded")
    assert doc.text.strip()
    assert text_problem(doc.text) is None
    assert doc.kind == KINDS[suffix]
    assert doc.sha256 == sha256_bytes(data)
    if doc.pages:
        assert doc.pages[0] == 0 and list(doc.pages) == sorted(doc.pages)
        assert doc.pages[-1] <= len(doc.text)
        assert doc.page_at(len(doc.text)) == len(doc.pages)
    if doc.raw_segments:
        raw = decode_text(data)
        for t, r, n in doc.raw_segments:
            assert doc.text[t:t + n] == raw[r:r + n]
    if doc.kind in ("txt", "md"):
        assert doc.text == decode_text(data)


@st.composite
def mutated(draw, base: bytes) -> bytes:
    """``base`` cut short, with bytes overwritten, spans deleted or random bytes spliced in."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        op = draw(st.sampled_from(["truncate", "overwrite", "delete", "insert"]))
        i = draw(st.integers(0, len(data) - 1))
        if op == "truncate":
            del data[i:]
        elif op == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[i:i + len(chunk)] = chunk
        elif op == "delete":
            del data[i:i + draw(st.integers(1, 256))]
        else:
            data[i:i] = draw(st.binary(min_size=1, max_size=64))
    return bytes(data)


@settings(max_examples=300, **FUZZ)
@given(st.sampled_from(SUFFIXES), st.binary(max_size=4096))
def test_random_bytes_under_every_name(suffix, data):
    check(suffix, data)


@settings(max_examples=100, **FUZZ)
@given(st.sampled_from(SUFFIXES), st.binary(max_size=512).map(lambda b: bytes(x | 0x80 for x in b)))
def test_high_byte_junk_is_never_loaded(suffix, data):
    """Bytes that are all >= 0x80 are never Western text; unless they happen to be valid UTF-8, they are refused."""
    check(suffix, data)
    try:
        data.decode("utf-8")
        return
    except UnicodeDecodeError:
        pass
    if data.strip():
        try:
            load_document(_WORKDIR / f"case{suffix}", time_limit=TIME_LIMIT_S)
        except UnreadableFile:
            return
        raise AssertionError(f"{len(data)} high bytes were loaded as {suffix}")


@settings(max_examples=150, **FUZZ)
@given(st.sampled_from([".txt", ".md"]), mutated(BASE[".txt"]))
def test_mutated_text(suffix, data):
    check(suffix, data)


@settings(max_examples=150, **FUZZ)
@given(mutated(BASE[".html"]))
def test_mutated_html(data):
    check(".html", data)


@settings(max_examples=200, **FUZZ)
@given(mutated(BASE[".pdf"]))
def test_mutated_pdf(data):
    check(".pdf", data)


@settings(max_examples=100, **FUZZ)
@given(mutated(BASE[".docx"]))
def test_mutated_docx_archive(data):
    check(".docx", data)


@settings(max_examples=200, **FUZZ)
@given(mutated(DOCX_XML))
def test_mutated_word_xml_in_a_valid_archive(xml):
    """The zip stays valid, so python-docx and lxml see the damaged XML itself."""
    check(".docx", replace_zip_member(BASE[".docx"], "word/document.xml", xml))


@settings(max_examples=100, **FUZZ)
@given(st.text(alphabet=st.characters(categories=["L", "M", "N", "P", "S", "Zs"]), min_size=1, max_size=300),
       st.sampled_from(["utf-8", "utf-16", "utf-32", "utf-8-sig"]))
def test_any_text_made_of_letters_marks_and_punctuation_loads_exactly(text, encoding):
    """The other side of "not text": real characters of any script must never be refused."""
    path = _WORKDIR / "text.txt"
    path.write_bytes(text.encode(encoding))
    if not text.encode(encoding).strip() or not text.strip():
        return
    assert load_document(path).text == text


def test_fuzz_bases_load():
    """Every mutation starts from a file that loads (otherwise each would be refused for nothing)."""
    for suffix in (".pdf", ".docx", ".html", ".txt"):
        path = _WORKDIR / f"base{suffix}"
        path.write_bytes(BASE[suffix])
        assert load_document(path).text.strip()
    assert "canteen" in load_document(_WORKDIR / "base.docx").text
    assert load_document(_WORKDIR / "base.pdf").page_at(load_document(_WORKDIR / "base.pdf").text.index("museum")) == 2
