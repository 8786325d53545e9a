"""Property-based tests of the text loaders and the paragraph splitter."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rag.loading import UnreadableFileError, _split_blank_lines, load_text
from rag.paragraphs import split_paragraphs
from rag.types import SourceDocument

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text biased towards the characters the splitter cares about.
structural = st.sampled_from(
    ["\n", "\n\n", "\r\n", "\r", " \t\n", "# ", "## ", "#", " ", "\t", "\u00a0", "\u2003", "\ufeff"]
)
texty = st.lists(st.one_of(structural, st.text(min_size=0, max_size=12)), max_size=30).map("".join)


def _check_blocks(text: str, blocks: list, markdown: bool) -> None:
    prev_end = 0
    for b in blocks:
        assert 0 <= b.start <= b.end <= len(text)
        assert b.start >= prev_end
        prev_end = b.end
        assert b.text.strip()
        if b.kind == "paragraph":
            assert text[b.start : b.end] == b.text
            assert b.text == b.text.strip()
        else:
            assert markdown
            assert b.text in text[b.start : b.end]
            assert text[b.start : b.end].lstrip().startswith("#")


@FAST
@given(text=texty, markdown=st.booleans())
def test_split_blank_lines_offsets_slice_to_block_text(text: str, markdown: bool) -> None:
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # load_text normalises first
    _check_blocks(text, _split_blank_lines(text, markdown=markdown), markdown)


@FAST
@given(text=st.one_of(texty, st.text()), markdown=st.booleans())
def test_load_text_never_raises_on_arbitrary_text(text: str, markdown: bool) -> None:
    data = text.encode("utf-8")
    try:
        out, blocks = load_text(data, markdown=markdown)
    except UnreadableFileError as exc:
        # The only refusal of valid UTF-8: NUL bytes (a binary file).
        assert "\x00" in text and "binary" in str(exc)
        return
    assert "\r" not in out
    _check_blocks(out, blocks, markdown)
    # Paragraph offsets slice the document text to the paragraph (what citations highlight).
    doc = SourceDocument("d.md", out, tuple(blocks))
    for p in split_paragraphs(doc):
        assert out[p.start : p.end] == p.text
    # Nothing but whitespace and heading markers is lost.
    kept = "".join(b.text for b in blocks if b.kind == "paragraph")
    assert len("".join(kept.split())) <= len("".join(out.split()))


@FAST
@given(data=st.binary(max_size=200), markdown=st.booleans())
def test_load_text_on_arbitrary_bytes_reads_or_refuses_cleanly(data: bytes, markdown: bool) -> None:
    try:
        out, blocks = load_text(data, markdown=markdown)
    except UnreadableFileError:
        return
    _check_blocks(out, blocks, markdown)


# -- paragraph splitter ----------------------------------------------------------------------

para_text = (
    st.text(
        alphabet=st.characters(
            categories=["L", "N", "P", "Zs", "S"],
            exclude_characters="#\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029",
        ),
        min_size=1,
        max_size=40,
    )
    .map(str.strip)
    .filter(bool)
)


def _doc(paras: list[str], source: str = "doc.txt") -> SourceDocument:
    text, blocks = load_text("\n\n".join(paras).encode("utf-8"), markdown=False)
    return SourceDocument(source, text, tuple(blocks))


@FAST
@given(paras=st.lists(para_text, min_size=1, max_size=12))
def test_paragraph_numbers_are_contiguous_and_ids_stable(paras: list[str]) -> None:
    first = split_paragraphs(_doc(paras))
    assert [p.number for p in first] == list(range(1, len(paras) + 1))
    assert [p.text for p in first] == paras
    again = split_paragraphs(_doc(list(paras)))
    assert [p.id for p in again] == [p.id for p in first]
    assert len({p.id for p in first}) == len(first)  # position is part of the id
    # Another source name gives other ids for the same text.
    other = split_paragraphs(_doc(paras, "other.txt"))
    assert not {p.id for p in other} & {p.id for p in first}


@FAST
@given(paras=st.lists(para_text, min_size=1, max_size=12), data=st.data())
def test_changing_one_paragraph_changes_only_its_id(paras: list[str], data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(paras) - 1))
    new = data.draw(para_text)
    assume(" ".join(new.split()) != " ".join(paras[i].split()))
    before = split_paragraphs(_doc(paras))
    changed = list(paras)
    changed[i] = new
    after = split_paragraphs(_doc(changed))
    assert len(after) == len(before)
    diff = [j for j, (a, b) in enumerate(zip(before, after, strict=True)) if a.id != b.id]
    assert diff == [i]


@FAST
@given(paras=st.lists(para_text, min_size=1, max_size=8), spaces=st.sampled_from([" ", "  ", "\t"]))
def test_whitespace_only_edits_keep_ids(paras: list[str], spaces: str) -> None:
    before = split_paragraphs(_doc(paras))
    after = split_paragraphs(_doc([spaces.join(p.split(" ")) for p in paras]))
    assert [p.id for p in after] == [p.id for p in before]


@pytest.mark.parametrize("text", ["", "\n\n\n", " \t ", "#", "# \n\n#\n"])
def test_degenerate_markdown_gives_no_paragraphs(text: str) -> None:
    _, blocks = load_text(text.encode(), markdown=True)
    assert not [
        b for b in blocks if b.kind == "paragraph" and not b.text.startswith("#")
    ] or text.strip("#\n \t")
