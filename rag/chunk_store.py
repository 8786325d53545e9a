"""The chunk store: each chunk's id, metadata and text, the whole text of a paragraph split into
several chunks, and the BM25 model over them, published as one version folder swapped atomically.

An ingest builds it from the chunks it just stored in Chroma and saves it as a new version
folder next to the Chroma folder, then points ``CURRENT`` at it with one atomic rename. A search
reads the version ``CURRENT`` names (re-loading only when that file changed), so a search during
an ingest uses the last complete version and nothing is ever rebuilt inside a search. ``CURRENT``
also records the chunk count and fingerprint of that ingest, so searches need not ask Chroma.

Chroma holds only the vectors (with each chunk's source and paragraph number, for filters and
the ingest diff); a chunk's metadata and text, and the whole text of a paragraph split into
several chunks, are stored here once, in memory-mapped files read per returned passage.
(With a Chroma server, the server keeps the texts and metadata too, and each process builds
this store from them: ``rag.replicas``.) Keyword scoring is ``rag.keyword``'s.
"""

from __future__ import annotations

import errno
import json
import mmap
import os
import shutil
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import IndexDamagedError, IndexFormatError, IndexNotFoundError
from rag.keyword import BM25
from rag.settings import Settings
from rag.store import SCHEMA, StoredChunk, damaged_message, old_format_message

CURRENT = "CURRENT"
_META = "chunks.json"
_CHUNK_TEXTS = "chunk_texts"
_PARAGRAPH_TEXTS = "paragraph_texts"


class TextColumn:
    """A column of strings, one per row: a list while building, then ``<name>.bin`` (UTF-8,
    concatenated) and ``<name>.offsets.npy``, memory-mapped so a search reads only its rows."""

    def __init__(self, values: Sequence[str] | None = None) -> None:
        self._values = list(values) if values is not None else None
        self._blob: mmap.mmap | bytes = b""
        self._offsets: np.ndarray = np.zeros(1, dtype=np.int64)

    def __getitem__(self, row: int) -> str:
        if self._values is not None:
            return self._values[row]
        a, b = int(self._offsets[row]), int(self._offsets[row + 1])
        return self._blob[a:b].decode("utf-8")

    def save(self, folder: Path, name: str) -> None:
        assert self._values is not None
        encoded = [v.encode("utf-8") for v in self._values]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        (folder / f"{name}.bin").write_bytes(b"".join(encoded))
        np.save(folder / f"{name}.offsets.npy", offsets)

    @classmethod
    def load(cls, folder: Path, name: str) -> TextColumn:
        col = cls()
        col._offsets = np.load(folder / f"{name}.offsets.npy")
        with (folder / f"{name}.bin").open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if col._offsets.ndim != 1 or not len(col._offsets) or col._offsets[-1] != size:
                raise ValueError(f"{name}.bin does not match its offsets")
            # the mapping stays valid after the file is closed, and after ``publish`` removes
            # the version folder (the pages live until the last reader drops them)
            col._blob = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        return col


