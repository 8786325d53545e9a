"""The one sentence splitter (rag.sentences, pysbd underneath): what a reader sees as a sentence
is what grounding quotes and the UI highlights."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.sentences import refers_back, sentence_spans, sentences

# Text made of the pieces a splitter trips on: periods, initials, quotes, ellipses, line breaks.
PIECES = st.sampled_from(
    [
        *"abc XYZ.!?\n\"'”’)(…0123456789,;:-",
        "Dr.",
        "e.g.",
        "No.",
        "I.",
        " C. ",
        "...",
        "\n\n",
        "- ",
        "1. ",
    ]
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # pysbd keeps a lone capital letter with its period (an initial): these two are split
        # after it by rag.sentences.
        (
            "He served in World War I. Then he came home.",
            ["He served in World War I.", "Then he came home."],
        ),
        ("Take vitamin C. Eat fruit daily.", ["Take vitamin C.", "Eat fruit daily."]),
        # pysbd splits this one itself.
        ("The answer was No. The board agreed.", ["The answer was No.", "The board agreed."]),
    ],
)
def test_a_sentence_ending_in_a_letter_or_no_is_split(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dr. J. Smith came. He left.", ["Dr. J. Smith came.", "He left."]),
        (
            "It was written by J. R. R. Tolkien. He was British.",
            ["It was written by J. R. R. Tolkien.", "He was British."],
        ),
        ("John F. Kennedy spoke. Then he left.", ["John F. Kennedy spoke.", "Then he left."]),
        ("See Fig. 3 and e.g. Table 2. Done.", ["See Fig. 3 and e.g. Table 2.", "Done."]),
        (
            "Version 2.0 costs 3.5 dollars. It ships today.",
            ["Version 2.0 costs 3.5 dollars.", "It ships today."],
        ),
        ('He said "Stop." Then he left.', ['He said "Stop."', "Then he left."]),
        # pysbd splits after the "." of ".idlerc"
        (
            "Settings are saved in the user's .idlerc directory. Restart.",
            ["Settings are saved in the user's .idlerc directory.", "Restart."],
        ),
        # pysbd splits before "(a)"; an enumeration inside a sentence stays in it
        (
            "Read the notes (a) and (b) first. Then stop.",
            ["Read the notes (a) and (b) first.", "Then stop."],
        ),
    ],
)
def test_initials_abbreviations_and_numbers_do_not_end_sentences(
    text: str, expected: list[str]
) -> None:
    assert sentences(text) == expected


def test_a_wrapped_line_stays_in_its_sentence_and_list_items_are_sentences() -> None:
    assert sentences("This line is\nwrapped. Next one.") == ["This line is\nwrapped.", "Next one."]
    assert sentences("Steps:\n1. Open it\n2. Close it") == ["Steps:", "1. Open it", "2. Close it"]


def test_spans_are_offsets_into_the_text_without_surrounding_whitespace() -> None:
    text = "  One.   Two!\tThree?  "
    spans = sentence_spans(text)
    assert [text[s:e] for s, e in spans] == ["One.", "Two!", "Three?"]
    assert sentence_spans("") == [] and sentence_spans("   ") == []


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(PIECES, max_size=60).map("".join))
def test_no_text_is_lost_or_repeated(text: str) -> None:
    """Spans are in order, apart, trimmed, and hold every non-space character of the text."""
    pos = 0
    covered: set[int] = set()
    for s, e in sentence_spans(text):
        assert pos <= s < e <= len(text)
        assert not text[s].isspace() and not text[e - 1].isspace()
        covered.update(range(s, e))
        pos = e
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


def test_grounding_and_citations_use_this_splitter() -> None:
    import rag.citations
    import rag.grounding

    assert rag.grounding.sentence_spans is sentence_spans
    assert rag.citations.sentence_spans is sentence_spans


def test_the_ui_highlights_the_sentence_that_grounding_found() -> None:
    """The UI has no splitter of its own: it marks the span grounding took from this one."""
    from rag.citations import Claim
    from rag.grounding import ground_claims
    from rag.types import Passage
    from tests.fakes import fake_verifier
    from ui.render import highlight

    text = "Tashi served in World War I. Then Tashi came home to Thimphu."
    passage = Passage("a.md", 1, "", text, 0.1, "p1")
    claims = [Claim("", "Tashi served in World War I.", 1)]
    [g] = ground_claims(claims, [passage], "Where did Tashi serve?", fake_verifier())
    assert highlight(text, [(g.start, g.end)]) == (
        "<mark>Tashi served in World War I.</mark> Then Tashi came home to Thimphu."
    )


def test_a_long_paragraph_reaches_pysbd_in_pieces_and_loses_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pysbd's time grows with the square of its input: a 24,000-character paragraph (a
    document can hold one) is read in pieces cut after a sentence's end."""
    import pysbd

    read: list[int] = []
    processor = pysbd.Segmenter.processor

    def recording(self: pysbd.Segmenter, text: str) -> object:
        read.append(len(text))
        return processor(self, text)

    monkeypatch.setattr(pysbd.Segmenter, "processor", recording)
    text = "See (a) and (b) in [c]. " * 1000
    got = sentences(text)
    assert len(read) > 10 and max(read) <= 2000
    assert got == ["See (a) and (b) in [c]."] * 1000


@pytest.mark.parametrize(
    ("sentence", "needs_the_one_before"),
    [
        ("“We will complement it, not replace it.”", True),  # a quotation and nothing else
        ('"Trade will double by 2030."', True),
        ("«Nous resterons neutres.»", True),
        ("“Trade will double by 2030”.", True),  # the full stop outside the quotation
        ("He left in 1949.", True),  # a pronoun
        ("“Trade will double,” says Ana Ortiz, an economist.", False),  # the speaker is named
        ("“Trade will double,” says Ortiz, “and soon.”", False),  # words outside the quotes
        ("The report was called “Open Borders”.", False),  # a quotation inside a sentence
        ("Qatar opened an embassy in 2023.", False),
        ("“”", False),
    ],
)
def test_a_sentence_needs_the_one_before_for_a_pronoun_or_an_unattributed_quotation(
    sentence: str, needs_the_one_before: bool
) -> None:
    assert refers_back(sentence) is needs_the_one_before
