"""Chunks are budgeted in the embedder's own word pieces and never exceed what it reads."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from rag.chunking import TokenChunker
from rag.embedding import resolve_model_path
from rag.paragraphs import content_hash, paragraph_id
from rag.settings import ChunkingSettings
from rag.types import Paragraph

MODEL = "all-MiniLM-L6-v2"
ROOT = Path(__file__).resolve().parents[2]


def _para(text: str, number: int = 1) -> Paragraph:
    h = content_hash(text)
    return Paragraph(paragraph_id("a.md", number, h), "a.md", number, "S", text, 0, len(text), h)


@pytest.fixture(scope="module")
def hf_tokenizer():
    """The model's tokenizer as transformers loads it (what the torch backend reads through
    sentence-transformers); the chunker reads the same tokenizer.json with `tokenizers`."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(resolve_model_path(MODEL)))


@pytest.fixture(scope="module")
def model_tokens(hf_tokenizer):
    """An independent count of what MiniLM reads: the model's tokenizer through transformers
    (the chunker goes through the `tokenizers` library), and its limit."""
    path = resolve_model_path(MODEL)
    limit = json.loads((path / "sentence_bert_config.json").read_text())["max_seq_length"]

    def count(text: str) -> int:
        return len(hf_tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])

    return count, limit


TRICKY = [
    "",
    "A short one.",
    "Dr. Tenzin Wangchuk, of the Kathmandu Policy Forum, said so in 2019.",
    "naïve café ÉCOLE Ngültrum km² §12(b) ISO-3166-2:BT v2.7.1 12345,678",
    "[CLS] a [SEP] b [MASK] c [PAD] [UNK] [cls] ##ing <s>",
    "中文字符和日本語のテキスト، العربية हिन्दी 🙂🚀",
    "tab\tnew\nline\r\u00a0nbsp\u2003em\u200bzw\ufeffbom \x00\x01\x1b\x7f",
    "supercalifragilistic" * 40,
    " ".join(f"Sentence number {i} talks about topic {i}." for i in range(60)),
]


def test_the_chunker_reads_the_word_pieces_transformers_reads(hf_tokenizer) -> None:
    # the splitter's length (as from_huggingface_tokenizer measures it), the count with the
    # special tokens and the offsets of a hard split: all as through transformers
    chunker = TokenChunker(ChunkingSettings(), MODEL)
    for text in [*TRICKY, *(_dense_paragraph(seed, 300) for seed in range(3))]:
        assert chunker._word_pieces(text) == len(hf_tokenizer.tokenize(text)), text
        assert chunker.count_tokens(text) == len(
            hf_tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"]
        ), text
        hf = hf_tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        offsets = chunker.tokenizer.encode(text, add_special_tokens=False).offsets
        assert [tuple(o) for o in hf["offset_mapping"]] == list(offsets), text


def test_the_chunker_does_not_import_transformers() -> None:
    # `rag ingest` counts word pieces without loading transformers and torch (~3 s of CPU)
    code = """
import sys
from rag.chunking import TokenChunker
from rag.paragraphs import content_hash, paragraph_id
from rag.settings import ChunkingSettings
from rag.types import Paragraph
text = " ".join(f"Sentence {i} of a paragraph longer than the budget." for i in range(200))
h = content_hash(text)
para = Paragraph(paragraph_id("a.md", 1, h), "a.md", 1, "", text, 0, len(text), h)
assert len(TokenChunker(ChunkingSettings(), "all-MiniLM-L6-v2").chunk([para])) > 1
print(sorted(m for m in ("torch", "transformers") if m in sys.modules))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def _dense_paragraph(seed: int, n_words: int) -> str:
    """Names, codes and numbers: several word pieces per word (the worst case for a budget
    counted in another tokenizer's tokens)."""
    rng = random.Random(seed)
    parts = []
    for i in range(n_words):
        kind = i % 4
        if kind == 0:
            parts.append(f"{rng.randint(1000, 99999)},{rng.randint(100, 999)}")
        elif kind == 1:
            parts.append("".join(rng.choice("bcdfghjklmnpqrstvwxz") for _ in range(9)).title())
        elif kind == 2:
            parts.append(f"Al-{rng.choice(['Thani', 'Wangchuk', 'Dorji'])}{rng.randint(1, 99)}")
        else:
            parts.append(rng.choice(["km²", "ISO-3166-2:BT", "Ngültrum", "§12(b)", "v2.7.1"]))
        if i % 17 == 16:
            parts[-1] += "."
    return " ".join(parts)


def test_short_paragraph_is_one_chunk() -> None:
    chunks = TokenChunker(ChunkingSettings(chunk_tokens=64, chunk_overlap=8), MODEL).chunk(
        [_para("A short one.")]
    )
    assert len(chunks) == 1
    assert chunks[0].text == "A short one." and chunks[0].n_chunks == 1


def test_no_chunk_exceeds_what_the_embedder_reads(model_tokens) -> None:
    count, limit = model_tokens
    chunker = TokenChunker(ChunkingSettings(), MODEL)  # defaults: 256 asked, capped by the model
    paras = [
        _para(_dense_paragraph(seed, n), seed + 1) for seed, n in enumerate((60, 150, 400, 900))
    ]
    assert max(count(p.text) for p in paras) > 4 * limit  # the input really is too long
    chunks = chunker.chunk(paras)
    assert len(chunks) > len(paras)
    assert all(count(c.text) <= limit for c in chunks), max(count(c.text) for c in chunks)
    for p in paras:  # every sub-chunk is a verbatim piece of its own paragraph
        mine = [c for c in chunks if c.paragraph_id == p.id]
        assert all(c.text in p.text and c.paragraph_text == p.text for c in mine)
        assert [c.chunk_index for c in mine] == list(range(len(mine)))


def test_the_budget_is_capped_at_the_model_limit(model_tokens) -> None:
    _count, limit = model_tokens
    chunker = TokenChunker(ChunkingSettings(chunk_tokens=4000, chunk_overlap=0), MODEL)
    assert chunker.budget == limit - 2  # [CLS] and [SEP]


def test_long_paragraph_splits_within_budget_and_keeps_its_paragraph(model_tokens) -> None:
    count, _limit = model_tokens
    chunker = TokenChunker(ChunkingSettings(chunk_tokens=40, chunk_overlap=5), MODEL)
    text = " ".join(f"Sentence number {i} talks about topic {i}." for i in range(60))
    p1, p2 = _para(text, 1), _para("Next paragraph.", 2)
    chunks = chunker.chunk([p1, p2])
    first = [c for c in chunks if c.paragraph == 1]
    assert len(first) > 3
    assert all(count(c.text) <= 40 + 2 for c in first)
    assert all(c.paragraph_id == p1.id and c.paragraph_text == text for c in first)
    assert all(c.text in text for c in first)  # never spans into paragraph 2
    assert len({c.id for c in chunks}) == len(chunks)
    assert [c for c in chunks if c.paragraph == 2][0].text == "Next paragraph."


def test_chunk_ids_change_with_the_budget() -> None:
    text = " ".join(["word"] * 300)
    a = TokenChunker(ChunkingSettings(chunk_tokens=64, chunk_overlap=0), MODEL).chunk([_para(text)])
    b = TokenChunker(ChunkingSettings(chunk_tokens=128, chunk_overlap=0), MODEL).chunk(
        [_para(text)]
    )
    assert {c.id for c in a}.isdisjoint({c.id for c in b})
