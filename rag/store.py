"""Chroma: the vectors of the chunks, with each chunk's source file and paragraph number.

Embedded (the default), Chroma keeps no text: a chunk's text and metadata, and the whole text
of a paragraph split into several chunks, are stored once in the published chunk store
(``rag.chunk_store``), which is built from the same chunks at each ingest. Source and paragraph
stay in Chroma for source filters, the ingest's diff and ``rag status``.

With a Chroma server (``RAG_CHROMA_URL``) the server is the one source of truth for several
app processes: each chunk's text (``documents``) and all its metadata are stored there too, and
each process derives its chunk index from them (``rag.replicas``).
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import logging
import shutil
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from rag.embedding import index_model_name
from rag.errors import (
    ChromaServerUnreachableError,
    DiskFullError,
    EmbeddingModelMismatchError,
    IndexBusyError,
    IndexDamagedError,
    IndexFormatError,
    IndexLocationError,
    IndexNotFoundError,
    RagError,
)
from rag.settings import Settings
from rag.types import Chunk

logger = logging.getLogger(__name__)

_CLIENTS: dict[str, Any] = {}
_CLIENTS_LOCK = threading.RLock()  # chroma_errors may drop a client while one is made


def get_chroma_client(settings: Settings) -> Any:
    """An ``HttpClient`` when a Chroma server is configured, else a ``PersistentClient``.

    Clients are cached per location: Chroma keeps one system per path in a process.
    """
    import chromadb
    from chromadb.config import Settings as ChromaConfig

    config = ChromaConfig(anonymized_telemetry=False, allow_reset=False)
    url = settings.chroma_server
    key = _client_key(settings)
    with _CLIENTS_LOCK:
        if key in _CLIENTS:
            return _CLIENTS[key]
        if url:
            parsed = urlparse(url)
            if not parsed.hostname:
                raise RagError(f"chroma url {url!r} is not a URL like http://127.0.0.1:8001")
            with chroma_errors(settings):
                client = chromadb.HttpClient(
                    host=parsed.hostname,
                    port=parsed.port or (443 if parsed.scheme == "https" else 8000),
                    ssl=parsed.scheme == "https",
                    settings=config,
                )
        else:
            check_index_dir(settings.index_dir)
            try:
                settings.index_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise IndexLocationError(
                    f"cannot create the index folder {settings.index_dir} ({exc.strerror}): "
                    "pass --db (or set RAG_DB_DIR to) a folder that can be created"
                ) from exc
            try:
                with chroma_errors(settings):
                    client = chromadb.PersistentClient(
                        path=str(settings.index_dir), settings=config
                    )
            except RagError:
                # Chroma caches the half-started system of a path it failed to open, and
                # the next client there would fail with an AttributeError instead.
                _forget_chroma_systems()
                raise
        _CLIENTS[key] = client
        return client


def _client_key(settings: Settings) -> str:
    url = settings.chroma_server
    return f"url:{url}" if url else f"path:{settings.index_dir.resolve()}"


def check_index_dir(path: Path) -> None:
    """Raise ``IndexLocationError`` if the index folder is a file (a mistyped ``--db``)."""
    if path.exists() and not path.is_dir():
        raise IndexLocationError(
            f"the index folder {path} is a file, not a folder: pass --db (or set RAG_DB_DIR "
            "to) a folder, or move the file away"
        )


def damaged_message(where: str, reason: str) -> str:
    """The one line for an index whose files are truncated, zeroed or missing."""
    return (
        f"the index in {where} is damaged ({reason}); rebuild it with `rag ingest --reset` "
        "(everything is embedded again)"
    )


def vectors_missing_error(settings: Settings) -> IndexDamagedError:
    """A published keyword index whose Chroma collection is gone: damaged, never answered from
    half an index (the retriever and ``rag status`` both say so)."""
    return IndexDamagedError(
        damaged_message(
            settings.chroma_server or str(settings.index_dir),
            "the keyword index is there but Chroma holds no collection",
        )
    )


def disk_full_error(where: str, reason: str) -> DiskFullError:
    """The one line for a write that found no space left on the index's disk."""
    return DiskFullError(
        f"the disk holding the index in {where} is full ({reason}): free space there and try "
        "again; the last complete index is kept"
    )


#: what a write that found no space raises: OSError errno, SQLite's message, Rust's io error
_NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_NO_SPACE_TEXTS = ("disk is full", "no space left on device", "os error 28", "disk quota exceeded")


