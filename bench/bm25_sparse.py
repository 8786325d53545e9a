"""BM25 as a sparse term-document weight matrix: the same scores as ``rank_bm25.BM25Okapi``,
without its per-query Python loop over every document.

``BM25Okapi.get_scores`` does, for every query term, ``[doc.get(term, 0) for doc in
doc_freqs]``: a Python loop over the whole corpus per term, O(corpus) per query. Here the
per-(document, term) BM25 weights are precomputed once into a CSC matrix; a query touches only
the postings of its own terms (an inverted index), O(sum of their document frequencies).

Used by bench/bm25_scaling.py; the same weights now serve
``rag/keyword.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse


class SparseBM25:
    def __init__(self, matrix: sparse.csc_matrix, vocab: dict[str, int]) -> None:
        self.matrix = matrix  # documents x terms, BM25 weight of term in document
        self.vocab = vocab
        self.n_docs = matrix.shape[0]

    @classmethod
    def from_bm25(cls, bm25: object) -> SparseBM25:
        """Build from a fitted ``BM25Okapi``: the weights ``rag.keyword`` now uses."""
        from rag.keyword import _Weights

        w = _Weights.from_bm25(bm25)  # type: ignore[arg-type]
        return cls(w.matrix, w.vocab)

    def scores(self, terms: Sequence[str]) -> np.ndarray:
        out = np.zeros(self.n_docs, dtype=np.float64)
        ptr, idx, data = self.matrix.indptr, self.matrix.indices, self.matrix.data
        for term in terms:  # repeated terms count again, as in rank_bm25
            j = self.vocab.get(term)
            if j is None:
                continue
            s, e = ptr[j], ptr[j + 1]
            out[idx[s:e]] += data[s:e]
        return out

    def top_n(self, terms: Sequence[str], n: int) -> list[int]:
        """Indices of the best ``n`` documents with a positive score, best first."""
        ids = [self.vocab[t] for t in terms if t in self.vocab]
        if not ids:
            return []
        ptr, idx, data = self.matrix.indptr, self.matrix.indices, self.matrix.data
        cand = np.concatenate([idx[ptr[j] : ptr[j + 1]] for j in ids])
        if cand.size == 0:
            return []
        docs, inv = np.unique(cand, return_inverse=True)
        sc = np.zeros(docs.size, dtype=np.float64)
        np.add.at(sc, inv, np.concatenate([data[ptr[j] : ptr[j + 1]] for j in ids]))
        k = min(n, docs.size)
        top = np.argpartition(-sc, k - 1)[:k] if k < docs.size else np.arange(docs.size)
        top = top[np.argsort(-sc[top], kind="stable")]
        return [int(docs[i]) for i in top if sc[i] > 0]
