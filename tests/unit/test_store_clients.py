"""Cached Chroma clients are closed on request: their files are released and the next use of
the index opens a fresh client (the suite closes each test's clients; see conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

from rag.embedding import index_model_name
from rag.ingest import ingest
from rag.settings import Settings
from rag.store import _CLIENTS, ChromaStore, _client_key, close_clients
from tests.fakes import HashingEmbedder
from tests.unit.test_index_errors import SEED


def _index(base: Path) -> Settings:
    corpus = base / "corpus"
    corpus.mkdir(parents=True)
    (corpus / SEED.name).write_bytes(SEED.read_bytes())
    s = Settings(corpus_dir=corpus, db_dir=base / "db", data_dir=base / "data")
    ingest(s, embedder=HashingEmbedder(model_name=index_model_name(s.embedding)))
    return s


def _open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_close_clients_releases_the_files_and_the_index_opens_again(tmp_path: Path) -> None:
    kept = _index(tmp_path / "kept")
    closed = [_index(tmp_path / "closed" / str(i)) for i in range(3)]
    counts = [ChromaStore(settings=s).count() for s in (kept, *closed)]
    before = _open_files()

    assert close_clients(under=tmp_path / "closed") == 3
    assert _open_files() < before
    assert _client_key(kept) in _CLIENTS  # outside the folder: still open and cached
    assert all(_client_key(s) not in _CLIENTS for s in closed)
    # the next use opens a fresh client: same index, same answers
    assert [ChromaStore(settings=s).count() for s in (kept, *closed)] == counts
