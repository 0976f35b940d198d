"""An index remembers the embedder that built it (fp32: onnx/torch; int8: onnx-int8).

A new index is built with int8 unless told otherwise, and an existing one keeps its own.
Built with ``--embedder onnx-int8`` it is asked with int8 by default; adding documents with
the other family is refused with what to do; asking with it is allowed with a warning; an
index from before the record is fp32; ``--rebuild --embedder`` switches an index over. On
the folder store and Milvus Lite.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest

from index import Index, IndexMismatch, IndexSettings
from index.__main__ import main as index_cli
from qa import Engine, QASettings
from tests.conftest import SEED_FILE, SEEDS

STORES = ("folder", "milvus")
LIGHTHOUSE = "The lighthouse keeper of Port Ellen is Marguerite Okafor.\n"


@pytest.fixture(params=STORES)
def location(request, tmp_path) -> str:
    if request.param == "milvus":
        pytest.importorskip("milvus_lite", reason="Milvus Lite is in requirements.txt; pip install -r requirements.txt")
        return f"milvus:{tmp_path / 'index.db'}"
    return str(tmp_path / "index")


@pytest.fixture
def docs(tmp_path) -> Path:
    folder = tmp_path / "docs"
    shutil.copytree(SEEDS, folder)
    return folder


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = index_cli(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def reopen(location: str, **kw) -> Index:
    return Index.open(location, **kw)


def test_a_new_index_is_built_in_int8_and_a_fp32_one_stays_fp32(location, docs, capsys):
    code, _, err = cli(capsys, "build", str(docs), "--index", location, "--quiet")    # no choice made
    assert code == 0, err
    index = reopen(location)
    assert index.manifest["embedder"] == "onnx-int8" and index.embedder.backend == "onnx-int8"
    assert Engine(index, QASettings(reader="sentence")).ask("who is Rob Strayer?").text == "State Department official"
    index.close()
    assert cli(capsys, "build", str(docs), "--index", location, "--rebuild", "--embedder", "onnx", "--quiet")[0] == 0
    note = docs / "lighthouse.txt"
    note.write_text(LIGHTHOUSE, encoding="utf-8")
    code, _, err = cli(capsys, "add", str(note), "--index", location, "--quiet")      # no choice: its own fp32
    assert code == 0, err
    index = reopen(location)
    assert index.manifest["embedder"] == "onnx" and index.embedder.backend == "onnx" and len(index.documents()) == 2
    index.close()


def test_an_int8_index_records_it_and_is_asked_with_int8(location, docs, capsys):
    code, _, err = cli(capsys, "build", str(docs), "--index", location, "--embedder", "onnx-int8", "--quiet")
    assert code == 0, err
    index = reopen(location)
    assert index.manifest["embedder"] == "onnx-int8"
    assert index.embedder.backend == "onnx-int8"           # no choice made: the index's own
    with warnings.catch_warnings():
        warnings.simplefilter("error")                     # no warning about mixed embedders
        answer = Engine(index, QASettings(reader="sentence")).ask("who is Rob Strayer?")
    assert answer.found and answer.text == "State Department official"
    assert answer.citations[0].source.endswith(SEED_FILE.name)
    index.close()
    code, out, _ = cli(capsys, "status", "--index", location)
    assert code == 0 and "embedder: onnx-int8 (int8)" in out


def test_adding_with_the_other_family_is_refused_and_the_index_kept(location, docs, capsys):
    assert cli(capsys, "build", str(docs), "--index", location, "--embedder", "onnx-int8", "--quiet")[0] == 0
    note = docs / "lighthouse.txt"
    note.write_text(LIGHTHOUSE, encoding="utf-8")
    code, _, err = cli(capsys, "add", str(note), "--index", location, "--embedder", "onnx")
    assert code == 2
    assert "onnx-int8 (int8)" in err and "onnx (fp32)" in err
    assert "--embedder onnx-int8" in err and "--rebuild" in err            # what to do instead
    index = reopen(location, settings=IndexSettings(embedder="torch"))
    with pytest.raises(IndexMismatch, match="mix two kinds of vectors"):
        index.add([note], quiet=True)
    assert [d.source for d in index.documents()] == [str(docs / SEED_FILE.name)]
    index.close()
    code, _, err = cli(capsys, "add", str(note), "--index", location, "--quiet")    # no choice: int8
    assert code == 0, err
    index = reopen(location)
    assert len(index.documents()) == 2 and index.manifest["embedder"] == "onnx-int8"
    assert Engine(index, QASettings(reader="sentence")).ask("Who is the lighthouse keeper of Port Ellen?").text \
        == "Marguerite Okafor"
    index.close()


def test_asking_with_the_other_family_warns_once_and_still_answers(location, docs):
    index = Index.open(location, IndexSettings(embedder="onnx-int8", show_progress=False), create=True)
    index.build(docs, quiet=True)
    index.close()
    fp32 = reopen(location, settings=IndexSettings(embedder="onnx"))
    engine = Engine(fp32, QASettings(reader="sentence"))
    with pytest.warns(UserWarning, match="Leave the embedder at 'auto'") as caught:
        assert engine.ask("who is Rob Strayer?").text == "State Department official"
        engine.ask("who is Rob Strayer?")
    assert len([w for w in caught if "Leave the embedder" in str(w.message)]) == 1
    fp32.close()


def test_rebuild_switches_the_embedder(location, docs, capsys):
    assert cli(capsys, "build", str(docs), "--index", location, "--embedder", "onnx-int8", "--quiet")[0] == 0
    code, _, err = cli(capsys, "build", str(docs), "--index", location, "--rebuild", "--embedder", "onnx", "--quiet")
    assert code == 0, err
    index = reopen(location)
    assert index.manifest["embedder"] == "onnx" and index.embedder.backend == "onnx"
    assert Engine(index, QASettings(reader="sentence")).ask("who is Rob Strayer?").text == "State Department official"
    index.close()
    # Rebuilt without a choice, the index keeps its own embedder.
    assert cli(capsys, "build", str(docs), "--index", location, "--rebuild", "--quiet")[0] == 0
    assert reopen(location).manifest["embedder"] == "onnx"


def test_an_index_from_before_the_record_is_fp32(tmp_path, docs, embedder):
    location = tmp_path / "index"
    Index.open(location, create=True, embedder=embedder).build(docs, quiet=True)
    manifest_file = location / (location / "CURRENT").read_text().strip() / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    del manifest["embedder"]                       # as written before embedders were recorded
    manifest_file.write_text(json.dumps(manifest))
    index = Index.open(location)
    assert "embedder" not in index.manifest and index.status()["embedder"] == "not recorded (fp32)"
    assert index.embedder.backend in ("onnx", "torch")
    note = docs / "lighthouse.txt"
    note.write_text(LIGHTHOUSE, encoding="utf-8")
    with pytest.raises(IndexMismatch, match="not recorded \\(fp32\\)"):
        Index.open(location, IndexSettings(embedder="onnx-int8")).add([note], quiet=True)
    index.add([note], quiet=True)                  # fp32 adds, and the record is written
    assert Index.open(location).manifest["embedder"] == index.embedder.backend


def test_a_copy_keeps_the_record_and_refuses_to_mix_families(tmp_path, docs, embedder, capsys):
    int8, fp32 = str(tmp_path / "int8"), str(tmp_path / "fp32")
    assert cli(capsys, "build", str(docs), "--index", int8, "--embedder", "onnx-int8", "--quiet")[0] == 0
    Index.open(fp32, create=True, embedder=embedder).build(docs, quiet=True)
    code, _, err = cli(capsys, "copy", int8, str(tmp_path / "copy"))
    assert code == 0, err
    assert Index.open(tmp_path / "copy").embedder.backend == "onnx-int8"
    code, _, err = cli(capsys, "copy", int8, fp32)
    assert code == 2 and "one family" in err and "onnx-int8 (int8)" in err


def test_evaluation_keeps_one_index_cache_per_family(tmp_path, embedder):
    from index.embedder_record import family
    from index.embedding import shared_embedder
    from qa.eval.run import default_index_cache, sync_index

    documents = {"lighthouse.txt": LIGHTHOUSE}
    for chosen in (embedder, shared_embedder(backend="onnx-int8"), embedder):
        cache = default_index_cache(documents, "lighthouse", tmp_path, embedder=chosen)
        index = sync_index(cache, documents, embedder=chosen, progress=False)
        assert family(index.manifest["embedder"]) == family(chosen.backend)
        index.close()
