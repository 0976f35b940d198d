"""A bad file never ends a run: every way a file can be wrong is reported by name, the rest load.

Each test builds its files by hand (fpdf2, python-docx, plain strings) so that the right
outcome is known: which files load, which are refused and why.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from index.files import ScanResult, printable_name, scan, source_name
from index.hashing import sha256_bytes, sha256_file
from index.loaders import UnreadableFile, load_document
from tests.conftest import REPO_ROOT, SEED_FILE

SEED_TEXT = SEED_FILE.read_text(encoding="utf-8")

# Real sentences in several languages and scripts: all must load, whatever their encoding.
REAL_TEXT = {
    "french": "Le maître d'hôtel a réservé une table près de la fenêtre pour le dîner de Noël.",
    "german": "Die Größe des Gebäudes überraschte die Prüfer; sie hatten weniger Fläche erwartet.",
    "spanish": "El señor Muñoz abrió la tienda a las ocho y vendió café, azúcar y pañuelos.",
    "portuguese": "A votação da associação terminou, e a decisão saiu antes do almoço de sábado.",
    "icelandic": "Þjóðin á sér langa sögu. Við fórum út á sjó í gær og sáum hvali við ströndina.",
    "polish": "Zażółć gęślą jaźń: ta fraza zawiera wszystkie polskie znaki diakrytyczne.",
    "russian": "Москва — столица России, крупнейший по численности населения город страны.",
    "greek": "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας και μία από τις αρχαιότερες πόλεις.",
    "chinese": "北京是中华人民共和国的首都，也是全国的政治和文化中心。长城位于北京北部。",
    "japanese": "東京は日本の首都であり、世界で最も人口の多い都市圏の一つです。桜が有名です。",
    "korean": "서울은 대한민국의 수도이며 한강이 도시를 가로질러 흐릅니다. 경복궁이 있습니다.",
    "arabic": "القاهرة هي عاصمة مصر وأكبر مدنها، ويمر نهر النيل عبر المدينة.",
    "hindi": "नई दिल्ली भारत की राजधानी है और यहाँ संसद भवन स्थित है।",
    "emoji": "Party at 8 🎉 bring snacks 🍕🍩 and music 🎶 — RSVP by Friday ✅.",
}
LATIN1_LANGUAGES = ("french", "german", "spanish", "portuguese", "icelandic")
# UTF-16 without a byte-order mark is told by the NUL high bytes of ASCII characters; this
# Japanese text has fewer of them (4 newlines) than kanji whose low byte is NUL (10), so it
# is refused as binary, with the advice to save it as UTF-8.
BOMLESS_UTF16_REFUSED = {"japanese"}


# ---- building real files ----------------------------------------------------------------------

def pdf_bytes(pages: list[str], compress: bool = True) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_compression(compress)
    pdf.set_font("Helvetica", size=11)
    for body in pages:
        pdf.add_page()
        pdf.multi_cell(0, 6, body.encode("latin-1", "replace").decode("latin-1"))
    return bytes(pdf.output())


def docx_bytes(paragraphs: list[str], table: list[list[str]] | None = None) -> bytes:
    import docx

    d = docx.Document()
    for p in paragraphs:
        d.add_paragraph(p)
    if table:
        t = d.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, cell in enumerate(row):
                t.cell(r, c).text = cell
    out = io.BytesIO()
    d.save(out)
    return out.getvalue()


def html_text(title: str, paragraphs: list[str]) -> str:
    body = "".join(f"<p>{p}</p>\n" for p in paragraphs)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>"
            f"<style>p {{ margin: 0 }}</style><script>var x = '<p>not text</p>';</script></head>"
            f"<body><!-- a comment --><h1>{title}</h1>\n{body}<p>Tom &amp; Jerry &#8212; &eacute;t&eacute;</p></body></html>")


def replace_zip_member(data: bytes, member: str, content: bytes) -> bytes:
    """A copy of the zip ``data`` with ``member`` replaced by ``content`` (a well-formed zip)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, content if info.filename == member else src.read(info.filename))
    return out.getvalue()


def slow_pdf(operators: int) -> bytes:
    """A valid one-page PDF whose content stream holds ``operators`` text-showing operators:
    pypdf's text extraction time grows faster than linearly with them."""
    content = b"BT /F1 12 Tf 72 720 Td\n" + b"(word) Tj 1 0 Td\n" * operators + b"ET\n"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


