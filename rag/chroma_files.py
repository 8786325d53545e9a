"""Checksums of Chroma's own vector files, so damaged ones are refused before Chroma reads them.

A local Chroma keeps each collection's HNSW graph in a segment folder beside
``chroma.sqlite3`` (``header.bin``, ``data_level0.bin``, ``length.bin``, ``link_lists.bin``,
``index_metadata.pickle``). Chroma does not check them: a damaged file gives a SIGSEGV inside
Chroma, or a dense ranking silently read from wrong vectors (bench/RESULTS.md section 14).

So each ingest records, in the published manifest (``CURRENT``), the vector segment's id, the
log position Chroma last wrote to those files (its ``max_seq_id``) and each file's
``[size, CRC-32]``; every open of the collection (``rag status``, ``ask``, ``search``,
``ingest``, the UI, the API) compares them before Chroma touches the files. Not compared:
a segment Chroma has not flushed yet (no ``max_seq_id``: it reads the vectors from its log, and
its placeholder files change at will); the files after ``max_seq_id`` moved since the publish;
and the files while an ingest writes or after one stopped half way (killed, disk full): an
ingest marks the index (``MARKER``) before its first write and clears the mark once it has
published, since a flush it started may have rewritten the files before Chroma recorded its
position. The next complete ingest records them again. Any other difference is damage.
A file is hashed once per process while its size, mtime and inode stay the same
(bench/RESULTS.md section 14 has the cost on a 100,000-chunk index).
"""

from __future__ import annotations

import sqlite3
import threading
import zlib
from pathlib import Path
from typing import Any

from rag.errors import IndexDamagedError
from rag.settings import Settings
from rag.store import damaged_message

#: the manifest key of the record
KEY = "chroma_files"

_VERIFIED: set[tuple[Any, ...]] = set()
_LOCK = threading.Lock()


def _folder(settings: Settings) -> str:
    return str(settings.index_dir.resolve())


def vector_segment(settings: Settings) -> tuple[str, int | str | None] | None:
    """(segment id, max_seq_id) of the collection's vector segment, read from Chroma's SQLite
    file without Chroma; None when there is none or the database cannot be read (Chroma's own
    open then says why)."""
    db = settings.index_dir / "chroma.sqlite3"
    if not db.is_file() or db.stat().st_size == 0:
        return None
    try:
        con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            row = con.execute(
                "SELECT s.id, m.seq_id FROM segments s JOIN collections c ON s.collection = c.id "
                "LEFT JOIN max_seq_id m ON m.segment_id = s.id "
                "WHERE c.name = ? AND s.scope = 'VECTOR'",
                (settings.chroma.collection,),
            ).fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return None
    if row is None:
        return None
    seq = row[1].hex() if isinstance(row[1], bytes) else row[1]
    return str(row[0]), seq


def checksum(path: Path) -> list[int]:
    """[size, CRC-32] of a file, read in 1 MiB blocks."""
    crc = 0
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            crc = zlib.crc32(block, crc)
    return [path.stat().st_size, crc]


def record(settings: Settings) -> dict[str, Any] | None:
    """What the manifest keeps of the vector files now (called by ingest, writer lock held);
    None with a Chroma server (its files are the server's)."""
    if settings.chroma_server:
        return None
    seg = vector_segment(settings)
    if seg is None:
        return None
    folder = settings.index_dir / seg[0]
    # Before its first flush (under ``sync_threshold``, 1,000 chunks) Chroma has no log
    # position for the segment: it reads the vectors from its log, and the files it may have
    # made are placeholders it rewrites at will; nothing to record then.
    files = (
        {p.name: checksum(p) for p in sorted(folder.iterdir()) if p.is_file()}
        if seg[1] is not None and folder.is_dir()
        else {}
    )
    return {"segment": seg[0], "seq_id": seg[1], "files": files}


#: in the chunk-index folder from an ingest's first write to its publish: while it is there
#: (an ingest running, or one that stopped half way) Chroma's files may differ from the record
MARKER = ".writing"


def begin_writes(settings: Settings) -> None:
    """Called by ``rag.ingest`` (writer lock held) before it first writes to Chroma."""
    if not settings.chroma_server:
        from rag.chunk_store import chunk_store_dir as keyword_dir

        root = keyword_dir(settings)
        root.mkdir(parents=True, exist_ok=True)
        (root / MARKER).touch()


def end_writes(settings: Settings) -> None:
    """Called by ``rag.ingest`` once the index it wrote is published (or needed no publish)."""
    if not settings.chroma_server:
        from rag.chunk_store import chunk_store_dir as keyword_dir

        (keyword_dir(settings) / MARKER).unlink(missing_ok=True)


def check(settings: Settings) -> None:
    """Raise ``IndexDamagedError`` when a vector file of the published index differs from its
    record (size, checksum, missing). Cheap when nothing changed: a read of ``CURRENT``, one
    SQLite query and a ``stat`` per file."""
    if settings.chroma_server:
        return
    from rag.chunk_store import chunk_store_dir as keyword_dir
    from rag.chunk_store import read_manifest

    root = keyword_dir(settings)
    manifest = read_manifest(root)
    want = (manifest or {}).get(KEY)
    if not want or not want.get("files"):
        return  # nothing published, published before the files were recorded, or unflushed
    if (root / MARKER).exists():
        return  # an ingest is writing, or stopped half way: the next one records them again
    seg = vector_segment(settings)
    if seg is None or [seg[0], seg[1]] != [want.get("segment"), want.get("seq_id")]:
        return  # written since the publish: nothing to compare with
    folder = settings.index_dir / seg[0]
    stamps: list[tuple[str, int, int, int]] = []
    for name in sorted(want.get("files") or {}):
        try:
            st = (folder / name).stat()
        except OSError:
            stamps.append((name, -1, 0, 0))
            continue
        stamps.append((name, st.st_size, st.st_mtime_ns, st.st_ino))
    key = (_folder(settings), seg[0], seg[1], tuple(stamps))
    if key in _VERIFIED:
        return
    problem = _compare(folder, want["files"])
    if problem is None:
        with _LOCK:
            _VERIFIED.add(key)
        return
    raise IndexDamagedError(damaged_message(str(settings.index_dir), problem))


def _compare(folder: Path, files: dict[str, list[int]]) -> str | None:
    for name, (size, crc) in sorted(files.items()):
        path = folder / name
        if not path.is_file():
            return f"Chroma's vector file {folder.name}/{name} is missing"
        have = path.stat().st_size
        if have != size:
            return f"Chroma's vector file {name} has {have} bytes of {size}"
        if checksum(path) != [size, crc]:
            return f"Chroma's vector file {name} does not match its checksum"
    return None


def forget() -> None:
    """Drop the per-process record of verified files (tests)."""
    with _LOCK:
        _VERIFIED.clear()
