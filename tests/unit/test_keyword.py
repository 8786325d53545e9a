import numpy as np
from rank_bm25 import BM25Okapi

from rag.keyword import BM25Index
from rag.store import StoredChunk
from rag.text import content_terms

TEXTS = [
    "Bhutan and Qatar signed a communiqué in New York.",
    "Qatar invests in renewable energy and technology.",
    "The Kathmandu Policy Forum employs a Himalaya specialist.",
    "Bhutan's neutrality dates back to 1949.",
]


def test_sparse_scores_equal_rank_bm25() -> None:
    chunks = [StoredChunk(str(i), t, {"source": "a.md"}) for i, t in enumerate(TEXTS)]
    index = BM25Index.build(chunks)
    assert index.weights is not None
    reference = BM25Okapi([content_terms(t + " ") for t in TEXTS])
    for q in ("Qatar energy", "Bhutan Bhutan neutrality", "Kathmandu forum specialist", "zebra"):
        ours = index.weights.scores(content_terms(q))
        assert np.allclose(ours, reference.get_scores(content_terms(q)))
    assert [c.id for c, _ in index.search("Kathmandu forum", 2)] == ["2"]
    assert index.search("Kathmandu", 2, sources=["b.md"]) == []
