from __future__ import annotations

from rag.citations import Claim, left_the_format, locate_quote, parse_claims
from rag.types import Passage

P1 = Passage("a.md", 1, "Intro", "Bhutan is a small kingdom. Its capital is Thimphu.", 0.1, "p1")
P2 = Passage(
    "a.md",
    2,
    "People",
    "“Policy matters,” notes Dr. Jane Roe, a scholar at the Lumen Institute in Porto.",
    0.1,
    "p2",
)


def test_parse_quote_answer_pairs() -> None:
    out = (
        'Quote [P2]: "a scholar at the Lumen Institute"\n'
        "Answer: She works at the Lumen Institute [2].\n"
    )
    assert parse_claims(out) == [
        Claim("a scholar at the Lumen Institute", "She works at the Lumen Institute.", 2)
    ]
    assert parse_claims("NOT FOUND") == []


def test_quote_matching_ignores_case_punctuation_and_typographic_quotes() -> None:
    hit = locate_quote('"policy matters" notes dr jane roe', [P1, P2])
    assert hit is not None and hit[0] == 1
    assert P2.text[hit[1] : hit[2]].startswith("Policy matters")


def test_small_copy_errors_are_tolerated_but_inventions_are_not() -> None:
    assert (
        locate_quote("Dr. Jane Roe, a scholar at the Lumen Institue in Porto", [P1, P2]) is not None
    )
    assert locate_quote("Bhutan has a population of 700,000 people", [P1, P2]) is None
    assert locate_quote("Bhutan", [P1, P2]) is None  # too short to mean anything


def test_abbreviations_do_not_end_sentences() -> None:
    from rag.citations import sentence_spans

    text = "It was founded by Dr. J. R. Smith in 1990. The U.S. Army left. Done."
    assert [text[s:e] for s, e in sentence_spans(text)] == [
        "It was founded by Dr. J. R. Smith in 1990.",
        "The U.S. Army left.",
        "Done.",
    ]


def test_every_marker_form_that_cites_a_paragraph_is_stripped_from_the_statement() -> None:
    for marker in ("[P2]", "[p2]", "[¶2]", "[#2]", "[ 2 ]"):
        assert parse_claims(f"Answer: She works at the Lumen Institute. {marker}") == [
            Claim("", "She works at the Lumen Institute.", 2)
        ]


def test_generation_stops_where_the_answer_format_ends_or_repeats() -> None:
    one = "Answer [P1]: Helen Okafor founded the seed bank.\n"
    assert not left_the_format(one + "\nAnswer [P2]: The board proposed Anna Lee.\n")
    assert not left_the_format(one + one.rstrip())  # the repeat is not complete yet
    assert left_the_format(one + one)  # a small model looping on one statement
    assert left_the_format(one + "This is because the report says so.\n")
    assert not left_the_format("Answer [P1]: It is 1949.\n\n\n")  # blank lines are no repeat