def no_space(exc: BaseException) -> bool:
    """Whether an error (or one it was raised from) says the disk is full."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _NO_SPACE_ERRNOS:
            return True
        if any(text in str(seen).lower() for text in _NO_SPACE_TEXTS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


#: below this much free space a Chroma write error is put down to the full disk: Chroma's
#: compaction reports a failed write without its cause ("Error purging logs")
LOW_SPACE_BYTES = 1 << 20


def free_bytes(folder: Path) -> int | None:
    """Free space on the disk that holds (or would hold) ``folder``; None if unknown."""
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _nearly_full(folder: Path) -> bool:
    free = free_bytes(folder)
    return free is not None and free < LOW_SPACE_BYTES


#: bytes an ingest reserves per chunk it adds to a local Chroma: twice the 2.2-3.0 KB that
#: chromadb 1.5.9 was measured to keep per 384-dimension chunk (bench/RESULTS.md section 14)
CHUNK_BYTES = 6 << 10


def check_space(folder: Path, need: int = 0) -> None:
    """Raise ``DiskFullError`` before an ingest writes anything when the disk that holds
    ``folder`` has less than ``need`` bytes (plus a margin) free. A write that runs out of
    space half way can leave Chroma's HNSW files unreadable, so it is not started."""
    free = free_bytes(folder)
    if free is not None and free < need + LOW_SPACE_BYTES:
        about = f", the ingest needs about {(need + LOW_SPACE_BYTES) >> 20} MiB" if need else ""
        raise disk_full_error(str(folder), f"{free >> 10} KiB free{about}")


def _unreachable(exc: BaseException) -> bool:
    """Whether a Chroma client error means the server did not answer at all."""
    import httpx

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, httpx.TransportError) or "Could not connect to a Chroma" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@contextmanager
def chroma_errors(settings: Settings) -> Iterator[None]:
    """Turn what Chroma raises into the error that names its cause.

    An unreachable server, a locked database and damaged files each get their own
    ``RagError``; a collection that does not exist is left to the caller (``NotFoundError``),
    and anything else (a bug of ours) propagates unchanged.
    """
    from chromadb.errors import ChromaError, InvalidArgumentError, NotFoundError

    try:
        yield
    except RagError:
        raise
    except Exception as exc:
        url = settings.chroma_server
        if url and _unreachable(exc):
            raise ChromaServerUnreachableError(
                f"cannot reach the Chroma server at {url} (RAG_CHROMA_URL): start it, or "
                "correct RAG_CHROMA_URL (unset it to use the local index folder)"
            ) from exc
        full = no_space(exc)
        if not full and (
            isinstance(exc, NotFoundError | InvalidArgumentError)
            or not isinstance(exc, ChromaError | sqlite3.Error)
        ):
            raise
        if full or (not url and _nearly_full(settings.index_dir)):
            if not url:
                # Chroma's in-process system can hang on its next write after a failed one:
                # the next use of this index opens a fresh one
                forget_client(settings)
            raise disk_full_error(url or str(settings.index_dir), _reason(exc)) from exc
        reason = _reason(exc)
        if "database is locked" in reason:
            raise IndexBusyError(
                f"the index in {url or settings.index_dir} is locked by another process "
                f"({reason}); try again when it finishes"
            ) from exc
        if url:
            raise RagError(f"the Chroma server at {url} failed: {reason}") from exc
        raise IndexDamagedError(damaged_message(str(settings.index_dir), reason)) from exc


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


def forget_client(settings: Settings) -> None:
    """Drop the cached client of this index (and Chroma's systems), so the next use opens a
    fresh one; clients already handed out keep theirs."""
    with _CLIENTS_LOCK:
        _CLIENTS.pop(_client_key(settings), None)
    _forget_chroma_systems()


def close_clients(under: Path | None = None) -> int:
    """Close the cached clients of local indexes (every one, or those of index folders under
    ``under``), which releases their files (SQLite connections, HNSW segments); the next use of
    such an index opens a fresh client. Clients and collections already handed out for them stop
    working, so only a caller that knows nothing uses them any more calls this (the test suite,
    after each test, for the indexes in its temporary folder). Returns how many were closed."""
    root = under.resolve() if under is not None else None
    with _CLIENTS_LOCK:
        keys = [
            key
            for key in _CLIENTS
            if key.startswith("path:")
            and (root is None or Path(key.removeprefix("path:")).is_relative_to(root))
        ]
        clients = [_CLIENTS.pop(key) for key in keys]
    for client in clients:
        try:
            client.close()
        except Exception as exc:  # noqa: BLE001 - a client that cannot close is dropped anyway
            logger.debug("closing a Chroma client failed: %s", exc)
    return len(clients)


def _forget_chroma_systems() -> None:
    """Drop Chroma's per-path systems cache (clients already made keep theirs)."""
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()


