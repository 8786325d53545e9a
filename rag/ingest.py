"""Idempotent, incremental ingestion of the corpus folder into Chroma.

Why our own diff instead of LangChain's ``index()`` + record manager: chunk ids are derived
from content, so Chroma itself is the record of what is indexed. Each run computes the ids the
corpus should have, compares them with the ids Chroma holds, embeds and adds only the missing
ones, then deletes the stale ones. There is no second store (a record-manager SQLite file) that
could drift from Chroma after a crash: a killed run is repaired by the next run, which keeps
every chunk the killed run had stored and embeds only the rest (``IngestReport.chunks_resumed``).

After Chroma is up to date, the chunk store (texts, metadata and BM25) is built from the same
chunks and published beside Chroma's folder (``rag.chunk_store.publish``); searches switch to
it atomically. With a Chroma server, the writer lock is kept on the server and every other
process derives its chunk store from the collection (``rag.replicas``).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from rag import chroma_files, chunk_store
from rag.chunking import TokenChunker
from rag.embedding import Embedder, get_embedder
from rag.errors import CorpusError, IndexBusyError
from rag.loading import load_corpus
from rag.paragraphs import split_paragraphs
from rag.replicas import ChromaLock, get_sync, in_order, manifest_info
from rag.settings import Settings
from rag.store import (
    CHUNK_BYTES,
    ChromaStore,
    check_space,
    chunk_metadata,
    disk_full_error,
    no_space,
)
from rag.types import Chunk, IngestReport

logger = logging.getLogger(__name__)

#: called with (paragraphs embedded so far, paragraphs to embed in this run)
ProgressFn = Callable[[int, int], None]


def index_lock(settings: Settings) -> FileLock | ChromaLock:
    """The writer lock of one index: a file beside the Chroma folder, or for a Chroma server a
    record on the server (writers on other machines wait for it too)."""
    if settings.chroma_server:
        return ChromaLock(settings)
    lock_dir = settings.index_dir.parent
    name = settings.index_dir.name
    lock_dir.mkdir(parents=True, exist_ok=True)
    return FileLock(str(lock_dir / f".{name}.{settings.chroma.collection}.lock"))


def busy_error(settings: Settings) -> IndexBusyError | None:
    """The error a reader raises when it finds no complete index because another process
    holds the writer lock (a first ingest still running), else None. Never waits."""
    lock = index_lock(settings)
    busy = IndexBusyError(
        f"the index in {settings.chroma_server or settings.index_dir} is being built by "
        f"another `rag ingest` (lock {lock.lock_file}); try again when it finishes"
    )
    if isinstance(lock, ChromaLock):
        return busy if lock.held_elsewhere() else None
    if not Path(lock.lock_file).exists():  # no writer ever ran here
        return None
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return busy
    lock.release()
    return None


def build_chunks(
    settings: Settings, on_skip: Callable[[str, str], None] | None = None
) -> tuple[int, int, list[Chunk]]:
    """Load, split and chunk the corpus: (documents, paragraphs, chunks)."""
    docs = load_corpus(settings.corpus_dir, on_skip=on_skip)
    chunker = TokenChunker(settings.chunking, settings.embedding.model)
    n_paragraphs = 0
    chunks: list[Chunk] = []
    for doc in docs:
        paras = split_paragraphs(doc)
        n_paragraphs += len(paras)
        chunks.extend(chunker.chunk(paras))
    return len(docs), n_paragraphs, chunks


def ingest(
    settings: Settings | None = None,
    *,
    reset: bool = False,
    embedder: Embedder | None = None,
    store: ChromaStore | None = None,
    on_skip: Callable[[str, str], None] | None = None,
    progress: ProgressFn | None = None,
) -> IngestReport:
    """Bring the index in line with the corpus folder; embed only what changed.

    Args:
        settings: configuration (corpus folder, index location, models).
        reset: drop the collection first (needed after an embedding-model change).
        on_skip: called with (source, reason) for each unreadable file.
        progress: called with (done, total) paragraphs embedded in this run; rate and ETA
            are logged every 30 s.

    Example:
        >>> report = ingest(Settings(corpus_dir=Path("corpus")))
        >>> report.chunks_added, report.chunks_unchanged
    """
    settings = settings or Settings()
    t0 = time.perf_counter()
    report = IngestReport()

    def skip(source: str, reason: str) -> None:
        report.skipped.append((source, reason))
        if on_skip:
            on_skip(source, reason)

    n_docs, n_paras, chunks = build_chunks(settings, on_skip=skip)
    if n_docs == 0:
        raise CorpusError(
            f"no readable documents in {str(settings.corpus_dir)!r} "
            "(supported: .txt .md .html .pdf .docx); the index was left as it was"
        )
    embedder = embedder or get_embedder(settings)
    store = store or ChromaStore(settings=settings, embedding_model=embedder.model_name)
    lock = index_lock(settings)
    try:
        lock.acquire(timeout=settings.lock_timeout_s)
    except Timeout as exc:
        raise IndexBusyError(
            f"the index is busy: another process has been writing it for over "
            f"{settings.lock_timeout_s:.0f} s (lock {lock.lock_file}); try again when it finishes"
        ) from exc
    try:
        if reset:
            _check_space(settings, chunks, {})  # before the old index is dropped
            _begin_writes(settings)
            store.reset()
        store.collection(create=True, embedding_model=embedder.model_name)
        existing = store.existing()
        # A file that is still there but could not be read this time keeps its old chunks:
        # a transient read error must not delete what was indexed.
        skipped = {src for src, _ in report.skipped}
        existing = {k: v for k, v in existing.items() if v.get("source") not in skipped}
        root = chunk_store.chunk_store_dir(settings)
        if settings.chroma_server and not reset:
            # another process may have ingested: start from what the server holds
            get_sync(settings, store).refresh()
        published = None if reset else chunk_store.current(root)
        # Chunks stored but not in the last published index: a run killed before it finished.
        before = set(published[0].ids) if published is not None else set()
        report.chunks_resumed = sum(1 for c in chunks if c.id in existing and c.id not in before)
        if not reset:
            _check_space(settings, chunks, existing)
        _begin_writes(settings)
        _apply(report, chunks, existing, store, embedder, settings, progress)
        # A file that could not be read keeps its chunks, texts included, from the last index.
        old = published[0] if published is not None else None
        kept = old.rows_of_sources(sorted(skipped)) if old is not None and skipped else []
        ids = [c.id for c in chunks]
        texts = [c.text for c in chunks]
        metas = [chunk_metadata(c) for c in chunks]
        para_texts = [
            c.paragraph_text if c.n_chunks > 1 and c.chunk_index == 0 else "" for c in chunks
        ]
        if old is not None:
            ids += [old.ids[r] for r in kept]
            texts += [old.texts[r] for r in kept]
            metas += [old.metadata[r] for r in kept]
            para_texts += [old.paragraph_texts[r] for r in kept]
        fingerprint = store.set_fingerprint(ids)
        info: dict[str, Any] = {"embedding_model": embedder.model_name}
        stale = published is None or published[1].get("fingerprint") != fingerprint
        if settings.chroma_server:  # the same rows, in the order every other process has
            info = manifest_info(store, store.collection())
            ids, texts, metas, para_texts = in_order(ids, texts, metas, para_texts)
            had = published[1].get("collection_id") if published is not None else None
            stale = stale or had != info["collection_id"]
        elif (files := chroma_files.record(settings)) is not None:
            # Chroma's vector files as this ingest leaves them, checked at each open
            info[chroma_files.KEY] = files
            stale = stale or published[1].get(chroma_files.KEY) != files  # type: ignore[index]
        if stale:
            t_kw = time.perf_counter()
            index = chunk_store.ChunkStore.build(
                ids, texts, metas, fingerprint, paragraph_texts=para_texts
            )
            try:
                chunk_store.publish(index, root, info=info)
            except OSError as exc:
                if no_space(exc):
                    raise disk_full_error(str(root), exc.strerror or str(exc)) from exc
                raise
            report.keyword_seconds = time.perf_counter() - t_kw
        chroma_files.end_writes(settings)
    finally:
        lock.release()
    report.documents, report.paragraphs, report.chunks = n_docs, n_paras, len(chunks)
    report.seconds = time.perf_counter() - t0
    return report


def _begin_writes(settings: Settings) -> None:
    try:
        chroma_files.begin_writes(settings)
    except OSError as exc:
        if no_space(exc):
            raise disk_full_error(
                str(chunk_store.chunk_store_dir(settings)), exc.strerror or ""
            ) from exc
        raise


def _check_space(
    settings: Settings, chunks: list[Chunk], existing: dict[str, dict[str, Any]]
) -> None:
    """Stop before writing when the index's disk cannot hold this run's writes."""
    # the new chunk index is written beside the current one: texts, metadata, BM25 arrays
    # (measured: 1.3 KB per chunk of 0.5 KB text; reserved here: twice the text + 1 KiB)
    keyword_need = sum(
        2 * len(c.text.encode())
        + (len(c.paragraph_text.encode()) if c.n_chunks > 1 and c.chunk_index == 0 else 0)
        + 1024
        for c in chunks
    )
    root = chunk_store.chunk_store_dir(settings)
    if settings.chroma_server:
        check_space(root, keyword_need)
        return
    chroma_need = CHUNK_BYTES * sum(1 for c in chunks if c.id not in existing)
    if _device(root) == _device(settings.index_dir):
        check_space(settings.index_dir, chroma_need + keyword_need)
    else:
        check_space(settings.index_dir, chroma_need)
        check_space(root, keyword_need)


def _device(folder: Path) -> int:
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    return folder.stat().st_dev


def _apply(
    report: IngestReport,
    chunks: list[Chunk],
    existing: dict[str, dict[str, Any]],
    store: ChromaStore,
    embedder: Embedder,
    settings: Settings,
    progress: ProgressFn | None,
) -> None:
    wanted = {c.id: c for c in chunks}
    to_add = [c for c in chunks if c.id not in existing]
    to_remove = [cid for cid in existing if cid not in wanted]

    # Document- and paragraph-level accounting, keyed by source and (source, number).
    old_docs: dict[str, set[str]] = defaultdict(set)
    old_paras: dict[tuple[str, int], set[str]] = defaultdict(set)
    for cid, meta in existing.items():
        old_docs[str(meta.get("source"))].add(cid)
        old_paras[(str(meta.get("source")), int(meta.get("paragraph", 0)))].add(cid)
    new_docs: dict[str, set[str]] = defaultdict(set)
    new_paras: dict[tuple[str, int], set[str]] = defaultdict(set)
    for c in chunks:
        new_docs[c.source].add(c.id)
        new_paras[(c.source, c.paragraph)].add(c.id)
    for src in set(old_docs) | set(new_docs):
        if src not in new_docs:
            report.documents_removed += 1
        elif src not in old_docs:
            report.documents_added += 1
        elif old_docs[src] != new_docs[src]:
            report.documents_updated += 1
        else:
            report.documents_unchanged += 1
    for key in set(old_paras) | set(new_paras):
        if key not in new_paras:
            report.paragraphs_removed += 1
        elif key not in old_paras:
            report.paragraphs_added += 1
        elif old_paras[key] != new_paras[key]:
            report.paragraphs_updated += 1
        else:
            report.paragraphs_unchanged += 1

    # Add first, then delete: a crash in between leaves extra chunks the next run removes,
    # never a hole. Each batch is committed to Chroma as it is embedded, so a killed run
    # keeps what it finished.
    batch = max(1, settings.embedding.batch_size * 4)
    paras_todo = len({c.paragraph_id for c in to_add})
    meter = _Rate(paras_todo, report.chunks_resumed)
    if progress:
        progress(0, paras_todo)
    seen: set[str] = set()
    for i in range(0, len(to_add), batch):
        part = to_add[i : i + batch]
        vectors = embedder.embed_documents([c.text for c in part])
        store.add(part, vectors)
        seen.update(c.paragraph_id for c in part)
        # a paragraph split across two batches counts once its last chunk is in
        done = len(seen) - (
            1 if i + batch < len(to_add) and to_add[i + batch].paragraph_id in seen else 0
        )
        meter.update(done)
        if progress:
            progress(done, paras_todo)
    report.paragraphs_per_s = meter.rate()
    if to_remove:
        store.delete(to_remove)
    report.chunks_added = len(to_add)
    report.chunks_removed = len(to_remove)
    report.chunks_unchanged = len(chunks) - len(to_add)
    logger.info(
        "ingest: %d chunks added, %d removed, %d unchanged",
        report.chunks_added,
        report.chunks_removed,
        report.chunks_unchanged,
    )


class _Rate:
    """Paragraphs/s and ETA of the embedding loop, logged every ``every`` seconds."""

    def __init__(self, total: int, resumed: int, every: float = 30.0) -> None:
        self.total, self.every = total, every
        self.t0 = self.last = time.perf_counter()
        self.done = 0
        if resumed:
            logger.info("resuming: %d chunks stored by an interrupted run are kept", resumed)

    def rate(self) -> float:
        elapsed = time.perf_counter() - self.t0
        return self.done / elapsed if elapsed > 0 and self.done else 0.0

    def update(self, done: int) -> None:
        self.done = done
        now = time.perf_counter()
        if now - self.last >= self.every and self.rate() > 0:
            self.last = now
            eta = (self.total - done) / self.rate()
            logger.info(
                "embedded %d/%d paragraphs, %.1f paragraphs/s, ETA %.0f s",
                done,
                self.total,
                self.rate(),
                eta,
            )


def ensure_index(settings: Settings | None = None, **kwargs: object) -> IngestReport | None:
    """Ingest the corpus if nothing is indexed yet; return the report, or None if it existed."""
    settings = settings or Settings()
    store = ChromaStore(settings=settings)
    if store.exists() and store.collection().count() > 0:
        return None
    return ingest(settings, store=store, **kwargs)  # type: ignore[arg-type]