@dataclass
class ChunkStore:
    """A loaded version: each row's chunk id, metadata and text, and the BM25 model over them."""

    ids: list[str]
    metadata: list[dict[str, Any]]
    bm25: BM25 | None = None  # None when no chunk has a term
    fingerprint: str = ""
    version: str = ""
    texts: TextColumn = field(default_factory=TextColumn, repr=False)
    paragraph_texts: TextColumn = field(default_factory=TextColumn, repr=False)
    _source_codes: np.ndarray | None = field(default=None, repr=False)
    _source_names: dict[str, int] = field(default_factory=dict, repr=False)
    _rows: dict[str, int] = field(default_factory=dict, repr=False)
    _first_rows: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def count(self) -> int:
        return len(self.ids)

    @classmethod
    def build(
        cls,
        ids: Sequence[str],
        texts: Sequence[str],
        metadata: Sequence[dict[str, Any]],
        fingerprint: str = "",
        paragraph_texts: Sequence[str] | None = None,
    ) -> ChunkStore:
        """Store chunks and index them for BM25 (``metadata[i]["section"]`` with ``texts[i]``).

        ``paragraph_texts[i]`` is the whole paragraph's text on the first chunk of a paragraph
        split into several (``n_chunks > 1``, ``chunk_index == 0``), else empty: a one-chunk
        paragraph's text is its chunk's.
        """
        bm25 = BM25.build(
            f"{t} {m['section']}" if m.get("section") else t
            for t, m in zip(texts, metadata, strict=True)
        )
        store = cls(
            list(ids),
            [dict(m) for m in metadata],
            bm25,
            fingerprint,
            texts=TextColumn(texts),
            paragraph_texts=TextColumn(paragraph_texts or [""] * len(ids)),
        )
        store._init_sources()
        return store

    def _init_sources(self) -> None:
        self._rows = {cid: i for i, cid in enumerate(self.ids)}
        self._first_rows = {
            str(m.get("paragraph_id")): i
            for i, m in enumerate(self.metadata)
            if int(m.get("n_chunks", 1)) > 1 and int(m.get("chunk_index", 0)) == 0
        }
        names: dict[str, int] = {}
        codes = np.fromiter(
            (names.setdefault(str(m.get("source", "")), len(names)) for m in self.metadata),
            dtype=np.int32,
            count=len(self.metadata),
        )
        self._source_codes, self._source_names = codes, names

    def row(self, chunk_id: str) -> int | None:
        """The row of a chunk id, or None if this version does not hold it."""
        return self._rows.get(chunk_id)

    def chunk(self, row: int, *, text: bool = False) -> StoredChunk:
        """The chunk at ``row`` (with its text if asked)."""
        return StoredChunk(self.ids[row], self.texts[row] if text else "", self.metadata[row])

    def paragraph_text(self, row: int) -> str | None:
        """The whole text of the paragraph the chunk at ``row`` belongs to (None if this
        version lacks the paragraph's first chunk)."""
        meta = self.metadata[row]
        if int(meta.get("n_chunks", 1)) <= 1:
            return self.texts[row]
        first = self._first_rows.get(str(meta.get("paragraph_id")))
        return None if first is None else self.paragraph_texts[first]

    def rows_of_sources(self, sources: Sequence[str]) -> list[int]:
        """The rows of every chunk of these source files."""
        wanted = [self._source_names[s] for s in sources if s in self._source_names]
        if not wanted or self._source_codes is None:
            return []
        return [int(i) for i in np.flatnonzero(np.isin(self._source_codes, wanted))]

    def distinctive_terms(self, text: str) -> set[str] | None:
        """Terms of ``text`` found in at most half of the chunks: the words that can tell one
        passage from another. Ubiquitous words (the corpus's own subject, e.g. a country name
        in an article about it) and unknown words are not distinctive. None when the store is
        too small (under 4 chunks) for the notion to mean anything."""
        if self.bm25 is None or self.count < 4:
            return None
        return self.bm25.distinctive_terms(text, self.count)

    def search(
        self, query: str, n: int, sources: Sequence[str] | None = None
    ) -> list[tuple[StoredChunk, float]]:
        """The best ``n`` chunks with a positive BM25 score (chunk text is not loaded)."""
        if self.bm25 is None or n < 1:
            return []
        mask = None
        if sources:
            wanted = [self._source_names[s] for s in sources if s in self._source_names]
            if not wanted:
                return []
            assert self._source_codes is not None
            mask = np.isin(self._source_codes, wanted).astype(np.float32)
        scores = self.bm25.scores(query, mask)
        if scores is None:
            return []
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
        ranked = sorted(top, key=lambda i: (-scores[i], i))
        return [
            (StoredChunk(self.ids[i], "", self.metadata[i]), float(scores[i]))
            for i in ranked
            if scores[i] > 0
        ]

    # -- persistence -------------------------------------------------------------------

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if self.bm25 is not None:
            self.bm25.save(folder)
        (folder / _META).write_text(
            json.dumps({"ids": self.ids, "metadata": self.metadata}), encoding="utf-8"
        )
        self.texts.save(folder, _CHUNK_TEXTS)
        self.paragraph_texts.save(folder, _PARAGRAPH_TEXTS)

    @classmethod
    def load(cls, folder: Path, *, fingerprint: str = "", version: str = "") -> ChunkStore:
        meta = json.loads((folder / _META).read_text(encoding="utf-8"))
        store = cls(
            meta["ids"],
            meta["metadata"],
            BM25.load(folder),
            fingerprint,
            version,
            texts=TextColumn.load(folder, _CHUNK_TEXTS),
            paragraph_texts=TextColumn.load(folder, _PARAGRAPH_TEXTS),
        )
        if not len(store.metadata) == len(store.texts._offsets) - 1 == store.count:
            raise ValueError(f"the files in {folder} disagree on the number of chunks")
        store._init_sources()
        return store


# -- where the index lives, publishing and reading the current version -----------------------


def chunk_store_dir(settings: Settings) -> Path:
    """The chunk store's folder of this index: ``<chroma folder>.bm25/<collection>`` (for a
    Chroma server, under the data folder)."""
    if settings.chroma_server:
        slug = "".join(ch if ch.isalnum() else "_" for ch in settings.chroma_server)
        base = settings.data_dir / f"chroma-server-{slug}.bm25"
    else:
        base = settings.index_dir.parent / f"{settings.index_dir.name}.bm25"
    return base / settings.chroma.collection


