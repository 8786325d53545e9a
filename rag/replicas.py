"""Several app processes over one Chroma server: the ingest lock kept in Chroma, and each
process's keyword index derived from the collection.

With ``RAG_CHROMA_URL`` nothing local must agree between processes or machines:

* An ingest (from any process, or ``rag ingest`` on an operator's machine) holds a lock record
  in Chroma, a collection named ``<collection>-ingest-lock``. Creating a collection is atomic on
  the server, so one writer wins; the holder renews it while it runs, and a lock not renewed for
  ``chroma.lock_stale_s`` (a crashed ingest) is broken by the next writer. The ingest stores the
  chunk texts and metadata with the vectors and records the fingerprint of the chunk ids in the
  collection's metadata last (``ChromaStore.set_fingerprint``).
* Every app process checks that fingerprint every ``chroma.sync_s`` seconds on a background
  thread (one small HTTP call). When it differs from its keyword index's, the process reads
  the texts and metadata back from Chroma in pages, builds BM25 and publishes it in its own data
  folder (``rag.chunk_store.publish``); the next search uses it. A read whose ids do not match the
  recorded fingerprint (an ingest still running) is dropped: searches keep the last complete
  index, and the next check tries again.

Chroma's own keyword search does not replace BM25 here: a single-node server offers
``where_document`` substring filters (no ranking) and no sparse ``search`` (Chroma Cloud only).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

from filelock import FileLock, Timeout

from rag.chunk_store import ChunkStore, chunk_store_dir, publish, read_manifest
from rag.errors import IndexNotFoundError, RagError
from rag.settings import Settings
from rag.store import ChromaStore, chroma_errors, get_chroma_client, ids_digest

logger = logging.getLogger(__name__)

_PAGE = 5000


# -- the ingest lock -------------------------------------------------------------------------


class ChromaLock:
    """The writer lock of a server collection, kept on the server (``FileLock``'s interface:
    ``acquire(timeout=)``, ``release()``, ``lock_file`` naming it in messages)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.name = f"{settings.chroma.collection}-ingest-lock"
        self.lock_file = f"{settings.chroma_server} collection {self.name!r}"
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop: threading.Event | None = None

    @property
    def _client(self) -> Any:
        return get_chroma_client(self.settings)

    def holder(self) -> dict[str, Any] | None:
        """The lock record (owner, renewed: epoch seconds), or None when no one holds it."""
        from chromadb.errors import NotFoundError

        try:
            with chroma_errors(self.settings):
                col = self._client.get_collection(self.name, embedding_function=None)
                return dict(col.metadata or {})
        except NotFoundError:
            return None

    def held_elsewhere(self) -> bool:
        """Whether another writer holds the lock now (a stale record does not count)."""
        held = self.holder()
        return held is not None and not self._stale(held) and held.get("owner") != self.owner

    def _stale(self, held: dict[str, Any]) -> bool:
        return time.time() - float(held.get("renewed", 0)) > self.settings.chroma.lock_stale_s

    def _try(self) -> bool:
        from chromadb.errors import ChromaError

        with chroma_errors(self.settings):
            try:
                self._client.create_collection(
                    self.name,
                    embedding_function=None,
                    metadata={"owner": self.owner, "renewed": time.time()},
                )
                return True
            except ChromaError as exc:
                if "already exists" not in str(exc):
                    raise
        return False

    def _break_if_stale(self) -> bool:
        from chromadb.errors import NotFoundError

        held = self.holder()
        if held is None:
            return True
        if not self._stale(held):
            return False
        logger.warning("breaking the ingest lock %s left by %s", self.name, held.get("owner"))
        try:
            with chroma_errors(self.settings):
                self._client.delete_collection(self.name)
        except NotFoundError:
            pass
        return True

    def acquire(self, timeout: float = -1) -> None:
        """Take the lock, waiting up to ``timeout`` seconds (forever if negative); raises
        ``filelock.Timeout`` when it is still held by then."""
        deadline = time.monotonic() + timeout
        while not self._try():
            if self._break_if_stale():
                continue
            if 0 <= timeout and time.monotonic() >= deadline:
                raise Timeout(self.lock_file)
            time.sleep(0.2)
        self._stop = threading.Event()
        threading.Thread(
            target=self._renew, args=(self._stop,), daemon=True, name="rag-ingest-lock"
        ).start()

    def _renew(self, stop: threading.Event) -> None:
        while not stop.wait(self.settings.chroma.lock_stale_s / 4):
            try:
                with chroma_errors(self.settings):
                    self._client.get_collection(self.name, embedding_function=None).modify(
                        metadata={"owner": self.owner, "renewed": time.time()}
                    )
            except Exception as exc:  # the next renewal tries again
                logger.warning("could not renew the ingest lock %s: %s", self.name, exc)

    def release(self) -> None:
        from chromadb.errors import NotFoundError

        if self._stop is not None:
            self._stop.set()
            self._stop = None
        if (self.holder() or {}).get("owner") == self.owner:
            try:
                with chroma_errors(self.settings):
                    self._client.delete_collection(self.name)
            except NotFoundError:
                pass


