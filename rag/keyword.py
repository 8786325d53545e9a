"""BM25 keyword search over the chunks stored in Chroma, rebuilt when the index changes."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from rank_bm25 import BM25Okapi

from rag.store import ChromaStore, StoredChunk
from rag.text import content_terms


@dataclass
class BM25Index:
    """An in-memory BM25 index of every stored chunk."""

    fingerprint: str
    chunks: list[StoredChunk]
    bm25: BM25Okapi | None

    @classmethod
    def build(cls, chunks: list[StoredChunk], fingerprint: str = "") -> BM25Index:
        corpus = [content_terms(c.text + " " + str(c.metadata.get("section", ""))) for c in chunks]
        bm25 = BM25Okapi(corpus) if chunks and any(corpus) else None
        return cls(fingerprint, chunks, bm25)

    def search(
        self, query: str, n: int, sources: list[str] | None = None
    ) -> list[tuple[StoredChunk, float]]:
        """The best ``n`` chunks with a positive BM25 score."""
        if self.bm25 is None:
            return []
        terms = content_terms(query)
        if not terms:
            return []
        scores = self.bm25.get_scores(terms)
        if sources:
            allowed = set(sources)
            mask = np.array([c.metadata.get("source") in allowed for c in self.chunks])
            scores = np.where(mask, scores, 0.0)
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
        ranked = sorted(top, key=lambda i: -scores[i])
        return [(self.chunks[i], float(scores[i])) for i in ranked if scores[i] > 0]


_CACHE: dict[str, BM25Index] = {}
_LOCK = threading.Lock()


def get_bm25(store: ChromaStore) -> BM25Index:
    """The BM25 index for this store, rebuilt only when its fingerprint changed."""
    fp = store.fingerprint()
    key = f"{store.settings.chroma_server or store.settings.index_dir.resolve()}::{store.name}"
    with _LOCK:
        cached = _CACHE.get(key)
        if cached is not None and cached.fingerprint == fp:
            return cached
        index = BM25Index.build(store.all_chunks(), fp)
        _CACHE[key] = index
        return index
