"""Which PDF text extractor keeps a two-column page in reading order, and what the loader
(``rag.loaders.pdf``) makes of the fixture report.

The fixture ``tests/data/real_docs/corpus/lake-verrin-report.pdf`` (built by
``tests/data/real_docs/make/make_pdf.py``) writes each page's lines in row order across both
columns, with a running header, a running footer and page numbers, and hyphenates words at line
ends. For each library's plain page text, a paragraph counts as "in order" when its words come
out contiguous (line-end hyphens joined). For the loader: paragraphs equal to the source text,
paragraphs holding header/footer text, and paragraphs on the right page. Real PDFs found on
the machine (texinfo and DocBook manuals) are listed with what the loader removed as page
furniture, when present.

    python bench/pdf_extraction.py
"""

from __future__ import annotations

import io
import re
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "data" / "real_docs" / "corpus" / "lake-verrin-report.pdf"
REAL = [
    Path("/usr/share/doc/libtasn1-doc/libtasn1.pdf"),
    Path("/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf"),
]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "data" / "real_docs" / "make"))
from report_text import RUNNING_FOOTER, RUNNING_HEADER, SECTIONS  # noqa: E402


def norm(t: str) -> str:
    return " ".join(re.findall(r"\w+", t.casefold()))


def dehyphen(t: str) -> str:
    return re.sub(r"(\w)-\s*\n\s*(\w)", r"\1\2", t)


def by_pypdf(d: bytes) -> list[str]:
    from pypdf import PdfReader

    return [p.extract_text() or "" for p in PdfReader(io.BytesIO(d)).pages]


def by_pypdf_layout(d: bytes) -> list[str]:
    from pypdf import PdfReader

    return [p.extract_text(extraction_mode="layout") for p in PdfReader(io.BytesIO(d)).pages]


def by_pdfplumber(d: bytes) -> list[str]:
    import pdfplumber

    with pdfplumber.open(io.BytesIO(d)) as pdf:
        return [p.extract_text() or "" for p in pdf.pages]


def by_pymupdf(d: bytes) -> list[str]:
    import pymupdf

    return [p.get_text(sort=True) for p in pymupdf.open(stream=d, filetype="pdf")]


def by_pymupdf_blocks(d: bytes) -> list[str]:
    import pymupdf

    doc = pymupdf.open(stream=d, filetype="pdf")
    return ["\n".join(b[4] for b in p.get_text("blocks", sort=True)) for p in doc]


def by_pdfminer(d: bytes) -> list[str]:
    from pdfminer.high_level import extract_text
    from pdfminer.layout import LAParams

    return extract_text(io.BytesIO(d), laparams=LAParams()).split("\f")


LIBS = {
    "pypdf": by_pypdf,
    "pypdf (layout mode)": by_pypdf_layout,
    "pdfplumber": by_pdfplumber,
    "PyMuPDF get_text(sort=True)": by_pymupdf,
    "PyMuPDF blocks, sorted": by_pymupdf_blocks,
    "pdfminer.six (LAParams)": by_pdfminer,
}


def main() -> None:
    from rag.loaders.pdf import _furniture, _read_lines, load_pdf

    data = FIXTURE.read_bytes()
    paras = [t for k, t in SECTIONS if k == "p"]
    print(f"fixture: {FIXTURE.name}, {len(paras)} paragraphs\n")
    print("| library | paragraphs in reading order | s |")
    print("|---|---:|---:|")
    for name, fn in LIBS.items():
        t0 = time.perf_counter()
        joined = norm(dehyphen("\n".join(fn(data))))
        dt = time.perf_counter() - t0
        ok = sum(1 for p in paras if norm(p) in joined)
        print(f"| {name} | {ok}/{len(paras)} | {dt:.2f} |")

    _, blocks = load_pdf(data)
    got = [b for b in blocks if b.kind == "paragraph"]
    exact = sum(1 for b in got if b.text in paras)
    furn = sum(
        1
        for b in got
        if any(x in b.text for x in (RUNNING_HEADER, RUNNING_FOOTER))
        or re.search(r"(^|\s)\d\s*$", b.text)
    )
    print(
        f"\nrag.loaders.pdf on the fixture: {len(got)} paragraphs, {exact} equal to the source "
        f"text, {furn} with header/footer/page-number text, "
        f"{sum(1 for b in got if b.page)} with a page"
    )
    for path in REAL:
        if not path.exists():
            continue
        d = path.read_bytes()
        t0 = time.perf_counter()
        _, blocks = load_pdf(d)
        dt = time.perf_counter() - t0
        lines, n_pages = _read_lines(d)
        removed = Counter(
            re.sub(r"\d+", "#", lines[i].text) for i in _furniture(lines)
        ).most_common(4)
        print(
            f"{path.name}: {n_pages} pages, {len(blocks)} blocks in {dt:.2f} s; removed as "
            f"furniture (text, digits as #: pages): {removed}"
        )


if __name__ == "__main__":
    main()
