"""A full disk under the index (issue 26): the ingest stops with one line naming the full disk,
nothing half-written is published, and the last complete index answers as before.

The index folder is a small tmpfs, then a small ext4 image on a loop device, mounted by the
test (we run as root, as CI does on this machine kind); a filler file takes the free space at
the moment each case needs, so the writes fail with a real ENOSPC. The fake embedder stands in
for the model.
"""

from __future__ import annotations

import functools
import os
import random
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag import chroma_files, chunk_store
from rag.chunk_store import chunk_store_dir, read_manifest
from rag.errors import DiskFullError
from rag.ingest import ingest
from rag.retrieval import HybridRetriever
from rag.settings import Settings
from rag.store import ChromaStore
from rag.uploads import add_documents
from rag_cli.app import app
from tests.fakes import clear_rag_env, copy_index, fake_embedder, use_fake_embedder
from ui.app import ChatController

pytestmark = [pytest.mark.integration, pytest.mark.faults]

DISK_MB = 32  # the 1,500-paragraph upload needs about 14 MiB
QUERY = "Kathmandu Policy Forum"
NEW_FACT = "The Halvorsen Lighthouse Survey counted 412 nesting gulls in 2021."
FULL = r"^the disk holding the index in .+ is full \(.+\): free space there and try again; "


