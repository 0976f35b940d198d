"""Shared fixtures: the real embedding model (loaded once) and small real corpora."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SEEDS = REPO_ROOT / "seeds"
SEED_FILE = SEEDS / "000_ffecf142e84792ea.txt"


@pytest.fixture(scope="session")
def embedder():
    """The bundled all-MiniLM-L6-v2, loaded once per test session."""
    from index.embedding import shared_embedder

    return shared_embedder()


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory, embedder):
    """An index over a copy of seeds/, shared by tests that only read it."""
    from index import Index

    root = tmp_path_factory.mktemp("seed-index")
    docs = root / "docs"
    shutil.copytree(SEEDS, docs)
    index = Index.open(root / "index", create=True, embedder=embedder)
    index.build(docs, quiet=True)
    return index


@pytest.fixture(scope="session")
def seed_engine(seed_index):
    """The engine over the seed index with the rule-based reader."""
    from qa import Engine, QASettings

    return Engine(seed_index, QASettings(reader="sentence"))