def _wipe_chroma_files(folder: Path) -> None:
    """Remove Chroma's own files from its folder (its database and one folder per segment,
    named by UUID); anything else a user keeps there is left alone."""
    for path in folder.iterdir():
        if path.name.startswith("chroma.sqlite3"):
            path.unlink()
        elif path.is_dir():
            try:
                uuid.UUID(path.name)
            except ValueError:
                continue
            shutil.rmtree(path)


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as read back from Chroma."""

    id: str
    text: str
    metadata: dict[str, Any]


#: Layout of the stored chunks; an index without it (or with an older one) must be rebuilt.
SCHEMA = 3
#: The chunk fields embedded Chroma keeps (the rest lives in the published chunk index).
CHROMA_FIELDS = ("source", "paragraph")
#: Collection metadata key of a server collection that holds the chunk texts and metadata.
TEXTS_KEY = "texts"


def chunk_metadata(chunk: Chunk) -> dict[str, Any]:
    """Every field of the chunk except its id and texts (None values dropped)."""
    return {
        k: v
        for k, v in dataclasses.asdict(chunk).items()
        if k not in {"id", "text", "paragraph_text"} and v is not None
    }


def _chroma_fields(chunk: Chunk) -> dict[str, Any]:
    return {k: getattr(chunk, k) for k in CHROMA_FIELDS}


def server_metadata(chunk: Chunk) -> dict[str, Any]:
    """What a Chroma server keeps of a chunk besides its text: every field, and the whole
    paragraph's text on the first chunk of a paragraph split into several."""
    meta = chunk_metadata(chunk)
    if chunk.n_chunks > 1 and chunk.chunk_index == 0:
        meta["paragraph_text"] = chunk.paragraph_text
    return meta


def old_format_message(where: str) -> str:
    return (
        f"the index in {where} was built by an older version of groundedchat (another storage "
        "layout); run `rag ingest --reset` to rebuild it in the current layout (everything is "
        "embedded again)"
    )


