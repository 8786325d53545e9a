"""BM25 keyword search over the chunks stored in Chroma, rebuilt when the index changes.

Scoring is rank-bm25's ``BM25Okapi`` (its idf, k1, b), precomputed once into a sparse
document x term weight matrix: a query then touches only the postings of its own terms.
``BM25Okapi.get_scores`` loops in Python over every document for every term, which measured
707 ms per query at 100k paragraphs against 13 ms this way, with identical scores
(bench/bm25_scaling.py).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from rank_bm25 import BM25Okapi
from scipy import sparse

from rag.store import ChromaStore, StoredChunk
from rag.text import content_terms


@dataclass
class _Weights:
    matrix: sparse.csc_matrix  # documents x terms: BM25 weight of the term in the document
    vocab: dict[str, int]

    @classmethod
    def from_bm25(cls, bm25: BM25Okapi) -> _Weights:
        k1, b, avgdl, idf = bm25.k1, bm25.b, bm25.avgdl, bm25.idf
        vocab = {t: i for i, t in enumerate(idf)}
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        for d, (freqs, dl) in enumerate(zip(bm25.doc_freqs, bm25.doc_len, strict=True)):
            norm = k1 * (1 - b + b * dl / avgdl)
            for term, tf in freqs.items():
                rows.append(d)
                cols.append(vocab[term])
                vals.append(idf[term] * tf * (k1 + 1) / (tf + norm))
        m = sparse.csc_matrix(
            (np.asarray(vals, dtype=np.float64), (np.asarray(rows), np.asarray(cols))),
            shape=(len(bm25.doc_len), len(vocab)),
        )
        return cls(m, vocab)

    def scores(self, terms: list[str]) -> np.ndarray:
        out = np.zeros(self.matrix.shape[0], dtype=np.float64)
        ptr, idx, data = self.matrix.indptr, self.matrix.indices, self.matrix.data
        for term in terms:  # a repeated query term counts again, as in rank_bm25
            j = self.vocab.get(term)
            if j is not None:
                out[idx[ptr[j] : ptr[j + 1]]] += data[ptr[j] : ptr[j + 1]]
        return out


@dataclass
class BM25Index:
    """An in-memory BM25 index of every stored chunk."""

    fingerprint: str
    chunks: list[StoredChunk]
    weights: _Weights | None
    doc_freq: dict[str, int] | None = None

    @classmethod
    def build(cls, chunks: list[StoredChunk], fingerprint: str = "") -> BM25Index:
        corpus = [content_terms(c.text + " " + str(c.metadata.get("section", ""))) for c in chunks]
        if not chunks or not any(corpus):
            return cls(fingerprint, chunks, None)
        doc_freq: dict[str, int] = {}
        for terms in corpus:
            for t in set(terms):
                doc_freq[t] = doc_freq.get(t, 0) + 1
        return cls(fingerprint, chunks, _Weights.from_bm25(BM25Okapi(corpus)), doc_freq)

    def distinctive_terms(self, text: str) -> set[str] | None:
        """Terms of ``text`` found in at most half of the chunks (BM25's idf > 0): the words
        that can tell one passage from another. Ubiquitous words (the corpus's own subject,
        e.g. a country name in an article about it) and unknown words are not distinctive.
        None when the index is too small (under 4 chunks) for the notion to mean anything."""
        n = len(self.chunks)
        if not self.doc_freq or n < 4:
            return None
        return {t for t in content_terms(text) if 0 < self.doc_freq.get(t, 0) <= n / 2}

    def search(
        self, query: str, n: int, sources: list[str] | None = None
    ) -> list[tuple[StoredChunk, float]]:
        """The best ``n`` chunks with a positive BM25 score."""
        if self.weights is None:
            return []
        terms = content_terms(query)
        if not terms:
            return []
        scores = self.weights.scores(terms)
        if sources:
            allowed = set(sources)
            mask = np.array([c.metadata.get("source") in allowed for c in self.chunks])
            scores = np.where(mask, scores, 0.0)
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
        ranked = sorted(top, key=lambda i: (-scores[i], i))
        return [(self.chunks[i], float(scores[i])) for i in ranked if scores[i] > 0]


_CACHE: dict[str, BM25Index] = {}
_LOCK = threading.Lock()


def get_bm25(store: ChromaStore, fingerprint: str | None = None) -> BM25Index:
    """The BM25 index for this store, rebuilt only when its fingerprint changed."""
    fp = fingerprint if fingerprint is not None else store.fingerprint()
    key = f"{store.settings.chroma_server or store.settings.index_dir.resolve()}::{store.name}"
    with _LOCK:
        cached = _CACHE.get(key)
        if cached is not None and cached.fingerprint == fp:
            return cached
        index = BM25Index.build(store.all_chunks(), fp)
        _CACHE[key] = index
        return index
