from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import CorpusError
from rag.loading import load_corpus, load_document, load_html
from rag.paragraphs import split_paragraphs

SEED = Path(__file__).resolve().parents[2] / "corpus" / "bhutan-qatar.md"


def test_seed_article_has_eight_paragraphs_under_four_sections() -> None:
    doc = load_document(SEED, "bhutan-qatar.md")
    paras = split_paragraphs(doc)
    assert [p.number for p in paras] == list(range(1, 9))
    assert paras[0].section == ""  # before the first heading
    assert paras[2].section.startswith("Historical Background")
    assert {p.section for p in paras[5:]} == {"Future Impact & Insight"}
    assert not any(p.text.startswith("#") for p in paras)
    for p in paras:
        assert doc.text[p.start : p.end] == p.text


def test_markdown_heading_directly_above_paragraph(tmp_path: Path) -> None:
    f = tmp_path / "a.md"
    f.write_text("# Title\nFirst para line.\n\n## Part two\n\nSecond para.\n", encoding="utf-8")
    paras = split_paragraphs(load_document(f, "a.md"))
    assert [(p.number, p.section, p.text) for p in paras] == [
        (1, "Title", "First para line."),
        (2, "Title › Part two", "Second para."),
    ]


def test_txt_hash_lines_are_not_headings(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_text("# not a heading in txt\n\nBody.\n", encoding="utf-8")
    paras = split_paragraphs(load_document(f, "a.txt"))
    assert len(paras) == 2 and paras[0].section == ""


def test_html_uses_a_real_parser_and_drops_scripts() -> None:
    html = b"""<html><head><title>t</title><script>alert(1)</script></head><body>
    <h1>Intro</h1><p>First <b>bold</b> paragraph.</p><ul><li>An item</li></ul>
    <h2>More</h2><div><p>Second &amp; last.</p></div><script>var x = "<p>no</p>";</script>
    </body></html>"""
    text, blocks = load_html(html)
    kinds = [(b.kind, b.text) for b in blocks]
    assert kinds == [
        ("heading", "Intro"),
        ("paragraph", "First bold paragraph."),
        ("paragraph", "An item"),
        ("heading", "More"),
        ("paragraph", "Second & last."),
    ]
    assert "alert" not in text


def test_pdf_roundtrip(tmp_path: Path) -> None:
    pypdf = pytest.importorskip("pypdf")
    # A tiny valid PDF with text, written by hand (pypdf cannot author text).
    content = b"BT /F1 12 Tf 72 720 Td (Hello from a PDF paragraph.) Tj ET"
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(content)).encode() + b" >>\nstream\n" + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, o in enumerate(objs, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + o + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    f = tmp_path / "a.pdf"
    f.write_bytes(bytes(out))
    assert pypdf.PdfReader(str(f)).pages[0].extract_text().strip()
    paras = split_paragraphs(load_document(f, "a.pdf"))
    assert paras and "Hello from a PDF paragraph." in paras[0].text


def test_bad_files_are_skipped_with_one_reason_each(tmp_path: Path) -> None:
    (tmp_path / "good.md").write_text("A good paragraph.\n", encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02binary\x00")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog")
    (tmp_path / "empty.md").write_bytes(b"")
    skipped: list[tuple[str, str]] = []
    docs = load_corpus(tmp_path, on_skip=lambda s, r: skipped.append((s, r)))
    assert [d.source for d in docs] == ["good.md"]
    reasons = dict(skipped)
    assert set(reasons) == {"binary.txt", "latin1.txt", "broken.pdf", "empty.md"}
    assert "binary" in reasons["binary.txt"]
    assert "UTF-8" in reasons["latin1.txt"]
    assert "PDF" in reasons["broken.pdf"]


def test_missing_corpus_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus(tmp_path / "nope")


def test_paragraph_ids_are_stable_and_content_derived(tmp_path: Path) -> None:
    f = tmp_path / "a.md"
    f.write_text("One.\n\nTwo.\n\nThree.\n", encoding="utf-8")
    first = split_paragraphs(load_document(f, "a.md"))
    again = split_paragraphs(load_document(f, "a.md"))
    assert [p.id for p in first] == [p.id for p in again]
    f.write_text("One.\n\nTwo, edited.\n\nThree.\n", encoding="utf-8")
    edited = split_paragraphs(load_document(f, "a.md"))
    changed = [a.number for a, b in zip(first, edited, strict=True) if a.id != b.id]
    assert changed == [2]
    # Same text under another source name gets other ids.
    other = split_paragraphs(load_document(f, "b.md"))
    assert {p.id for p in other}.isdisjoint({p.id for p in edited})