@pytest.fixture(params=["tmpfs", "ext4 loop"])
def disk(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A DISK_MB file system mounted for this test only: a tmpfs, and an ext4 image on a loop
    device (another file system's way of running out of space)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root (CI runs these tests as root)")
    if request.param == "tmpfs":
        cmd = ["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(mnt)]
    else:
        image = tmp_path / "disk.img"
        with image.open("wb") as out:
            out.truncate(DISK_MB << 20)
        made = subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], capture_output=True, text=True)
        if made.returncode != 0:
            pytest.skip(f"cannot make an ext4 image here: {made.stderr.strip()}")
        cmd = ["mount", "-o", "loop", str(image), str(mnt)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a {request.param} here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        # lazily: Chroma's in-process system may still hold its files open
        subprocess.run(["umount", "-l", str(mnt)], check=False, capture_output=True)


def fill(disk: Path, leave: int = 0) -> Path:
    """Take all the free space of ``disk`` but ``leave`` bytes; returns the filler file."""
    filler = disk / "filler"
    with filler.open("ab", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 65536)
        except OSError:
            pass
        try:
            while True:
                out.write(b"\0" * 512)
        except OSError:
            pass
    if leave:
        os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


@functools.cache
def _big_text(paragraphs: int) -> str:
    rng = random.Random(26)
    words = [f"term{i}" for i in range(5000)]
    body = [" ".join(rng.choice(words) for _ in range(60)) + "." for _ in range(paragraphs)]
    return "\n\n".join([NEW_FACT, *body])


def big_document(path: Path, paragraphs: int = 1500) -> Path:
    """A document whose index takes a few MB (random words, so nothing compresses away; the
    same words in every test)."""
    path.write_text(_big_text(paragraphs))
    return path


@dataclass
class Index:
    settings: Settings
    manifest: dict
    hits: list[tuple[str, int, str]]
    upload: Path  # a new document, outside the corpus folder

    def search(self) -> list[tuple[str, int, str]]:
        r = HybridRetriever(settings=self.settings, embedder=fake_embedder())
        return [(p.source, p.paragraph, p.text) for p in r.search(QUERY, k=3)]

    def check_nothing_published(self) -> None:
        root = chunk_store_dir(self.settings)
        assert read_manifest(root) == self.manifest  # CURRENT still names the old files
        # the mark of an ingest that wrote to Chroma and did not publish may stay (Chroma's
        # files are then not checked against the published record until the next ingest)
        leftovers = [
            p.name
            for p in root.iterdir()
            if p.name.startswith(".") and p.name != chroma_files.MARKER
        ]
        assert leftovers == [], leftovers
        assert sorted(p.name for p in root.iterdir() if p.name.startswith("v")) == [
            self.manifest["version"]
        ]


@pytest.fixture
def index(
    disk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed_built: Settings
) -> Index:
    """A complete index of one document on the small disk (the corpus is elsewhere)."""
    clear_rag_env(monkeypatch)
    use_fake_embedder(monkeypatch)
    s = copy_index(seed_built, tmp_path, disk / "db")  # as seed_index would build it there
    idx = Index(s, {}, [], big_document(tmp_path / "upload" / "survey.md"))
    idx.manifest = read_manifest(chunk_store_dir(s)) or {}
    idx.hits = idx.search()
    assert idx.hits and idx.hits[0][:2] == ("bhutan-qatar.md", 3)
    return idx


def _after_space_is_freed(index: Index, filler: Path) -> None:
    """The last complete index answers as before (the vectors Chroma took before the disk
    filled up are not in it, so they are never shown); the next ingest adds the document."""
    filler.unlink()
    assert index.search() == index.hits
    report = ingest(index.settings, embedder=fake_embedder())
    assert report.documents == 2
    assert not (chunk_store_dir(index.settings) / chroma_files.MARKER).exists()
    r = HybridRetriever(settings=index.settings, embedder=fake_embedder())
    assert r.search("Halvorsen Lighthouse Survey", k=1)[0].text == NEW_FACT
    assert index.search()[0] == index.hits[0]


@pytest.fixture(autouse=True)
def _upload_dir(tmp_path: Path) -> None:
    (tmp_path / "upload").mkdir(exist_ok=True)


def test_cli_ingest_on_a_full_disk_stops_with_one_line(index: Index) -> None:
    shutil.copy(index.upload, index.settings.corpus_dir)
    filler = fill(index.settings.index_dir.parent)
    result = CliRunner().invoke(
        app,
        ["ingest", "--corpus", str(index.settings.corpus_dir), "--db", str(index.settings.db_dir)],
        env={"RAG_DATA_DIR": str(index.settings.data_dir)},
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert "Traceback" not in result.output
    assert re.search(FULL, lines[0].removeprefix("Error: ")), lines
    index.check_nothing_published()
    _after_space_is_freed(index, filler)


def test_upload_larger_than_the_free_space_is_refused_before_writing(index: Index) -> None:
    # 2 MiB free: room to start, not for 1,500 new vectors; nothing is written to Chroma
    filler = fill(index.settings.index_dir.parent, leave=2 << 20)
    with pytest.raises(DiskFullError, match=FULL + "the last complete index is kept$") as raised:
        add_documents([index.upload], index.settings, embedder=fake_embedder())
    assert re.search(r"\(\d+ KiB free, the ingest needs about \d+ MiB\)", str(raised.value))
    index.check_nothing_published()
    assert index.search() == index.hits  # while the disk is still full
    _after_space_is_freed(index, filler)


def test_full_disk_during_the_chroma_writes(index: Index, monkeypatch: pytest.MonkeyPatch) -> None:
    # another program fills the disk after the ingest's first batch of vectors
    add = ChromaStore.add
    fillers: list[Path] = []

    def add_then_fill(self: ChromaStore, *args: object) -> None:
        add(self, *args)  # type: ignore[arg-type]
        if not fillers:
            fillers.append(fill(index.settings.index_dir.parent))

    monkeypatch.setattr(ChromaStore, "add", add_then_fill)
    with pytest.raises(DiskFullError, match=FULL):
        add_documents([index.upload], index.settings, embedder=fake_embedder())
    index.check_nothing_published()
    monkeypatch.setattr(ChromaStore, "add", add)
    _after_space_is_freed(index, fillers[0])


def test_full_disk_while_publishing_the_keyword_index(
    index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Chroma's writes succeed; the disk fills up just before the keyword index is written
    publish = chunk_store.publish
    fillers: list[Path] = []

    def fill_then_publish(*args: object, **kwargs: object) -> str:
        fillers.append(fill(index.settings.index_dir.parent))
        return publish(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(chunk_store, "publish", fill_then_publish)
    with pytest.raises(DiskFullError, match=FULL) as raised:
        add_documents([index.upload], index.settings, embedder=fake_embedder())
    assert "No space left on device" in str(raised.value)
    index.check_nothing_published()
    monkeypatch.setattr(chunk_store, "publish", publish)
    _after_space_is_freed(index, fillers[0])


def test_ui_upload_on_a_full_disk_shows_the_cause(index: Index) -> None:
    filler = fill(index.settings.index_dir.parent, leave=2 << 20)
    message, status, _names = ChatController(index.settings).upload([str(index.upload)])
    assert re.search(r"the disk holding the index in .+ is full", message), message
    assert "free space there" in message and "Traceback" not in message
    assert "1 documents" in status or "bhutan-qatar.md" in status, status
    index.check_nothing_published()
    _after_space_is_freed(index, filler)
