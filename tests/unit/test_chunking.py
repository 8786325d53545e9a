from __future__ import annotations

from rag.chunking import TiktokenChunker
from rag.paragraphs import content_hash, paragraph_id
from rag.settings import ChunkingSettings
from rag.types import Paragraph


def _para(text: str, number: int = 1) -> Paragraph:
    h = content_hash(text)
    return Paragraph(paragraph_id("a.md", number, h), "a.md", number, "S", text, 0, len(text), h)


def test_short_paragraph_is_one_chunk() -> None:
    chunks = TiktokenChunker(ChunkingSettings(chunk_tokens=64, chunk_overlap=8)).chunk([_para("A short one.")])
    assert len(chunks) == 1
    assert chunks[0].text == "A short one." and chunks[0].n_chunks == 1


def test_long_paragraph_splits_within_budget_and_keeps_its_paragraph() -> None:
    chunker = TiktokenChunker(ChunkingSettings(chunk_tokens=40, chunk_overlap=5))
    text = " ".join(f"Sentence number {i} talks about topic {i}." for i in range(60))
    p1, p2 = _para(text, 1), _para("Next paragraph.", 2)
    chunks = chunker.chunk([p1, p2])
    first = [c for c in chunks if c.paragraph == 1]
    assert len(first) > 3
    assert all(chunker.count_tokens(c.text) <= 40 for c in first)
    assert all(c.paragraph_id == p1.id and c.paragraph_text == text for c in first)
    assert [c.chunk_index for c in first] == list(range(len(first)))
    assert all(c.text in text for c in first)  # never spans into paragraph 2
    assert len({c.id for c in chunks}) == len(chunks)
    assert [c for c in chunks if c.paragraph == 2][0].text == "Next paragraph."


def test_chunk_ids_change_with_the_budget() -> None:
    text = " ".join(["word"] * 300)
    a = TiktokenChunker(ChunkingSettings(chunk_tokens=64, chunk_overlap=0)).chunk([_para(text)])
    b = TiktokenChunker(ChunkingSettings(chunk_tokens=128, chunk_overlap=0)).chunk([_para(text)])
    assert {c.id for c in a}.isdisjoint({c.id for c in b})
