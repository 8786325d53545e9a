"""What every format reader shares: the skip-this-file error, decoding, and joining extracted
blocks into one document text with offsets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rag.types import Block


class UnreadableFileError(Exception):
    """Internal: why one file was skipped."""


@dataclass(frozen=True)
class Part:
    """A block as a reader found it, before offsets are assigned."""

    kind: Literal["heading", "paragraph"]
    text: str
    level: int = 0
    page: int | None = None


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def decode(data: bytes) -> str:
    """UTF-8 text (a BOM is dropped); NUL bytes or invalid UTF-8 make the file unreadable."""
    if b"\x00" in data[:8192]:
        raise UnreadableFileError("binary file (NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableFileError(f"not valid UTF-8 (byte {exc.start})") from exc
    return normalise_newlines(text)


def assemble(parts: list[Part]) -> tuple[str, list[Block]]:
    """Join extracted blocks into one text (blank line between blocks) with offsets."""
    chunks: list[str] = []
    blocks: list[Block] = []
    pos = 0
    for p in parts:
        blocks.append(Block(p.kind, p.text, pos, pos + len(p.text), p.level, p.page))
        chunks.append(p.text)
        pos += len(p.text) + 2
    return "\n\n".join(chunks), blocks
