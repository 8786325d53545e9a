"""Retrieval assertions shared by the fake stack (unit) and the real stack (integration)."""

from __future__ import annotations

import pytest

from rag.errors import InvalidQueryError
from rag.retrieval import HybridRetriever


def check_retrieval_contract(retriever: HybridRetriever) -> None:
    top = retriever.search("Kathmandu Policy Forum", k=5)
    assert top[0].source == "bhutan-qatar.md" and top[0].paragraph == 3
    assert "Kathmandu Policy Forum" in top[0].text
    assert top[0].section.startswith("Historical Background")
    # one entry per paragraph, ranked by fused score
    keys = [(p.source, p.paragraph) for p in top]
    assert len(keys) == len(set(keys))
    assert [p.score for p in top] == sorted((p.score for p in top), reverse=True)
    assert top[0].bm25_rank == 1
    assert len(retriever.search("Qatar", k=2)) == 2
    assert retriever.search("Kathmandu", k=3, sources=["nope.md"]) == []
    for bad, k in (("", 3), ("   \n", 3), ("ok", 0)):
        with pytest.raises(InvalidQueryError):
            retriever.search(bad, k=k)
    with pytest.raises(ValueError, match="limit is"):
        retriever.search("x" * (retriever.settings.retrieval.max_query_chars + 1))
