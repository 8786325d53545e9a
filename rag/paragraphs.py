"""Split a ``SourceDocument`` into numbered, citable ``Paragraph`` objects."""

from __future__ import annotations

import hashlib
import unicodedata

from rag.types import Paragraph, SourceDocument


def content_hash(text: str) -> str:
    """Hash of a paragraph's text, insensitive to whitespace and Unicode normal form."""
    norm = " ".join(unicodedata.normalize("NFC", text).split())
    return hashlib.sha256(norm.encode("utf-8")).hexdigest()


def paragraph_id(source: str, number: int, chash: str) -> str:
    """Stable id from (source, paragraph number, content hash)."""
    key = f"{source}\x1f{number}\x1f{chash}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]


SECTION_SEPARATOR = " › "


def paragraph_label(source: str, number: int, page: int | None = None) -> str:
    """How a paragraph is named to a reader: ``report.pdf p. 4 ¶12`` (page when the format has
    pages; ¶ is the paragraph's number in the whole document, its citable id)."""
    return f"{source} p. {page} ¶{number}" if page is not None else f"{source} ¶{number}"


def split_paragraphs(doc: SourceDocument) -> list[Paragraph]:
    """Body paragraphs numbered 1..n in reading order; each takes its section path.

    The section path is the chain of headings above the paragraph, outermost first, joined
    with " › " ("Command-line arguments › --document-private-items"), so a section that holds
    only sub-headings still names the paragraphs under them. A heading without a level (0)
    replaces the whole path.

    Example:
        >>> paras = split_paragraphs(load_document(Path("corpus/a.md"), "a.md"))
        >>> paras[0].number
        1
    """
    path: list[tuple[int, str]] = []
    section = ""
    out: list[Paragraph] = []
    for block in doc.blocks:
        if block.kind == "heading":
            level = block.level
            path = [(lv, t) for lv, t in path if 0 < lv < level] if level > 0 else []
            path.append((level, " ".join(block.text.split())))
            section = SECTION_SEPARATOR.join(t for _, t in path)
            continue
        text = block.text.strip()
        if not text:
            continue
        number = len(out) + 1
        chash = content_hash(text)
        out.append(
            Paragraph(
                id=paragraph_id(doc.source, number, chash),
                source=doc.source,
                number=number,
                section=section,
                text=text,
                start=block.start,
                end=block.end,
                content_hash=chash,
                page=block.page,
            )
        )
    return out
