"""Keyword search: BM25 (bm25s, Lucene's variant) over ``bm25_terms``, the stemmed content
words of a chunk and its section heading. The chunks it ranks, and the version folders it is
published in, are ``rag.chunk_store``'s.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from rag.text import (
    STOPWORDS,
    content_terms,
    fold,
    folded_identifiers,
    identifiers,
    stem,
    word_matches,
)

logger = logging.getLogger(__name__)


def bm25s_quiet():  # type: ignore[no-untyped-def]
    """The bm25s module, its debug logging silenced."""
    import bm25s

    # bm25s sets its own logger to DEBUG on import, which prints a line per build through any
    # root handler (the CLIs' included); warnings and errors still come through.
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


def bm25_terms(text: str, section: str = "") -> list[str]:
    """The keyword-search terms of a chunk (with its section heading) or of a query."""
    return content_terms(f"{text} {section}" if section else text)


def query_terms(query: str) -> list[str]:
    """A query's terms, each whole identifier weighted as much as its words together: a
    user who types ``ffi_prep_cif_var`` wants that identifier, not prose repeating its parts."""
    terms = bm25_terms(query)
    for ident in identifiers(query):
        terms += [ident] * max(len(bm25_terms(ident)) - 2, 0)
    return terms


class _TermIds(dict[str, int]):
    """Raw word match -> term id (0 for a stop word), each distinct word stemmed once."""

    def __init__(self, vocab: dict[str, int]) -> None:
        super().__init__()
        self.vocab = vocab

    def __missing__(self, raw: str) -> int:
        word = raw.strip(".,'")
        tid = (
            0
            if not word or word in STOPWORDS
            else self.vocab.setdefault(stem(word), len(self.vocab))
        )
        self[raw] = tid
        return tid


def _corpus_term_ids(texts: Iterable[str]) -> tuple[list[list[int]], dict[str, int]]:
    """``bm25_terms`` of every text as term ids, and the vocabulary (term -> id).

    The same terms as ``bm25_terms`` text by text, but a corpus repeats its words, so each
    distinct word is stripped, checked and stemmed once and the per-word work is C loops.
    Id 0 is bm25s's empty token (in no document), so a stop word's 0 is dropped by ``filter``.
    """
    vocab: dict[str, int] = {"": 0}
    ids = _TermIds(vocab)
    out: list[list[int]] = []
    for text in texts:
        folded = fold(text)
        row = list(filter(None, map(ids.__getitem__, word_matches(folded))))
        idents = folded_identifiers(folded)
        if idents:
            row += [vocab.setdefault(i, len(vocab)) for i in idents]
        out.append(row)
    return out, vocab


class BM25:
    """A bm25s model over the rows of a chunk store (row i of its scores is chunk i)."""

    def __init__(self, model: Any) -> None:
        self.model = model  # bm25s.BM25

    @classmethod
    def build(cls, texts: Iterable[str]) -> BM25 | None:
        """BM25 over ``texts`` (each a chunk with its section); None when no text has a term."""
        corpus, vocab = _corpus_term_ids(texts)
        if len(vocab) <= 1:
            return None
        # scipy builds the same sparse matrix as the default numpy backend, faster
        model = bm25s_quiet().BM25(csc_backend="scipy")
        model.index((corpus, vocab), show_progress=False)
        return cls(model)

    def scores(self, query: str, weight_mask: np.ndarray | None = None) -> np.ndarray | None:
        """Each row's BM25 score for ``query`` (rows with mask 0 score 0); None when the
        query has no search term."""
        terms = query_terms(query)
        if not terms:
            return None
        return np.asarray(self.model.get_scores(terms, weight_mask=weight_mask))

    def doc_freq(self, term: str) -> int:
        """How many rows hold ``term``."""
        j = self.model.vocab_dict.get(term)
        if j is None:
            return 0
        ptr = self.model.scores["indptr"]
        return int(ptr[j + 1] - ptr[j])

    def distinctive_terms(self, text: str, rows: int) -> set[str]:
        """Terms of ``text`` found in at most half of the ``rows``."""
        return {t for t in bm25_terms(text) if 0 < self.doc_freq(t) <= rows / 2}

    def save(self, folder: Path) -> None:
        self.model.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path) -> BM25 | None:
        """The model saved in ``folder`` (None when none was: no chunk had a term)."""
        if not (folder / "params.index.json").exists():
            return None
        return cls(bm25s_quiet().BM25.load(str(folder), show_progress=False, verbosity=0))
