"""The chunk store and its BM25 search: scores, filters, and its versioned, atomically swapped
files."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from rag.chunk_store import ChunkStore, current, publish, read_manifest
from rag.keyword import bm25_terms

TEXTS = [
    "Bhutan and Qatar signed a communiqué in New York.",
    "Qatar invests in renewable energy and technology.",
    "The Kathmandu Policy Forum employs a Himalaya specialist.",
    "Bhutan's neutrality dates back to 1949.",
    "Energy cooperation between Qatar and Bhutan grew after 2017.",
]


def _index(texts: list[str] = TEXTS, fingerprint: str = "fp") -> ChunkStore:
    return ChunkStore.build(
        [str(i) for i in range(len(texts))],
        texts,
        [
            {"source": "a.md" if i % 2 == 0 else "b.md", "paragraph": i + 1}
            for i in range(len(texts))
        ],
        fingerprint,
    )


def _lucene_bm25(
    query: str, docs: list[list[str]], k1: float = 1.5, b: float = 0.75
) -> list[float]:
    """BM25 as Lucene defines it, written out independently of bm25s."""
    n = len(docs)
    avgdl = sum(len(d) for d in docs) / n
    out = []
    for d in docs:
        s = 0.0
        for t in set(bm25_terms(query)):
            df = sum(1 for x in docs if t in x)
            if df == 0:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            tf = d.count(t)
            s += idf * tf / (tf + k1 * (1 - b + b * len(d) / avgdl))
        out.append(s)
    return out


def test_ranking_follows_the_bm25_formula() -> None:
    index = _index()
    docs = [bm25_terms(t) for t in TEXTS]
    for q in ("Qatar energy", "Kathmandu forum specialist", "neutrality 1949"):
        expected = _lucene_bm25(q, docs)
        got = {hit.id: score for hit, score in index.search(q, 5)}
        for i, e in enumerate(expected):
            assert got.get(str(i), 0.0) == pytest.approx(e, rel=1e-4, abs=1e-6)
    assert [h.id for h, _ in index.search("Kathmandu forum", 2)] == ["2"]
    assert index.search("zebra", 3) == []


def test_keyword_ranking_matches_a_hand_labelled_one() -> None:
    """Stemming, stop words, whole identifiers and section headings, labelled by hand."""
    texts = [
        "Call ffi_prep_cif_var before the call.",
        "The prep cook and the var table.",
        "Running dogs ran through the parks.",
        "A cat sleeps.",
        "Of the and to a.",
    ]
    metas = [{"source": "a.md", "paragraph": i + 1} for i in range(len(texts))]
    metas[3]["section"] = "Feline care"
    index = ChunkStore.build([str(i) for i in range(len(texts))], texts, metas)

    def ranking(query: str) -> list[str]:
        return [hit.id for hit, _ in index.search(query, 5)]

    # the identifier's own chunk first, then the one sharing two of its words
    assert ranking("ffi_prep_cif_var") == ["0", "1"]
    assert ranking("park dog running") == ["2"]  # plural and -ing forms meet their stems
    assert ranking("sleeping cats") == ["3"]
    assert ranking("feline") == ["3"]  # the section heading is indexed with its chunk
    assert ranking("the of and") == []  # stop words alone match nothing


def test_source_filter_and_metadata_come_back() -> None:
    index = _index()
    hits = index.search("Qatar Bhutan", 5, sources=["b.md"])
    assert hits and {h.metadata["source"] for h, _ in hits} == {"b.md"}
    assert index.search("Kathmandu", 2, sources=["nope.md"]) == []


def test_distinctive_terms_are_those_in_at_most_half_the_chunks() -> None:
    index = _index()
    # "qatar" is in 3 of 5 chunks (not distinctive), "kathmandu" in 1, "zebra" in none
    assert index.distinctive_terms("Qatar Kathmandu zebra") == {"kathmandu"}


def test_publish_swaps_versions_and_readers_see_the_last_complete_one(tmp_path: Path) -> None:
    root = tmp_path / "db.bm25" / "corpus"
    assert current(root) is None
    v1 = publish(_index(TEXTS[:3], "one"), root)
    first, manifest = current(root)  # type: ignore[misc]
    assert manifest["fingerprint"] == "one" and first.count == 3
    assert current(root)[0] is first  # unchanged CURRENT: the loaded index is reused
    # A build in progress (not yet published) is invisible to readers.
    (root / ".tmp-v9-123").mkdir()
    assert current(root)[0] is first
    v2 = publish(_index(TEXTS, "two"), root)
    second, manifest = current(root)  # type: ignore[misc]
    assert manifest["fingerprint"] == "two" and second.count == 5
    assert second.search("Energy cooperation", 1)[0][0].id == "4"
    assert first.search("Kathmandu", 1)[0][0].id == "2"  # a reader's old copy keeps working
    v3 = publish(_index(TEXTS[:2], "three"), root)
    kept = {p.name for p in root.iterdir() if p.is_dir()}
    assert kept == {v2, v3} and v1 not in kept  # the previous version stays for its readers
    assert read_manifest(root)["version"] == v3  # type: ignore[index]


def test_an_index_of_chunks_without_words_is_empty_not_an_error(tmp_path: Path) -> None:
    index = ChunkStore.build(["0"], ["... ---"], [{"source": "a.md"}])
    assert index.search("anything", 3) == []
    publish(index, tmp_path / "kw")
    assert current(tmp_path / "kw")[0].search("anything", 3) == []  # type: ignore[index]
