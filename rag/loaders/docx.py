"""Word files (.docx, python-docx): headings from the Heading/Title styles, paragraphs,
consecutive list items as one block, tables as one block each, in document order.

A paragraph in the Title style is the outermost heading; "Heading N" sits under it."""

from __future__ import annotations

import io
import re

from rag.loaders.common import Part, UnreadableFileError, assemble
from rag.types import Block

_HEADING_STYLE = re.compile(r"^(?:heading\s*(\d)|title)$", re.IGNORECASE)


def _style_name(par) -> str:  # type: ignore[no-untyped-def]
    try:
        return str(par.style.name or "") if par.style is not None else ""
    except (KeyError, AttributeError):  # a style id missing from styles.xml
        return ""


def _is_list(par) -> bool:  # type: ignore[no-untyped-def]
    if "list" in _style_name(par).lower():
        return True
    ppr = par._p.pPr
    return ppr is not None and ppr.numPr is not None


def load_docx(data: bytes) -> tuple[str, list[Block]]:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
        items = list(document.iter_inner_content())
    except Exception as exc:  # zipfile.BadZipFile, KeyError, lxml errors on damaged files
        raise UnreadableFileError(f"corrupt Word file ({type(exc).__name__}: {exc})") from exc
    parts: list[Part] = []
    list_items: list[str] = []
    has_title = any(
        isinstance(i, Paragraph) and _style_name(i).strip().lower() == "title" for i in items
    )

    def close_list() -> None:
        if list_items:
            parts.append(Part("paragraph", "\n".join(list_items)))
            list_items.clear()

    for item in items:
        if isinstance(item, Table):
            close_list()
            rows = []
            for row in item.rows:
                cells = [" ".join(c.text.split()) for c in row.cells]
                cells = [c for i, c in enumerate(cells) if i == 0 or c != cells[i - 1]]
                if any(cells):
                    rows.append(" | ".join(cells))
            if rows:
                parts.append(Part("paragraph", "\n".join(rows)))
            continue
        if not isinstance(item, Paragraph):
            continue
        text = " ".join(item.text.split())
        if not text:
            continue
        m = _HEADING_STYLE.match(_style_name(item).strip())
        if m:
            close_list()
            level = int(m.group(1)) + int(has_title) if m.group(1) else 1
            parts.append(Part("heading", text, level))
        elif _is_list(item):
            list_items.append(text)
        else:
            close_list()
            parts.append(Part("paragraph", text))
    close_list()
    if not parts:
        raise UnreadableFileError("no text in the Word file")
    return assemble(parts)
