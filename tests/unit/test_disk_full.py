"""What a full disk raises, without a real one (``tests/integration/test_faults_disk.py`` fills
a real small file system): each way a write reports no space is one ``DiskFullError`` line, and
a chunk index that could not be written leaves nothing behind."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from chromadb.errors import InternalError, NotFoundError

from rag import chroma_files, chunk_store
from rag.chunk_store import chunk_store_dir, read_manifest
from rag.errors import DiskFullError, IndexDamagedError
from rag.ingest import ingest
from rag.settings import Settings
from rag.store import check_space, chroma_errors, no_space
from tests.fakes import HashingEmbedder

FULL = r"^the disk holding the index in .+ is full \(.+\): free space there and try again; "


@pytest.mark.parametrize(
    "exc",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(errno.EDQUOT, "Disk quota exceeded"),
        InternalError(
            "Query error: error returned from database: (code: 13) database or disk is full"
        ),
        InternalError("Error writing segment: No space left on device (os error 28)"),
    ],
    ids=["ENOSPC", "EDQUOT", "sqlite", "rust io"],
)
def test_each_way_of_saying_no_space_is_a_full_disk(exc: Exception, tmp_path: Path) -> None:
    assert no_space(exc)
    with pytest.raises(DiskFullError, match=FULL):
        with chroma_errors(Settings(db_dir=tmp_path / "db")):
            raise exc


def test_other_chroma_errors_are_not_a_full_disk(tmp_path: Path) -> None:
    s = Settings(db_dir=tmp_path / "db")
    with pytest.raises(IndexDamagedError):
        with chroma_errors(s):
            raise InternalError("Error deserializing pickle file")
    with pytest.raises(NotFoundError):  # nothing indexed: left to the caller
        with chroma_errors(s):
            raise NotFoundError("Collection [x] does not exist")


def test_the_space_check_names_what_is_free_and_what_is_needed(tmp_path: Path) -> None:
    check_space(tmp_path / "not" / "yet" / "made")  # a folder to be made: its disk is checked
    with pytest.raises(DiskFullError, match=r"KiB free, the ingest needs about \d+ MiB\)"):
        check_space(tmp_path, need=1 << 60)


def test_a_chunk_index_that_cannot_be_written_leaves_the_last_one_current(
    tmp_settings: Settings, fake_embedder: HashingEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(tmp_settings, embedder=fake_embedder)
    root = chunk_store_dir(tmp_settings)
    before = read_manifest(root)
    (tmp_settings.corpus_dir / "new.md").write_text(
        "The Halvorsen Lighthouse Survey counted gulls."
    )
    save = chunk_store.ChunkStore.save

    def save_half(self: chunk_store.ChunkStore, folder: Path) -> None:
        save(self, folder)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(chunk_store.ChunkStore, "save", save_half)
    with pytest.raises(DiskFullError, match=FULL + "the last complete index is kept$"):
        ingest(tmp_settings, embedder=fake_embedder)
    assert read_manifest(root) == before
    # nothing half-written; the mark of an ingest that wrote to Chroma without publishing
    # stays until the next complete ingest (rag.chroma_files)
    assert sorted(p.name for p in root.iterdir()) == [
        chroma_files.MARKER,
        "CURRENT",
        before["version"],
    ]


def test_a_reset_without_room_keeps_the_old_index(
    tmp_settings: Settings, fake_embedder: HashingEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag.retrieval import HybridRetriever

    ingest(tmp_settings, embedder=fake_embedder)
    r = HybridRetriever(settings=tmp_settings, embedder=fake_embedder)
    before = [(p.source, p.paragraph) for p in r.search("Kathmandu Policy Forum")]
    monkeypatch.setattr("rag.store.LOW_SPACE_BYTES", 1 << 60)  # as if the disk were full
    with pytest.raises(DiskFullError, match=FULL):
        ingest(tmp_settings, reset=True, embedder=fake_embedder)
    monkeypatch.undo()
    r = HybridRetriever(settings=tmp_settings, embedder=fake_embedder)
    assert [(p.source, p.paragraph) for p in r.search("Kathmandu Policy Forum")] == before
