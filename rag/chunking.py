"""Token-aware chunking: a paragraph is one chunk unless it exceeds the token budget."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from langchain_text_splitters import RecursiveCharacterTextSplitter

from rag.settings import ChunkingSettings
from rag.tokens import ensure_encoding, get_encoding
from rag.types import Chunk, Paragraph


class TiktokenChunker:
    """Split paragraphs into chunks of at most ``chunk_tokens`` tiktoken tokens.

    Sub-chunks keep their paragraph's id and number; a chunk never spans two paragraphs.

    Example:
        >>> chunks = TiktokenChunker(ChunkingSettings(chunk_tokens=128)).chunk(paragraphs)
    """

    def __init__(self, settings: ChunkingSettings | None = None) -> None:
        self.settings = settings or ChunkingSettings()
        if self.settings.chunk_overlap >= self.settings.chunk_tokens:
            raise ValueError(
                f"chunk_overlap ({self.settings.chunk_overlap}) must be smaller than "
                f"chunk_tokens ({self.settings.chunk_tokens})"
            )
        ensure_encoding(self.settings.encoding)
        self._encoding = get_encoding(self.settings.encoding)
        self._splitter = RecursiveCharacterTextSplitter.from_tiktoken_encoder(
            encoding_name=self.settings.encoding,
            chunk_size=self.settings.chunk_tokens,
            chunk_overlap=self.settings.chunk_overlap,
            separators=["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""],
            keep_separator="end",
        )

    def count_tokens(self, text: str) -> int:
        return len(self._encoding.encode(text, disallowed_special=()))

    def split_paragraph(self, paragraph: Paragraph) -> list[str]:
        if self.count_tokens(paragraph.text) <= self.settings.chunk_tokens:
            return [paragraph.text]
        return [p for p in self._splitter.split_text(paragraph.text) if p.strip()]

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
