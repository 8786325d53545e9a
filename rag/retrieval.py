"""Hybrid retrieval: dense (Chroma) + keyword (BM25), fused by reciprocal rank, per paragraph."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from rag.chunk_store import ChunkStore, chunk_store_dir, current
from rag.embedding import Embedder, get_embedder
from rag.errors import IndexNotFoundError, InvalidQueryError
from rag.settings import Settings
from rag.store import ChromaStore, StoredChunk, vectors_missing_error
from rag.text import names
from rag.types import Passage


@runtime_checkable
class Retriever(Protocol):
    """Anything that turns a query into ranked, citable paragraphs, with the embedder it
    ranks by (the answer chain ranks sentences with it too)."""

    embedder: Embedder

    def search(
        self, query: str, *, k: int | None = None, sources: Sequence[str] | None = None
    ) -> list[Passage]: ...


def validate_query(query: object, *, max_chars: int, k: int | None = None) -> str:
    """Reject empty, whitespace-only or over-long queries and ``k < 1`` with a clear message."""
    if not isinstance(query, str):
        raise InvalidQueryError(f"the query must be text, not {type(query).__name__}")
    if k is not None and (not isinstance(k, int) or k < 1):
        raise InvalidQueryError(f"k must be a whole number of at least 1 (got {k!r})")
    cleaned = " ".join("".join(ch if ch.isprintable() else " " for ch in query).split())
    if not cleaned:
        raise InvalidQueryError("the query is empty: type a question")
    if len(cleaned) > max_chars:
        raise InvalidQueryError(
            f"the query is {len(cleaned)} characters long; the limit is {max_chars} "
            "(RAG_RETRIEVAL__MAX_QUERY_CHARS)"
        )
    return cleaned


@dataclass
class _Candidate:
    row: int  # of its best chunk in the chunk index
    dense_rank: int | None = None
    bm25_rank: int | None = None
    similarity: float | None = None
    score: float = 0.0


class HybridRetriever:
    """Dense + BM25 retrieval fused with reciprocal rank fusion, de-duplicated per paragraph.

    Example:
        >>> r = HybridRetriever(settings=Settings())
        >>> [(p.source, p.paragraph) for p in r.search("Kathmandu Policy Forum", k=3)]
    """

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        store: ChromaStore | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self._embedder = embedder
        self.store = store or ChromaStore(
            settings=self.settings, embedding_model=embedder.model_name if embedder else None
        )
        self._keyword_root = chunk_store_dir(self.settings)
        self._col: tuple[str, Any] | None = None  # (keyword index version, collection handle)
        self._col_lock = threading.Lock()
        self._sync: Any = None  # rag.replicas.KeywordSync, with a Chroma server

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = get_embedder(self.settings)
        return self._embedder

    def search(
        self, query: str, *, k: int | None = None, sources: Sequence[str] | None = None
    ) -> list[Passage]:
        rs = self.settings.retrieval
        k = rs.k if k is None else k
        query = validate_query(query, max_chars=rs.max_query_chars, k=k)
        bm25, col = self.index()
        if bm25.count == 0:
            raise IndexNotFoundError("the index is empty: run `rag ingest` first")
        srcs = list(sources) if sources else None
        vector = self.embedder.embed_query(query)
        try:
            hits = self._dense(vector, srcs, col, bm25)
        except IndexNotFoundError:
            # the collection went away under the cached handle: another process reset it
            # (query the one that replaced it), or a Chroma server lost its data (then
            # index() says the index is damaged: never half an answer)
            with self._col_lock:
                self._col = None
            bm25, col = self.index()
            hits = self._dense(vector, srcs, col, bm25)
        dense = [(StoredChunk(cid, "", {}), sim) for cid, sim in hits]
        keyword = bm25.search(query, rs.candidates, srcs)
        return self.fuse(dense, keyword, k, index=bm25)

    def _dense(
        self, vector: list[float], sources: list[str] | None, col: Any, bm25: ChunkStore
    ) -> list[tuple[str, float]]:
        """The nearest chunks of the published index, with their cosine similarity.

        Chroma can hold chunks the published index does not: those of an ingest still running,
        or of one that stopped half way (a full disk). They are never shown; they must not take
        the candidates' places either, so then Chroma is asked again for more.
        """
        n = self.settings.retrieval.candidates
        hits = self.store.query_ids(vector, n, sources, col=col, total=bm25.count)
        known = [(cid, sim) for cid, sim in hits if bm25.row(cid) is not None]
        while len(known) < len(hits) and len(known) < self.settings.retrieval.candidates:
            n *= 4
            hits = self.store.query_ids(vector, n, sources, col=col)  # counts Chroma's chunks
            known = [(cid, sim) for cid, sim in hits if bm25.row(cid) is not None]
            if len(hits) < n:  # all of Chroma's chunks
                break
        return known[: self.settings.retrieval.candidates]

    def index(self) -> tuple[ChunkStore, Any]:
        """The last complete index: its BM25 index and the Chroma collection handle.

        Both are cached until an ingest publishes a new keyword index (one ``stat`` per
        search); no count, fingerprint or rebuild happens here.
        """
        got = current(self._keyword_root)  # raises for damaged keyword-index files
        if self.settings.chroma_server:
            got = self._follow_server(got)
        if got is None:
            self._raise_if_busy()
            self.store.collection()  # raises for a missing, unreadable or old-format index
            raise IndexNotFoundError(
                "the keyword index is missing: run `rag ingest` (it is built at ingest time)"
            )
        bm25, _manifest = got
        with self._col_lock:
            if self._col is None or self._col[0] != bm25.version:
                try:
                    col = self.store.collection()
                except IndexNotFoundError as exc:
                    # a published keyword index without its vectors: never half an answer
                    self._raise_if_busy()
                    raise vectors_missing_error(self.settings) from exc
                self._col = (bm25.version, col)
            return bm25, self._col[1]

    def _follow_server(
        self, got: tuple[ChunkStore, dict[str, Any]] | None
    ) -> tuple[ChunkStore, dict[str, Any]] | None:
        """With a Chroma server: keep the keyword index in line with the collection (checked on
        a background thread every ``chroma.sync_s``; built here when this process has none)."""
        if self._sync is None:
            from rag.replicas import get_sync

            self._sync = get_sync(self.settings, self.store)
            self._sync.start()
        if got is None:
            self._sync.refresh()
            got = current(self._keyword_root)
        return got

    def _raise_if_busy(self) -> None:
        """No complete index found: say so if another process is building it right now."""
        from rag.ingest import busy_error  # the writer lock is ingest's

        if (busy := busy_error(self.settings)) is not None:
            raise busy

    def distinctive_terms(self, text: str) -> set[str] | None:
        """Stemmed terms of ``text`` that occur in at most half of the indexed chunks
        (None for an index too small to tell)."""
        return self.index()[0].distinctive_terms(text)

    def named_terms(self, text: str) -> set[str] | None:
        """The names and numbers of ``text`` (``rag.text.names``) that are distinctive terms
        of the index: what a question names that only some passages hold (None for an index
        too small to tell)."""
        return self.distinctive_terms(" ".join(sorted(names(text))))

    def fuse(
        self,
        dense: list[tuple[StoredChunk, float]],
        keyword: list[tuple[StoredChunk, float]],
        k: int,
        *,
        index: ChunkStore | None = None,
    ) -> list[Passage]:
        """RRF over paragraph-level ranks: a paragraph ranks by its best chunk in each list.

        Chunks are looked up by id in the chunk index (``index``, else the current one), which
        gives their metadata and the whole paragraph text of the ``k`` returned passages; a
        chunk the index does not hold (stored by an ingest still running) is left out."""
        index = index if index is not None else self.index()[0]
        rrf_k = self.settings.retrieval.rrf_k
        cands: dict[str, _Candidate] = {}

        def candidate(chunk: StoredChunk) -> _Candidate | None:
            row = index.row(chunk.id)
            if row is None:
                return None
            pid = str(index.metadata[row].get("paragraph_id") or chunk.id)
            c = cands.get(pid)
            if c is None:
                c = cands[pid] = _Candidate(row)
            return c

        def best_chunks(
            hits: Sequence[tuple[StoredChunk, float]],
        ) -> Iterator[tuple[_Candidate, float]]:
            """Each paragraph once, at its best chunk in ``hits`` (best first), with its score."""
            seen: set[int] = set()
            for chunk, score in hits:
                c = candidate(chunk)
                if c is not None and id(c) not in seen:
                    seen.add(id(c))
                    yield c, score

        for rank, (c, sim) in enumerate(best_chunks(dense), start=1):
            c.dense_rank, c.similarity = rank, sim
        for rank, (c, _score) in enumerate(best_chunks(keyword), start=1):
            c.bm25_rank = rank
        for c in cands.values():
            c.score = sum(1.0 / (rrf_k + r) for r in (c.dense_rank, c.bm25_rank) if r is not None)
        ranked = sorted(
            cands.values(),
            key=lambda c: (
                -c.score,
                c.dense_rank or 10**9,
                str(index.metadata[c.row].get("source")),
                int(index.metadata[c.row].get("paragraph", 0)),
            ),
        )
        out: list[Passage] = []
        for c in ranked:
            if len(out) == k:
                break
            text = index.paragraph_text(c.row)
            if text is None:
                continue
            meta = index.metadata[c.row]
            out.append(
                Passage(
                    source=str(meta.get("source", "")),
                    paragraph=int(meta.get("paragraph", 0)),
                    section=str(meta.get("section", "")),
                    text=text,
                    score=round(c.score, 6),
                    paragraph_id=str(meta.get("paragraph_id", "")),
                    dense_rank=c.dense_rank,
                    bm25_rank=c.bm25_rank,
                    similarity=None if c.similarity is None else round(c.similarity, 4),
                    page=_page(meta),
                )
            )
        return out


def _page(meta: dict[str, Any]) -> int | None:
    page = meta.get("page")
    return int(page) if isinstance(page, int | float) and not isinstance(page, bool) else None


def relevance(passages: Sequence[Passage]) -> float:
    """The relevance signal: the best dense cosine similarity among the passages (0 if none)."""
    sims = [p.similarity for p in passages if p.similarity is not None]
    return max(sims) if sims else 0.0


_RETRIEVERS: dict[tuple[str, str, str, str], HybridRetriever] = {}


def get_retriever(settings: Settings | None = None) -> HybridRetriever:
    """A cached ``HybridRetriever`` for these settings."""
    s = settings or Settings()
    key = (
        str(s.chroma_server or s.index_dir.resolve()),
        s.chroma.collection,
        s.embedding.model,
        s.retrieval.model_dump_json(),
    )
    if key not in _RETRIEVERS:
        _RETRIEVERS[key] = HybridRetriever(settings=s)
    return _RETRIEVERS[key]


def retrieve(
    query: str,
    k: int | None = None,
    *,
    sources: Sequence[str] | None = None,
    settings: Settings | None = None,
) -> list[Passage]:
    """Hybrid search of the index: the ``k`` best paragraphs for ``query``.

    Raises ``InvalidQueryError`` (a ``ValueError``) for an empty or over-long query or ``k < 1``,
    and ``IndexNotFoundError`` when nothing has been ingested.

    Example:
        >>> from rag import retrieve
        >>> top = retrieve("Who works at the Kathmandu Policy Forum?", k=3)
        >>> top[0].source, top[0].paragraph, top[0].text[:40]
    """
    return get_retriever(settings).search(query, k=k, sources=sources)


class CorpusRetriever(BaseRetriever):
    """The same hybrid retrieval as a LangChain ``BaseRetriever``.

    Each ``Document`` holds the whole paragraph; metadata carries source, paragraph, section,
    score, ranks and similarity.

    Example:
        >>> docs = CorpusRetriever(k=4).invoke("Qatar security cooperation")
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: Any = None
    k: int | None = None
    sources: list[str] | None = None
    settings: Settings | None = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        r = self.retriever or get_retriever(self.settings)
        return [
            Document(
                page_content=p.text,
                metadata={k: v for k, v in p.to_dict().items() if k != "text" and v is not None},
            )
            for p in r.search(query, k=self.k, sources=self.sources)
        ]
