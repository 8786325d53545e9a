"""Build ``corpus/lake-verrin-report.pdf``: a two-column report with a running header, a running
footer and page numbers on every page, words hyphenated at line ends and paragraphs that run
across column and page breaks (what real reports do to text extractors). Each page's lines are
written to the PDF in row order across both columns, footer first, as some layout programs
do, so an extractor that follows the content stream instead of the layout mixes the columns.

    python tests/data/real_docs/make/make_pdf.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from reportlab.lib.pagesizes import A5
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen import canvas

sys.path.insert(0, str(Path(__file__).parent))
from report_text import RUNNING_FOOTER, RUNNING_HEADER, SECTIONS, TITLE  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "corpus" / "lake-verrin-report.pdf"
W, H = A5
MARGIN, GUTTER = 36.0, 16.0
COL_W = (W - 2 * MARGIN - GUTTER) / 2
TOP, BOTTOM = H - 62.0, 56.0
FONT, BOLD, SIZE, LEAD = "Times-Roman", "Times-Bold", 11.0, 13.5


def wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """Greedy line filling; a long word that does not fit is hyphenated."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if stringWidth(trial, font, size) <= width:
            line = trial
            continue
        if len(word) >= 8 and word.isalpha():
            for cut in range(len(word) - 3, 3, -1):
                head = f"{line} {word[:cut]}-".strip()
                if stringWidth(head, font, size) <= width:
                    lines.append(head)
                    line = word[cut:]
                    break
            else:
                lines.append(line)
                line = word
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    return lines


def main() -> None:
    c = canvas.Canvas(str(OUT), pagesize=A5, invariant=1)
    c.setTitle(TITLE)
    page, col, y = 1, 0, TOP - 34.0

    pending: list[tuple[float, float, str, float, str]] = []  # (y, x, font, size, text)

    def flush() -> None:
        for y_, x_, f_, s_, t_ in sorted(pending, key=lambda r: (-r[0], r[1])):
            c.setFont(f_, s_)
            c.drawString(x_, y_, t_)
        pending.clear()

    def chrome() -> None:
        c.setFont("Helvetica", 7)
        c.drawString(MARGIN, 30, RUNNING_FOOTER)
        c.drawRightString(W - MARGIN, 30, str(page))
        c.drawCentredString(W / 2, H - 30, RUNNING_HEADER)
        c.line(MARGIN, H - 36, W - MARGIN, H - 36)

    def advance() -> None:
        nonlocal page, col, y
        if col == 0:
            col, y = 1, (TOP - 34.0 if page == 1 else TOP)
            return
        flush()
        c.showPage()
        page += 1
        chrome()
        col, y = 0, TOP

    chrome()
    c.setFont(BOLD, 14)
    c.drawCentredString(W / 2, TOP - 10, TITLE)
    for kind, text in SECTIONS:
        font, size = (BOLD, 13.0) if kind == "h" else (FONT, SIZE)
        lines = wrap(text, font, size, COL_W)
        if kind == "h":
            if y - 3 * LEAD < BOTTOM:  # keep a heading with its next lines
                advance()
            y -= 4
        for line in lines:
            if y < BOTTOM:
                advance()
            pending.append((y, MARGIN + col * (COL_W + GUTTER), font, size, line))
            y -= LEAD
        y -= 5 if kind == "p" else 0
    flush()
    c.showPage()
    c.save()
    print(f"wrote {OUT} ({page} pages)")


if __name__ == "__main__":
    main()