# -- the keyword index, derived from the collection ------------------------------------------


def read_index(store: ChromaStore, col: Any) -> ChunkStore | None:
    """The chunk index as the server collection holds it, or None when its chunk ids do not
    match the recorded fingerprint (an ingest is running, or one was interrupted)."""
    want = (col.metadata or {}).get("fingerprint")
    if not want:
        return None
    rows: list[tuple[str, str, dict[str, Any]]] = []
    with chroma_errors(store.settings):
        total = col.count()
        for offset in range(0, total, _PAGE):
            got = col.get(include=["documents", "metadatas"], limit=_PAGE, offset=offset)
            rows += zip(got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True)
    if ids_digest([r[0] for r in rows]) != want:
        return None
    metas = [dict(m) for _, _, m in rows]
    paragraph_texts = [str(m.pop("paragraph_text", "")) for m in metas]
    ids, texts, metas, paragraph_texts = in_order(
        [r[0] for r in rows], [r[1] or "" for r in rows], metas, paragraph_texts
    )
    return ChunkStore.build(
        ids, texts, metas, f"{want}:{len(ids)}", paragraph_texts=paragraph_texts
    )


def in_order(
    ids: list[str], texts: list[str], metas: list[dict[str, Any]], paragraph_texts: list[str]
) -> tuple[list[str], list[str], list[dict[str, Any]], list[str]]:
    """The chunk rows sorted by source, paragraph and chunk: the one row order of every
    process's keyword index, so equal BM25 scores rank alike everywhere."""
    order = sorted(
        range(len(ids)),
        key=lambda i: (
            str(metas[i].get("source")),
            int(metas[i].get("paragraph", 0)),
            int(metas[i].get("chunk_index", 0)),
            ids[i],
        ),
    )
    return (
        [ids[i] for i in order],
        [texts[i] for i in order],
        [metas[i] for i in order],
        [paragraph_texts[i] for i in order],
    )


def manifest_info(store: ChromaStore, col: Any) -> dict[str, Any]:
    """What a keyword index published from a server collection records about its origin."""
    return {"embedding_model": store.embedding_model, "collection_id": str(col.id)}


class KeywordSync:
    """Keeps this process's keyword index in line with the server collection."""

    def __init__(self, settings: Settings, store: ChromaStore | None = None) -> None:
        self.settings = settings
        self.store = store or ChromaStore(settings=settings)
        self.root = chunk_store_dir(settings)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._last_error = ""

    def refresh(self) -> bool:
        """Rebuild the keyword index from Chroma if the collection changed since it was built.

        Returns True when the local index now matches the collection (or nothing is indexed),
        False when an ingest is still running (the next call tries again).
        """
        with self._lock:
            try:
                col = self.store.collection()
            except IndexNotFoundError:
                return True  # nothing indexed (or a reset under way): the reader says so
            want = (col.metadata or {}).get("fingerprint")
            have = read_manifest(self.root) or {}
            if want is None or (
                str(have.get("fingerprint", "")).split(":")[0] == want
                and have.get("collection_id") == str(col.id)
            ):
                return want is not None
            t0 = time.perf_counter()
            index = read_index(self.store, col)
            if index is None:
                logger.info("the collection is being written; keeping the last keyword index")
                return False
            self.root.mkdir(parents=True, exist_ok=True)
            with FileLock(str(self.root / ".sync.lock")):  # processes sharing a data folder
                publish(index, self.root, info=manifest_info(self.store, col))
            logger.info(
                "keyword index rebuilt from Chroma: %d chunks in %.2f s",
                index.count,
                time.perf_counter() - t0,
            )
            return True

    def start(self) -> None:
        """Check every ``chroma.sync_s`` seconds on a daemon thread (once per process)."""
        with _SYNCS_LOCK:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True, name="rag-sync")
                self._thread.start()

    def _loop(self) -> None:
        while True:
            time.sleep(self.settings.chroma.sync_s)
            try:
                self.refresh()
                self._last_error = ""
            except RagError as exc:  # a server restart: say so once, keep the last index
                if str(exc) != self._last_error:
                    logger.warning("keyword index sync: %s", exc)
                self._last_error = str(exc)
            except Exception:
                logger.exception("keyword index sync failed")


_SYNCS: dict[tuple[str, str, str], KeywordSync] = {}
_SYNCS_LOCK = threading.Lock()


def get_sync(settings: Settings, store: ChromaStore | None = None) -> KeywordSync:
    """The one ``KeywordSync`` of this process for this server collection and data folder
    (``store``: the one to read it through, when the first call makes it)."""
    key = (
        str(settings.chroma_server),
        settings.chroma.collection,
        str(chunk_store_dir(settings).resolve()),
    )
    with _SYNCS_LOCK:
        if key not in _SYNCS:
            _SYNCS[key] = KeywordSync(settings, store)
        return _SYNCS[key]