def publish(store: ChunkStore, root: Path, *, info: dict[str, Any] | None = None) -> str:
    """Save ``store`` as a new version and make it current with one atomic rename.

    Readers holding the previous version keep it; versions older than the previous one are
    removed. Returns the version name. Callers hold the index's writer lock.
    """
    root.mkdir(parents=True, exist_ok=True)
    version = f"v{time.time_ns()}"
    tmp = root / f".tmp-{version}-{os.getpid()}"
    cur_tmp = root / f".{CURRENT}.tmp{os.getpid()}"
    try:
        store.save(tmp)
        files = {p.name: _checksum(p) for p in sorted(tmp.iterdir())}
        tmp.rename(root / version)
        manifest = {
            "version": version,
            "fingerprint": store.fingerprint,
            "count": store.count,
            "schema": SCHEMA,
            "files": files,
            **(info or {}),
        }
        cur_tmp.write_text(json.dumps(manifest), encoding="utf-8")
        previous = read_manifest(root)
        os.replace(cur_tmp, root / CURRENT)
    except BaseException:
        # a full disk or a crash: the previous version stays current; free what was written
        for half in (tmp, root / version):
            shutil.rmtree(half, ignore_errors=True)
        cur_tmp.unlink(missing_ok=True)
        raise
    keep = {version, (previous or {}).get("version")}
    for old in root.iterdir():
        if old.name not in keep and (old.name.startswith("v") or old.name.startswith(".tmp-")):
            shutil.rmtree(old, ignore_errors=True)
    store.version = version
    return version


def _checksum(path: Path) -> list[int]:
    """[size, CRC-32] of a file: the texts are memory-mapped and read per passage, so a
    truncated or zeroed file would otherwise surface as wrong passages, not as an error."""
    crc = 0
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            crc = zlib.crc32(block, crc)
    return [path.stat().st_size, crc]


def _verify(folder: Path, files: dict[str, list[int]]) -> None:
    """Raise ``IndexDamagedError`` unless every file of a version is as it was published."""
    for name, want in files.items():
        path = folder / name
        if not path.exists():
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
        if path.stat().st_size != want[0]:
            raise IndexDamagedError(
                damaged_message(
                    str(folder.parent), f"{name} has {path.stat().st_size} bytes of {want[0]}"
                )
            )
        if _checksum(path) != list(want):
            raise IndexDamagedError(
                damaged_message(str(folder.parent), f"{name} does not match its checksum")
            )


def read_manifest(root: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads((root / CURRENT).read_text(encoding="utf-8")))
    except (FileNotFoundError, ValueError):
        return None


def remove(root: Path) -> None:
    """Drop the chunk store (``ingest --reset``)."""
    shutil.rmtree(root, ignore_errors=True)


_CACHE: dict[str, tuple[tuple[int, int, int], ChunkStore, dict[str, Any]]] = {}
_LOCK = threading.Lock()


def current(root: Path) -> tuple[ChunkStore, dict[str, Any]] | None:
    """The current published chunk store and its manifest, or None if none was published.

    Costs one ``stat`` when nothing changed; loads a version only when ``CURRENT`` moved.
    """
    key = str(root.resolve())
    try:
        st = os.stat(root / CURRENT)
    except FileNotFoundError:
        return None
    stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
    cached = _CACHE.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1], cached[2]
    with _LOCK:
        cached = _CACHE.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1], cached[2]
        for _attempt in range(3):  # a newer publish may remove a version while we load it
            manifest = read_manifest(root)
            if manifest is None:
                if (root / CURRENT).exists():
                    raise IndexDamagedError(damaged_message(str(root), f"{CURRENT} is unreadable"))
                return None
            if manifest.get("schema") != SCHEMA:
                raise IndexFormatError(old_format_message(str(root)))
            folder = root / str(manifest.get("version"))
            try:
                _verify(folder, manifest.get("files") or {})
                index = ChunkStore.load(
                    folder,
                    fingerprint=str(manifest.get("fingerprint", "")),
                    version=str(manifest["version"]),
                )
            except FileNotFoundError as exc:
                if read_manifest(root) == manifest:  # not replaced meanwhile: a file is gone
                    raise IndexDamagedError(
                        damaged_message(str(root), f"{Path(str(exc.filename)).name} is missing")
                    ) from exc
                st = os.stat(root / CURRENT)
                stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
                continue
            except (ValueError, KeyError, IndexError, EOFError, OSError) as exc:
                # unreadable JSON or arrays (truncated, zeroed) in a version without checksums
                raise IndexDamagedError(
                    damaged_message(str(root), f"{folder.name}: {type(exc).__name__}: {exc}"[:200])
                ) from exc
            if index.count != manifest.get("count", index.count):
                raise IndexDamagedError(
                    damaged_message(
                        str(root),
                        f"{folder.name} holds {index.count} chunks of {manifest.get('count')}",
                    )
                )
            _CACHE[key] = (stamp, index, manifest)
            return index, manifest
    raise IndexNotFoundError(f"the keyword index in {root} keeps changing; try again")


def get_chunk_store(store: Any) -> ChunkStore:
    """The current chunk store of a ``ChromaStore``'s index (never built here)."""
    got = current(chunk_store_dir(store.settings))
    if got is None:
        raise IndexNotFoundError(
            "the keyword index is missing: run `rag ingest` (it is built at ingest time)"
        )
    return got[0]
