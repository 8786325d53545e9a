"""Chunking in the embedder's own tokens: a paragraph is one chunk unless it exceeds the budget.

The budget is counted in the embedding model's word pieces and capped at what the model reads
(its ``max_seq_length`` less the two special tokens), so no chunk loses its tail to the
model's silent truncation. Splitting is LangChain's ``RecursiveCharacterTextSplitter`` with
the model's tokenizer as its length (what ``from_huggingface_tokenizer`` measures); a piece the
splitter still leaves over the limit (word pieces of merged splits do not always add up) is cut
at token offsets.

The tokenizer is the model folder's ``tokenizer.json`` read by the ``tokenizers`` library, the
fast tokenizer ``transformers.AutoTokenizer`` wraps: the same word pieces and offsets
(tests/unit/test_chunking.py compares them), without importing transformers and torch (~3 s of
CPU in every ``rag ingest``).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from langchain_text_splitters import RecursiveCharacterTextSplitter

from rag.embedding import max_seq_length, resolve_model_path
from rag.settings import ChunkingSettings
from rag.types import Chunk, Paragraph

SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""]


@functools.lru_cache(maxsize=4)
def _tokenizer(model_path: str) -> Any:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(model_path) / "tokenizer.json"))
    tok.no_truncation()  # counts must see every word piece
    tok.no_padding()
    return tok


class TokenChunker:
    """Split paragraphs into chunks the embedding model reads whole.

    Sub-chunks keep their paragraph's id and number; a chunk never spans two paragraphs.

    Args:
        settings: the budget (``chunk_tokens``, ``chunk_overlap``), in the model's word pieces.
        embedding_model: the packaged model name or model folder whose tokenizer counts.

    Example:
        >>> chunker = TokenChunker(ChunkingSettings(chunk_tokens=128), "all-MiniLM-L6-v2")
        >>> chunks = chunker.chunk(paragraphs)
    """

    def __init__(self, settings: ChunkingSettings | None, embedding_model: str) -> None:
        self.settings = settings or ChunkingSettings()
        path: Path = resolve_model_path(embedding_model)
        self.tokenizer = _tokenizer(str(path))
        #: the most word pieces the model reads, special tokens included
        self.model_limit = max_seq_length(path)
        self.budget = min(self.settings.chunk_tokens, self.model_limit - 2)
        if self.settings.chunk_overlap >= self.budget:
            raise ValueError(
                f"chunk_overlap ({self.settings.chunk_overlap}) must be smaller than the chunk "
                f"budget ({self.budget} tokens)"
            )
        self._splitter = RecursiveCharacterTextSplitter(
            length_function=self._word_pieces,
            chunk_size=self.budget,
            chunk_overlap=self.settings.chunk_overlap,
            separators=SEPARATORS,
            keep_separator="end",
        )

    def _word_pieces(self, text: str) -> int:
        """Word pieces of ``text`` alone (the splitter's length)."""
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def count_tokens(self, text: str) -> int:
        """Word pieces the model sees for ``text``, special tokens included."""
        return len(self.tokenizer.encode(text, add_special_tokens=True).ids)

    def _hard_split(self, text: str) -> list[str]:
        offsets = self.tokenizer.encode(text, add_special_tokens=False).offsets
        out = []
        for s in range(0, len(offsets), self.budget):
            window = offsets[s : s + self.budget]
            out.append(text[window[0][0] : window[-1][1]])
        return out

    def split_paragraph(self, paragraph: Paragraph) -> list[str]:
        most = self.budget + 2  # the budget plus [CLS] and [SEP]: at most the model limit
        if self.count_tokens(paragraph.text) <= most:
            return [paragraph.text]
        pieces: list[str] = []
        for piece in self._splitter.split_text(paragraph.text):
            if not piece.strip():
                continue
            if self.count_tokens(piece) <= most:
                pieces.append(piece)
            else:
                pieces.extend(p for p in self._hard_split(piece) if p.strip())
        return pieces

    def chunk(self, paragraphs: Iterable[Paragraph]) -> list[Chunk]:
        out: list[Chunk] = []
        for para in paragraphs:
            pieces = self.split_paragraph(para)
            cursor = 0
            for i, piece in enumerate(pieces):
                found = para.text.find(piece, cursor)
                start = found if found >= 0 else cursor
                cursor = start + 1
                cid = hashlib.sha256(f"{para.id}\x1f{i}\x1f{piece}".encode()).hexdigest()[:32]
                out.append(
                    Chunk(
                        id=cid,
                        paragraph_id=para.id,
                        source=para.source,
                        paragraph=para.number,
                        section=para.section,
                        text=piece,
                        chunk_index=i,
                        n_chunks=len(pieces),
                        paragraph_text=para.text,
                        start=para.start + start,
                        end=para.start + start + len(piece),
                        page=para.page,
                    )
                )
        return out
