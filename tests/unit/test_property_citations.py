"""Property-based tests of the quote verifier ``rag.citations.locate_quote``."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.citations import MIN_QUOTE_WORDS, _folded_with_map, locate_quote
from rag.types import Passage

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Passages use letters a-m (plus a few accented ones); "foreign" quotes use n-z only, so a
# foreign quote shares no character but spaces with any passage.
word = st.text(alphabet="abcdefghijklmáéüñ", min_size=1, max_size=9)
foreign_word = st.text(alphabet="nopqrstuvwxyz", min_size=2, max_size=9)
punct = st.sampled_from(["", "", "", ",", ".", ";", ":", "!", "?", "'s", "—", ")"])


@st.composite
def passage_words(draw: st.DrawFn) -> list[str]:
    return draw(st.lists(word, min_size=MIN_QUOTE_WORDS, max_size=40))


def _render(words: list[str], puncts: list[str]) -> str:
    return " ".join(w + p for w, p in zip(words, puncts, strict=False))


@st.composite
def passages_and_quote(draw: st.DrawFn) -> tuple[list[Passage], int, str]:
    texts_words = draw(st.lists(passage_words(), min_size=1, max_size=4))
    texts = []
    for ws in texts_words:
        ps = draw(st.lists(punct, min_size=len(ws), max_size=len(ws)))
        texts.append((ws, _render(ws, ps)))
    idx = draw(st.integers(0, len(texts) - 1))
    ws, text = texts[idx]
    n = draw(st.integers(MIN_QUOTE_WORDS, len(ws)))
    start = draw(st.integers(0, len(ws) - n))
    # The quote: whole words as they appear in the text, with their punctuation.
    tokens = text.split(" ")
    quote = " ".join(tokens[start : start + n])
    passages = [Passage(f"d{i}.md", i + 1, "", t, 0.0, f"p{i}") for i, (_, t) in enumerate(texts)]
    return passages, idx, quote


def _fold(s: str) -> str:
    return _folded_with_map(s)[0]


@FAST
@given(case=passages_and_quote())
def test_any_substring_of_four_words_is_located_in_its_passage(
    case: tuple[list[Passage], int, str],
) -> None:
    passages, idx, quote = case
    hit = locate_quote(quote, passages, prefer=idx)
    assert hit is not None
    i, s, e = hit
    assert i == idx
    assert _fold(passages[i].text[s:e]) == _fold(quote)
    # Without a preference it is still found, in a passage that holds it.
    hit = locate_quote(quote, passages)
    assert hit is not None
    assert _fold(quote) in _fold(passages[hit[0]].text)
    assert _fold(passages[hit[0]].text[hit[1] : hit[2]]) == _fold(quote)


@FAST
@given(
    case=passages_and_quote(),
    case_fn=st.sampled_from([str.upper, str.lower, str.title, str.swapcase, lambda s: s]),
    wrap=st.sampled_from([("“", "”"), ('"', '"'), ("‘", "’"), ("«", "»"), ("", ""), ("'", "'")]),
    apostrophe=st.sampled_from(["'", "’", "‘"]),
    tail=st.sampled_from(["", ".", "…", "!", " ", ","]),
)
def test_typographic_and_case_variants_still_match(
    case: tuple[list[Passage], int, str], case_fn, wrap: tuple[str, str], apostrophe: str, tail: str
) -> None:
    passages, idx, quote = case
    variant = wrap[0] + case_fn(quote).replace("'", apostrophe) + tail + wrap[1]
    hit = locate_quote(variant, passages, prefer=idx)
    assert hit is not None and hit[0] == idx
    assert _fold(passages[idx].text[hit[1] : hit[2]]) == _fold(quote)


@FAST
@given(
    texts=st.lists(passage_words().map(" ".join), min_size=1, max_size=4),
    foreign=st.lists(foreign_word, min_size=MIN_QUOTE_WORDS, max_size=15),
)
def test_words_not_in_any_passage_are_not_located(texts: list[str], foreign: list[str]) -> None:
    passages = [Passage(f"d{i}.md", i + 1, "", t, 0.0) for i, t in enumerate(texts)]
    assert locate_quote(" ".join(foreign), passages) is None


@FAST
@given(case=passages_and_quote())
def test_quotes_shorter_than_four_words_are_never_located(
    case: tuple[list[Passage], int, str],
) -> None:
    passages, idx, quote = case
    short = " ".join(_fold(quote).split()[: MIN_QUOTE_WORDS - 1])  # "a's" folds to two words
    assert locate_quote(short, passages) is None


@FAST
@given(quote=st.text(max_size=200), texts=st.lists(st.text(max_size=200), max_size=3))
def test_locate_quote_never_raises(quote: str, texts: list[str]) -> None:
    passages = [Passage("d.md", i + 1, "", t, 0.0) for i, t in enumerate(texts)]
    hit = locate_quote(quote, passages)
    if hit is not None:
        i, s, e = hit
        assert 0 <= s <= e <= len(texts[i])
