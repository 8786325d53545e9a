"""PDF files: paragraphs in reading order with their page, running headers, footers and page
numbers removed, paragraphs rebuilt across column and page breaks, line-end hyphens joined.

pdfminer.six's layout analysis gives text boxes in reading order, columns included (measured
against pypdf, pdfplumber and PyMuPDF in ``bench/pdf_extraction.py``). What it does not do is
written here:

* running headers and footers: a line at the top or bottom edge of a page, set apart from the
  body by at least a line height, whose text (digits ignored) recurs at the same height on
  another page, or that is only a page number ("7", "Page 7", "7 of 12", "vii"), is page
  furniture and dropped;
* headings: a line set clearly larger than the body text (the most common size) is a heading;
  its level is the rank of its size among the heading sizes;
* paragraphs: each text box is a paragraph; a box that starts a new column or page continues
  the previous paragraph when that one did not end a sentence;
* hyphenation: "concentr-" at a line end followed by a lower-case line is joined as
  "concentration" (a real hyphenated compound split at its hyphen is joined too; PDF text
  cannot tell the two apart).
"""

from __future__ import annotations

import io
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass

from rag.loaders.common import Part, UnreadableFileError, assemble
from rag.types import Block

_PAGE_NUMBER = re.compile(
    r"^(?:page\s*)?#(?:\s*(?:of|/)\s*#)?$|^[-–—]\s*#\s*[-–—]$|^[ivxlcdm]{1,7}$", re.IGNORECASE
)
_SENTENCE_END = re.compile(r"[.!?:;\"”’')\]]$")
_HEADING_RATIO = 1.12
_EDGE_LINES = 2


@dataclass
class _Line:
    text: str
    page: int
    box: int
    x0: float
    y0: float
    y1: float
    size: float
    chars: int


def _read_lines(data: bytes) -> tuple[list[_Line], int]:
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LAParams, LTChar, LTTextBoxHorizontal, LTTextLineHorizontal

    lines: list[_Line] = []
    n_pages = 0
    box_id = 0
    try:
        for page_no, page in enumerate(extract_pages(io.BytesIO(data), laparams=LAParams()), 1):
            n_pages = page_no
            for el in page:
                if not isinstance(el, LTTextBoxHorizontal):
                    continue
                box_id += 1
                for ln in el:
                    if not isinstance(ln, LTTextLineHorizontal):
                        continue
                    text = " ".join(ln.get_text().split())
                    if not text:
                        continue
                    sizes = [round(c.size, 1) for c in ln if isinstance(c, LTChar)]
                    size = statistics.median(sizes) if sizes else 0.0
                    lines.append(
                        _Line(text, page_no, box_id, ln.x0, ln.y0, ln.y1, size, len(sizes))
                    )
    except Exception as exc:  # pdfminer raises many types on damaged or encrypted files
        name = type(exc).__name__
        if "Encrypt" in name or "Password" in name:
            raise UnreadableFileError("encrypted PDF (a password is needed)") from exc
        raise UnreadableFileError(f"corrupt PDF ({name}: {exc})".rstrip(": )") + ")") from exc
    return lines, n_pages


def _key(text: str) -> str:
    return re.sub(r"\d+", "#", text.casefold()).strip()


def _edge_band(ordered: list[_Line], gap_min: float) -> list[_Line]:
    """The lines at one edge of a page (``ordered`` from that edge inwards) that are set apart
    from the rest by a gap of at least ``gap_min``; empty when there is no such gap."""
    band = [ordered[0]]
    for ln in ordered[1 : _EDGE_LINES + 2]:
        last = band[-1]
        gap = last.y0 - ln.y1 if last.y0 >= ln.y0 else ln.y0 - last.y1
        if gap < 0:  # on the same line as the band (left and right parts of a header)
            band.append(ln)
        elif gap >= gap_min:
            return band[: _EDGE_LINES + 1]
        else:
            return []
    return []


def _furniture(lines: list[_Line]) -> set[int]:
    """Indices of running headers, footers and page numbers: lines in a page's top or bottom
    band (set apart from the body by at least a line height) that are a page number or recur,
    digits ignored, at the same height on another page."""
    if not lines:
        return set()
    gap_min = statistics.median(ln.y1 - ln.y0 for ln in lines)
    by_page: dict[int, list[_Line]] = defaultdict(list)
    for ln in lines:
        by_page[ln.page].append(ln)
    bands: list[_Line] = []
    for page_lines in by_page.values():
        top_down = sorted(page_lines, key=lambda ln: -(ln.y0 + ln.y1))
        bands += _edge_band(top_down, gap_min)
        bands += [ln for ln in _edge_band(top_down[::-1], gap_min) if ln not in bands]
    seen: dict[str, set[int]] = defaultdict(set)
    for ln in bands:
        seen[f"{_key(ln.text)}@{round(ln.y0 / 3)}"].add(ln.page)
    ids = {id(ln): i for i, ln in enumerate(lines)}
    out: set[int] = set()
    for ln in bands:
        k = _key(ln.text)
        if _PAGE_NUMBER.match(k) or len(seen[f"{k}@{round(ln.y0 / 3)}"]) >= 2:
            out.add(ids[id(ln)])
    return out


def _join(a: str, b: str) -> str:
    if re.search(r"[^\W\d_]-$", a) and b[:1].islower():
        return a[:-1] + b
    return f"{a} {b}"


def load_pdf(data: bytes) -> tuple[str, list[Block]]:
    lines, n_pages = _read_lines(data)
    drop = _furniture(lines)
    body = [ln for i, ln in enumerate(lines) if i not in drop]
    if not body:
        raise UnreadableFileError("PDF has no extractable text")
    weights: Counter[float] = Counter()
    for ln in body:
        weights[ln.size] += ln.chars
    body_size = weights.most_common(1)[0][0]
    heading_sizes = sorted(
        {ln.size for ln in body if body_size and ln.size >= body_size * _HEADING_RATIO},
        reverse=True,
    )
    parts: list[Part] = []
    current: list[str] = []
    cur_page: int | None = None
    prev: _Line | None = None
    continuable = False  # the open paragraph may continue in the next column or page

    def close() -> None:
        nonlocal current, continuable
        if current:
            text = current[0]
            for nxt in current[1:]:
                text = _join(text, nxt)
            parts.append(Part("paragraph", text, 0, cur_page))
        current = []
        continuable = False

    for ln in body:
        if ln.size in heading_sizes:
            close()
            if parts and parts[-1].kind == "heading" and prev is not None and prev.box == ln.box:
                last = parts[-1]  # a heading set over two lines
                parts[-1] = Part("heading", f"{last.text} {ln.text}", last.level, last.page)
            else:
                parts.append(Part("heading", ln.text, heading_sizes.index(ln.size) + 1, ln.page))
            prev = ln
            continue
        new_box = prev is None or ln.box != prev.box or (prev.size in heading_sizes)
        if new_box and current:
            moved = prev is not None and (ln.page != prev.page or ln.y1 > prev.y1 + 1)
            if not (moved and continuable):
                close()
        if not current:
            cur_page = ln.page
        current.append(ln.text)
        continuable = not _SENTENCE_END.search(ln.text)
        prev = ln
    close()
    if not any(p.kind == "paragraph" for p in parts):
        raise UnreadableFileError("PDF has no extractable text")
    return assemble(parts)
