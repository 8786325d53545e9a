"""Build ``marlow-seed-bank.pdf`` (an eval document) from ``marlow-seed-bank.txt`` with reportlab.

Run: ``python evals/docs/build_pdf.py``. The first block of the text file is the title; the
others are body paragraphs. The PDF is committed, so evals never need reportlab at run time.
"""

from __future__ import annotations

from pathlib import Path

from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

HERE = Path(__file__).resolve().parent


def build(
    src: Path = HERE / "marlow-seed-bank.txt", out: Path = HERE / "marlow-seed-bank.pdf"
) -> Path:
    blocks = [b.strip() for b in src.read_text(encoding="utf-8").split("\n\n") if b.strip()]
    styles = getSampleStyleSheet()
    story = [Paragraph(blocks[0], styles["Title"]), Spacer(1, 12)]
    for block in blocks[1:]:
        story += [Paragraph(block, styles["BodyText"]), Spacer(1, 8)]
    doc = SimpleDocTemplate(
        str(out),
        pagesize=A4,
        title=blocks[0],
        author="Marlow Valley Community Seed Bank",
        invariant=1,  # reproducible bytes: no creation date or random id
    )
    doc.build(story)
    return out


if __name__ == "__main__":
    print(build())