GOOD_FILES = {
    "notes.txt": SEED_TEXT[:1500].encode("utf-8"),
    "readme.md": b"# Harbour\n\nThe harbour master is Ann Smith. Ferries leave at noon.\n",
    "page.html": html_text("Lighthouse", ["The keeper is Morag Campbell.", "The lamp turns twice a minute."]).encode(),
    "report.pdf": pdf_bytes(["The island ferry leaves at noon. " * 5, "The museum opens at nine. " * 5]),
    "memo.docx": docx_bytes(["Memo to staff.", "The canteen closes at three on Fridays."], [["Day", "Hours"], ["Fri", "9-3"]]),
}


def _broken_docx_xml() -> bytes:
    good = GOOD_FILES["memo.docx"]
    xml = zipfile.ZipFile(io.BytesIO(good)).read("word/document.xml")
    return replace_zip_member(good, "word/document.xml", xml[: len(xml) // 2])  # cut mid-element


# One bad file of each kind, with the words its reason must contain.
BAD_FILES = {
    "txt": ("junk.txt", bytes(range(0x80, 0x100)) * 40, "not text"),
    "md": ("broken.md", b"\xff\xfe" + "Zürich".encode("utf-16-le") + b"\x00\xd8", "UTF-16"),
    "html": ("binary.html", b"<html><p>" + bytes(range(1, 200)) + b"\x00\x00", "binary"),
    "pdf": ("cut.pdf", GOOD_FILES["report.pdf"][:700], "PDF"),
    "docx": ("malformed.docx", _broken_docx_xml(), "Word document"),
}


def write_files(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def load_folder(folder: Path, **scan_options) -> tuple[dict[str, object], dict[str, str], ScanResult]:
    """Scan ``folder`` and load every file: (loaded documents by name, reasons by name, the scan)."""
    result = scan(folder, **scan_options)
    loaded, refused = {}, {}
    for path in result.files:
        try:
            loaded[path.name] = load_document(source_name(path))
        except UnreadableFile as e:
            refused[path.name] = str(e)
    skipped = {Path(name).name: reason for name, reason in result.skipped}
    return loaded, {**skipped, **refused}, result


# ---- a bad file among good ones, for every loader -----------------------------------------------

@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_a_bad_file_among_good_ones_is_named_and_the_rest_load(tmp_path, kind):
    name, data, reason = BAD_FILES[kind]
    folder = write_files(tmp_path / "docs", {**GOOD_FILES, name: data})
    loaded, refused, _ = load_folder(folder)
    assert set(loaded) == set(GOOD_FILES)
    assert list(refused) == [name]
    assert reason in refused[name]
    assert "Morag Campbell" in loaded["page.html"].text and "canteen" in loaded["memo.docx"].text
    assert loaded["report.pdf"].page_at(loaded["report.pdf"].text.index("museum")) == 2


def test_malformed_word_xml_is_refused_not_raised(tmp_path):
    path = tmp_path / "malformed.docx"
    path.write_bytes(BAD_FILES["docx"][1])
    with pytest.raises(UnreadableFile, match=r"broken Word document \(XMLSyntaxError"):
        load_document(path)


@pytest.mark.parametrize("name, junk", [
    ("high.txt", bytes(range(0x80, 0x100)) * 40),                      # has the 5 bytes cp1252 lacks
    ("cp1252.txt", bytes(b for b in range(0xA0, 0x100)) * 40),         # decodes in cp1252: all symbols
    ("random.md", bytes((i * 7919 + 13) % 128 + 128 for i in range(3000))),
])
def test_high_byte_junk_without_nuls_is_refused_as_not_text(tmp_path, name, junk):
    assert b"\x00" not in junk
    path = tmp_path / name
    path.write_bytes(junk)
    with pytest.raises(UnreadableFile, match="not text"):
        load_document(path)


@pytest.mark.parametrize("language", sorted(REAL_TEXT))
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_real_text_in_any_script_is_accepted(tmp_path, language, encoding):
    text = "\n".join([REAL_TEXT[language]] * 5)
    path = tmp_path / f"{language}.txt"
    path.write_bytes(text.encode(encoding))
    if encoding in ("utf-16-le", "utf-16-be") and language in BOMLESS_UTF16_REFUSED:
        with pytest.raises(UnreadableFile, match="byte-order mark; if it is text, save it as UTF-8"):
            load_document(path)
        return
    assert load_document(path).text == text


@pytest.mark.parametrize("language", LATIN1_LANGUAGES)
@pytest.mark.parametrize("encoding", ["latin-1", "cp1252"])
def test_western_european_text_in_a_single_byte_encoding_is_accepted(tmp_path, language, encoding):
    text = f"{REAL_TEXT[language]}\n“{REAL_TEXT[language][:20]}…”" if encoding == "cp1252" else REAL_TEXT[language]
    path = tmp_path / f"{language}.txt"
    path.write_bytes(text.encode(encoding))
    assert load_document(path).text == text


def test_cyrillic_in_a_single_byte_code_page_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "koi8.txt"
    path.write_bytes(REAL_TEXT["russian"].encode("cp1251"))
    with pytest.raises(UnreadableFile, match="save it as UTF-8"):
        load_document(path)


def test_utf8_cut_in_the_middle_of_a_character_is_still_read(tmp_path):
    data = (REAL_TEXT["chinese"] * 4).encode("utf-8")[:-1]
    path = tmp_path / "cut.txt"
    path.write_bytes(data)
    text = load_document(path).text
    assert text.startswith(REAL_TEXT["chinese"]) and text.endswith("\ufffd")


# ---- special files, links, names -----------------------------------------------------------------

def test_fifo_named_txt_is_never_opened_and_nothing_hangs(tmp_path):
    """In a child process with a time limit: opening a FIFO for reading would wait for a writer forever."""
    folder = write_files(tmp_path / "docs", {"good.txt": b"The ferry leaves at noon."})
    os.mkfifo(folder / "x.txt")
    script = (
        "import sys\n"
        "from index.files import scan\n"
        "from index.hashing import sha256_file\n"
        "from index.loaders import UnreadableFile, load_document\n"
        "r = scan(sys.argv[1])\n"
        "print('files', [p.name for p in r.files])\n"
        "print('skipped', r.skipped)\n"
        "try:\n"
        "    load_document(sys.argv[1] + '/x.txt')\n"
        "except UnreadableFile as e:\n"
        "    print('refused', e)\n"
        "try:\n"
        "    sha256_file(sys.argv[1] + '/x.txt')\n"
        "except OSError as e:\n"
        "    print('hash refused', e)\n"
    )
    run = subprocess.run([sys.executable, "-c", script, str(folder)], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "files ['good.txt']" in run.stdout
    assert "x.txt', 'not a regular file (a FIFO)" in run.stdout
    assert "refused not a regular file (a FIFO); it is never opened" in run.stdout
    assert "hash refused" in run.stdout


def test_device_behind_a_document_name_is_not_read(tmp_path):
    os.symlink("/dev/zero", tmp_path / "zeros.txt")
    with pytest.raises(UnreadableFile, match="character device"):
        load_document(tmp_path / "zeros.txt")
    assert scan(tmp_path).skipped == ((str(tmp_path / "zeros.txt"), "not a regular file (a character device); it is never opened"),)


def test_symlink_loop_between_two_files_is_reported_not_raised(tmp_path):
    folder = write_files(tmp_path / "docs", {"good.txt": b"The ferry leaves at noon."})
    os.symlink("b.txt", folder / "a.txt")
    os.symlink("a.txt", folder / "b.txt")
    loaded, refused, result = load_folder(folder)
    assert set(loaded) == {"good.txt"}
    assert set(refused) == {"a.txt", "b.txt"}
    assert all("symbolic link loop" in reason for reason in refused.values())
    assert source_name(folder / "a.txt") == str(folder / "a.txt")  # no RuntimeError
    with pytest.raises(UnreadableFile, match="symbolic link loop"):
        load_document(folder / "a.txt")


def test_folder_link_loop_is_walked_once(tmp_path):
    folder = write_files(tmp_path / "docs" / "sub", {"deep.txt": b"Deep in the folder."}).parent
    os.symlink("..", folder / "sub" / "up")
    os.symlink("sub", folder / "again")
    loaded, refused, _ = load_folder(folder)
    assert set(loaded) == {"deep.txt"}
    assert "symbolic link loop back to" in refused["up"]
    assert "the same folder as" in refused["again"]


def test_broken_link_is_reported_with_its_target(tmp_path):
    folder = write_files(tmp_path / "docs", {"good.txt": b"The ferry leaves at noon."})
    os.symlink("gone.txt", folder / "dangling.txt")
    _, refused, _ = load_folder(folder)
    assert refused == {"dangling.txt": "broken symbolic link (its target gone.txt does not exist)"}


def test_link_to_a_file_outside_is_indexed_under_its_own_name(tmp_path):
    outside = write_files(tmp_path / "elsewhere", {"shared.txt": b"The shared calendar lives here."})
    folder = write_files(tmp_path / "docs", {"good.txt": b"The ferry leaves at noon."})
    os.symlink(outside / "shared.txt", folder / "link.txt")
    os.symlink(folder / "good.txt", folder / "same.txt")
    loaded, refused, result = load_folder(folder)
    assert set(loaded) == {"good.txt", "link.txt"}
    assert loaded["link.txt"].source == str(folder.resolve() / "link.txt")  # leaves the index with the link
    assert loaded["link.txt"].text == "The shared calendar lives here."
    assert result.links == ((folder / "link.txt", str((outside / "shared.txt").resolve())),)
    assert result.files == (folder / "good.txt", folder / "link.txt")
    assert "the same file as" in refused["same.txt"]


def test_source_name_resolves_folders_not_the_file(tmp_path):
    real = write_files(tmp_path / "real", {"a.txt": b"Alpha."})
    os.symlink(real, tmp_path / "alias")
    os.symlink(real / "a.txt", real / "link.txt")
    assert source_name(tmp_path / "alias" / "a.txt") == str(real.resolve() / "a.txt")
    assert source_name(tmp_path / "alias" / "link.txt") == str(real.resolve() / "link.txt")
    assert source_name(tmp_path / "alias" / "link.txt", root=tmp_path / "alias") == str(real.resolve() / "link.txt")


def test_non_utf8_file_name_is_reported_printably(tmp_path):
    folder = write_files(tmp_path / "docs", {"good.txt": b"The ferry leaves at noon."})
    bad = folder / os.fsdecode(b"caf\xe9.txt")
    bad.write_bytes(b"Menu of the day.")
    bad_folder = folder / os.fsdecode(b"r\xe9sum\xe9s")
    write_files(bad_folder, {"cv.txt": b"Ten years at sea."})
    result = scan(folder)
    assert [p.name for p in result.files] == ["good.txt"]
    reasons = dict(result.skipped)
    assert reasons[f"{folder}/caf\\xe9.txt"] == "the file name is not valid UTF-8; rename it to index it"
    assert reasons[f"{folder}/r\\xe9sum\\xe9s"] == "the folder name is not valid UTF-8; rename it to index it"
    for name, _ in result.skipped:
        name.encode("utf-8")  # printable, storable
    assert printable_name(bad) == f"{folder}/caf\\xe9.txt"
    with pytest.raises(UnreadableFile, match="not valid UTF-8"):  # given directly, as 'add' does
        load_document(bad)


def test_hidden_files_and_folders_are_reported_once(tmp_path):
    folder = write_files(tmp_path / "docs", {"good.txt": b"Visible.", ".secret.txt": b"Hidden note."})
    write_files(folder / ".git", {f"obj{i}.txt": b"object" for i in range(5)})
    result = scan(folder)
    assert [p.name for p in result.files] == ["good.txt"]
    assert result.skipped == (
        (str(folder / ".git"), "hidden folder (names starting with '.' are not indexed; nothing inside it is indexed)"),
        (str(folder / ".secret.txt"), "hidden file (names starting with '.' are not indexed)"),
    )


def test_unsupported_types_are_left_out_unless_asked(tmp_path):
    folder = write_files(tmp_path / "docs", {"a.txt": b"Alpha.", "photo.png": b"\x89PNG\r\n", "b.md": b"Beta."})
    write_files(folder / "sub", {"c.htm": b"<p>Gamma.</p>"})
    assert scan(folder) == ScanResult(files=(folder / "a.txt", folder / "b.md", folder / "sub" / "c.htm"), skipped=())
    assert scan(folder, report_unsupported=True).skipped == (
        (str(folder / "photo.png"), "unsupported file type '.png'; supported: .txt, .md, .markdown, .html, .htm, .pdf, .docx"),
    )


def test_scan_refuses_a_file_as_folder(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(NotADirectoryError, match="is not a folder"):
        scan(tmp_path / "a.txt")


# ---- files that change, vanish or take too long ---------------------------------------------------

def _while_reading(monkeypatch, action):
    """Run ``action`` once, between the loader's open and its first read: a real change, at a known moment."""
    real_read, done = os.read, []

    def read(fd, n):
        if not done:
            done.append(True)
            action()
        return real_read(fd, n)

    monkeypatch.setattr(os, "read", read)


def test_file_that_grows_while_read_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "log.txt"
    path.write_text("First line.\n")
    _while_reading(monkeypatch, lambda: path.open("a").write("Second line, written during the read.\n"))
    with pytest.raises(UnreadableFile, match="changed while it was being read"):
        load_document(path)


def test_file_removed_while_read_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "temp.txt"
    path.write_text("Short-lived.")
    _while_reading(monkeypatch, path.unlink)
    with pytest.raises(UnreadableFile, match="removed while it was being read"):
        load_document(path)


def test_file_replaced_while_read_is_refused(tmp_path, monkeypatch):
    path, new = tmp_path / "doc.txt", tmp_path / "new.txt"
    path.write_text("Old text.")
    new.write_text("New text.")
    _while_reading(monkeypatch, lambda: os.replace(new, path))
    with pytest.raises(UnreadableFile, match="replaced while it was being read"):
        load_document(path)


def test_pdf_that_parses_too_long_is_refused_at_the_time_limit(tmp_path):
    path = tmp_path / "slow.pdf"
    path.write_bytes(slow_pdf(100_000))  # about 12 s of pypdf work on one core
    start = time.monotonic()
    with pytest.raises(UnreadableFile, match="took longer than 1 s"):
        load_document(path, time_limit=1.0)
    assert time.monotonic() - start < 4.0
    small = tmp_path / "small.pdf"
    small.write_bytes(slow_pdf(200))
    assert load_document(small, time_limit=30).text.startswith("word")


def test_deeply_nested_pdf_and_word_xml_are_refused(tmp_path):
    """Nesting that drives recursive parsers into their limits: 50,000 nested PDF arrays, 300,000 nested XML elements."""
    pdf = tmp_path / "deep.pdf"
    nest = b"[" * 50_000 + b"]" * 50_000
    pdf.write_bytes(slow_pdf(10).replace(b"/MediaBox [0 0 612 792]", b"/MediaBox [0 0 612 792] /Deep " + nest))
    with pytest.raises(UnreadableFile, match="broken PDF"):
        load_document(pdf)
    docx = tmp_path / "deep.docx"
    xml = zipfile.ZipFile(io.BytesIO(GOOD_FILES["memo.docx"])).read("word/document.xml")
    deep = xml.replace(b"<w:body>", b"<w:body>" + b"<w:x>" * 300_000 + b"</w:x>" * 300_000)
    docx.write_bytes(replace_zip_member(GOOD_FILES["memo.docx"], "word/document.xml", deep))
    with pytest.raises(UnreadableFile, match=r"broken Word document \(XMLSyntaxError: Excessive depth"):
        load_document(docx)


def test_encrypted_pdf_says_it_needs_a_password(tmp_path):
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(io.BytesIO(GOOD_FILES["report.pdf"])).pages:
        writer.add_page(page)
    writer.encrypt("secret", algorithm="RC4-128")
    path = tmp_path / "locked.pdf"
    with open(path, "wb") as fh:
        writer.write(fh)
    with pytest.raises(UnreadableFile, match="encrypted PDF"):
        load_document(path)


def test_word_file_that_unpacks_too_large_is_refused(tmp_path, monkeypatch):
    from index import loaders

    monkeypatch.setattr(loaders, "MAX_DOCX_UNPACKED_BYTES", 10_000)
    path = tmp_path / "memo.docx"
    path.write_bytes(GOOD_FILES["memo.docx"])
    with pytest.raises(UnreadableFile, match="unpacks to"):
        load_document(path)


def test_files_over_the_size_limit_are_not_read(tmp_path):
    path = tmp_path / "big.txt"
    path.write_bytes(b"A sentence about ships.\n" * 1000)
    with pytest.raises(UnreadableFile, match="limit for one document"):
        load_document(path, max_bytes=1000)


def test_limits_must_be_positive(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("Alpha station.")
    with pytest.raises(ValueError, match="time_limit must be greater than 0"):
        load_document(path, time_limit=0)
    with pytest.raises(ValueError, match="max_bytes must be greater than 0"):
        load_document(path, max_bytes=-1)
    assert load_document(path, time_limit=None).text == "Alpha station."


# ---- hashing -------------------------------------------------------------------------------------

def test_file_hash_is_the_content_hash(tmp_path):
    path = tmp_path / "big.bin"
    data = os.urandom(3 * (1 << 20) + 17)  # crosses the 1 MiB read blocks
    path.write_bytes(data)
    assert sha256_file(path) == sha256_bytes(data) == hashlib.sha256(data).hexdigest()
    (tmp_path / "a.txt").write_bytes(b"Alpha station.")
    assert load_document(tmp_path / "a.txt").sha256 == sha256_file(tmp_path / "a.txt")
