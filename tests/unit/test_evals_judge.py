"""The evals' deterministic judge: written from the definition of a faithful statement, sharing
no code with rag's verifier."""

from __future__ import annotations

import ast

import pytest

import evals.judge as judge_module
from evals.judge import DeterministicJudge, check_statement

S = "Qatar has quietly provided technical assistance to Bhutan's border security forces."


def test_the_judge_imports_nothing_from_rag_at_module_level_or_in_the_check() -> None:
    """Only the LLM self-judge loads the chain's model; the statement check uses no rag code."""
    tree = ast.parse(open(judge_module.__file__, encoding="utf-8").read())
    rag_imports = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rag")
    ]
    assert [n.module for n in rag_imports] == ["rag.llm"]  # LLMJudge.self_judge only
    for fn in ("check_statement", "_tokens", "_order_problems"):
        src = ast.get_source_segment(open(judge_module.__file__).read(), _find(tree, fn))
        assert src and "rag" not in src.replace("paragraph", ""), fn


def _find(tree: ast.AST, name: str) -> ast.AST:
    return next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name)


@pytest.mark.parametrize(
    ("statement", "why"),
    [
        ("Qatar has not provided technical assistance to Bhutan.", "negation"),
        ("Bhutan has quietly provided technical assistance to Qatar's forces.", "order"),
        ("Qatar has quietly provided technical assistance to Nepal's forces.", "name"),
        ("Qatar has quietly sold technologies to Bhutan.", "word"),
        ("Qatar has provided technical assistance to Bhutan 12 times.", "number"),
        ("Qatar has provided technical assistance to Qatar and Bhutan.", "repeated"),
    ],
)
def test_unfaithful_statements_are_rejected_with_a_reason(statement: str, why: str) -> None:
    problems = check_statement(statement, S, "What did Qatar provide?")
    assert problems and any(why in p for p in problems), problems


@pytest.mark.parametrize(
    "statement",
    [
        "Qatar provided technical assistance to Bhutan's border security forces.",
        "Technical assistance",
        "Technical assistance to Bhutan's border security forces was provided by Qatar.",
    ],
)
def test_faithful_statements_pass(statement: str) -> None:
    assert check_statement(statement, S, "What did Qatar provide to Bhutan?") == []


def test_dropping_the_sentences_negation_is_caught() -> None:
    e = "Ticket prices will not change this year, according to the finance director."
    assert "drops the sentence's negation" in check_statement("Ticket prices will change.", e)
    assert check_statement("No, ticket prices will not change this year.", e) == []


def test_numbers_keep_what_they_count_and_their_spelling_is_free() -> None:
    e = "Each carries up to 240 passengers and 18 cars."
    assert check_statement("Up to 240 passengers.", e) == []
    assert check_statement("Each carries up to 18 passengers.", e)
    assert check_statement("It killed 30 to 60 percent.", "It killed 30–60% of them.") == []
    assert check_statement("At -18 °C.", "stored at minus 18 degrees Celsius") == []
    assert check_statement("Five.", "a five volume book") == []
    assert check_statement("1482 accessions", "the collection held 1,482 accessions") == []


def test_question_words_may_restate_but_names_must_be_in_the_sentence() -> None:
    e = "a specialist in Himalayan geopolitics at the Kathmandu Policy Forum"
    q = "Which institution is Dr. Tenzin Wangchuk affiliated with?"
    assert check_statement("He is affiliated with the Kathmandu Policy Forum.", e, q) == []
    assert check_statement("Dr. Tenzin Wangchuk is at the Kathmandu Policy Forum.", e, q)


def test_names_the_question_gives_may_be_restated_when_the_paragraph_holds_them() -> None:
    para = "Bhutan and Qatar set up ties. The signing of the Joint Communiqué in New York followed."
    e = "The signing of the Joint Communiqué in New York followed."
    q = "Where was the Joint Communiqué between Bhutan and Qatar signed?"
    st = "The Joint Communiqué between Bhutan and Qatar was signed in New York."
    assert check_statement(st, e, q, para) == []
    assert check_statement(st, e, q)  # without the paragraph: names not in the sentence
    # a name only the question brings, absent from the paragraph, is still not supported
    q2 = "Where was the Joint Communiqué between Bhutan and Nepal signed?"
    st2 = "The Joint Communiqué between Bhutan and Nepal was signed in New York."
    assert any("nepal" in p for p in check_statement(st2, e, q2, para))


def test_the_judge_checks_the_quote_is_in_the_cited_paragraph() -> None:
    j = DeterministicJudge()
    para = "Intro. " + S + " More."
    assert j.supported("Qatar provided technical assistance.", S, para, "") is True
    assert j.supported("Qatar provided technical assistance.", S, "Another paragraph.", "") is False
    assert j.supported("Qatar provided technical assistance.", "", para, "") is False


PARA = f"Over the past six months, several factors have converged. {S} It was welcomed."


@pytest.mark.parametrize(
    ("statement", "ok"),
    [
        (f"technical assistance — “{S}”", True),  # the chain's shape: lead, then the quote
        ("Qatar — Qatar has quietly provided technical assistance to Bhutan.", True),
        (f"financial aid — “{S}”", False),  # a lead the sentence does not hold
        ("Qatar — “Qatar has provided weapons to Bhutan's border security forces.”", False),
        ("technical assistance — Qatar has not provided technical assistance to Bhutan.", False),
    ],
)
def test_a_short_answer_lead_is_judged_with_its_sentence(statement: str, ok: bool) -> None:
    """ "<short answer> — <sentence>": the short answer must be words of the cited sentence,
    and a quotation must be the paragraph's words verbatim."""
    q = "What has Qatar provided to Bhutan?"
    assert DeterministicJudge().supported(statement, S, PARA, q) is ok