class ChromaStore:
    """A Chroma collection of chunks, cosine space, embeddings always passed explicitly.

    The collection metadata records the embedding model, so a model change is detected.

    Example:
        >>> store = ChromaStore(settings=Settings())
        >>> store.count()
    """

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        client: Any = None,
        embedding_model: str | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self._client = client
        self.name = self.settings.chroma.collection
        self.embedding_model = embedding_model or index_model_name(self.settings.embedding)

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = get_chroma_client(self.settings)
        return self._client

    def _folder_missing(self) -> bool:
        return (
            not self.settings.chroma_server
            and not (self.settings.index_dir / "chroma.sqlite3").exists()
        )

    def _get(self) -> Any:
        """The collection, or None if there is none; raises when the index cannot be read at
        all (a file as the folder, a server that does not answer, damaged files)."""
        from chromadb.errors import NotFoundError

        if not self.settings.chroma_server:
            check_index_dir(self.settings.index_dir)
        if self._client is None and self._folder_missing():
            return None
        self.check_files()
        try:
            with chroma_errors(self.settings):
                return self.client.get_collection(self.name, embedding_function=None)
        except NotFoundError:
            return None

    def exists(self) -> bool:
        return self._get() is not None

    def check_files(self) -> None:
        """Refuse a local index whose vector (HNSW) files differ from what the last ingest
        recorded, before Chroma reads them: Chroma itself would crash or rank from damaged
        vectors (``rag.chroma_files``)."""
        if not self.settings.chroma_server:
            from rag.chroma_files import check

            check(self.settings)

    def collection(self, *, create: bool = False, embedding_model: str | None = None) -> Any:
        """The collection; with ``create`` it is made if missing. Checks the embedding model."""
        if create:
            self.check_files()
            with chroma_errors(self.settings):
                col = self.client.get_or_create_collection(
                    self.name,
                    embedding_function=None,
                    configuration={"hnsw": {"space": "cosine", **self.settings.chroma.hnsw()}},
                    metadata={
                        "embedding_model": embedding_model or self.embedding_model,
                        "schema": SCHEMA,
                        **({TEXTS_KEY: 1} if self.settings.chroma_server else {}),
                    },
                )
        else:
            col = self._get()
            if col is None:
                raise IndexNotFoundError(
                    "nothing is indexed yet: run `rag ingest` first"
                    + (
                        f" (index folder {self.settings.index_dir})"
                        if not self.settings.chroma_server
                        else ""
                    )
                )
        meta = col.metadata or {}
        # a server collection written before it kept the texts: other processes cannot read it
        if meta.get("schema") != SCHEMA or (
            self.settings.chroma_server and meta.get(TEXTS_KEY) != 1
        ):
            raise IndexFormatError(
                old_format_message(self.settings.chroma_server or str(self.settings.index_dir))
            )
        want = embedding_model or self.embedding_model
        have = meta.get("embedding_model")
        if have and have != want:
            raise EmbeddingModelMismatchError(
                f"the index was built with embedding model {have!r} but {want!r} is configured; "
                "run `rag ingest --reset` to rebuild it"
            )
        return col

    def reset(self) -> None:
        """Delete the collection (``rag ingest --reset``); a damaged local index is removed
        file by file, since Chroma cannot open it to delete it."""
        try:
            if self.exists():
                with chroma_errors(self.settings):
                    self.client.delete_collection(self.name)
        except IndexDamagedError:
            if self.settings.chroma_server:
                raise
            logger.warning("removing the damaged index in %s", self.settings.index_dir)
            forget_client(self.settings)
            self._client = None
            _wipe_chroma_files(self.settings.index_dir)

    def count(self) -> int:
        col = self.collection()
        with chroma_errors(self.settings):
            return int(col.count())

    def existing(self) -> dict[str, dict[str, Any]]:
        """id -> metadata of every stored chunk."""
        col = self.collection(create=True)
        out: dict[str, dict[str, Any]] = {}
        batch = 5000
        with chroma_errors(self.settings):
            total = col.count()
            for offset in range(0, total, batch):
                got = col.get(include=["metadatas"], limit=batch, offset=offset)
                for cid, meta in zip(got["ids"], got["metadatas"] or [], strict=False):
                    out[cid] = dict(meta or {})
        return out

    def add(self, chunks: list[Chunk], embeddings: list[list[float]]) -> None:
        if not chunks:
            return
        col = self.collection(create=True)
        server = bool(self.settings.chroma_server)
        with chroma_errors(self.settings):
            col.upsert(
                ids=[c.id for c in chunks],
                embeddings=embeddings,
                metadatas=[server_metadata(c) if server else _chroma_fields(c) for c in chunks],
                documents=[c.text for c in chunks] if server else None,
            )

    def delete(self, ids: list[str]) -> None:
        col = self.collection(create=True)
        with chroma_errors(self.settings):
            for i in range(0, len(ids), 5000):
                col.delete(ids=ids[i : i + 5000])

    def query(
        self, embedding: list[float], n: int, sources: list[str] | None = None
    ) -> list[tuple[StoredChunk, float]]:
        """Nearest chunks with their cosine similarity; each chunk carries its id and
        ``CHROMA_FIELDS`` only. (Searches use ``query_ids``.)"""
        return self._query(embedding, n, sources, None, None, ["metadatas", "distances"])

    def query_ids(
        self,
        embedding: list[float],
        n: int,
        sources: list[str] | None = None,
        *,
        col: Any = None,
        total: int | None = None,
    ) -> list[tuple[str, float]]:
        """Ids of the nearest chunks with their cosine similarity: no SQLite read per hit
        (a search takes each hit's metadata from the chunk index)."""
        return [
            (hit.id, sim)
            for hit, sim in self._query(embedding, n, sources, col, total, ["distances"])
        ]

    def _query(
        self,
        embedding: list[float],
        n: int,
        sources: list[str] | None,
        col: Any,
        total: int | None,
        include: list[str],
    ) -> list[tuple[StoredChunk, float]]:
        from chromadb.errors import NotFoundError

        col = col if col is not None else self.collection()
        try:
            with chroma_errors(self.settings):
                total = total if total is not None else col.count()
                if total == 0:
                    return []
                res = col.query(
                    query_embeddings=[embedding],
                    n_results=min(n, total),
                    where=_source_filter(sources),
                    include=include,
                )
        except NotFoundError as exc:  # deleted since the handle was taken
            raise IndexNotFoundError(f"the collection {self.name!r} is gone") from exc
        ids = res["ids"][0]
        metas = (res.get("metadatas") or [[{}] * len(ids)])[0]
        dists = (res["distances"] or [[]])[0]
        return [
            (StoredChunk(cid, "", dict(meta or {})), 1.0 - float(dist))
            for cid, meta, dist in zip(ids, metas, dists, strict=True)
        ]

    def set_fingerprint(self, ids: list[str]) -> str:
        """Record the digest of the stored chunk ids; returns the fingerprint."""
        col = self.collection(create=True)
        digest = ids_digest(ids)
        meta = dict(col.metadata or {})
        meta["fingerprint"] = digest
        meta.pop("hnsw:space", None)
        with chroma_errors(self.settings):
            col.modify(metadata=meta)
        return f"{digest}:{len(ids)}"


def ids_digest(ids: Sequence[str]) -> str:
    """The digest of a set of chunk ids that ``set_fingerprint`` records."""
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:16]


def _source_filter(sources: Sequence[str] | None) -> dict[str, Any] | None:
    if not sources:
        return None
    srcs = list(sources)
    return {"source": {"$in": srcs}} if len(srcs) > 1 else {"source": srcs[0]}
