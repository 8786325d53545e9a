"""The lexical stage on the adversarial set, and the cascade's use of the model (a fake scorer)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from evals.faithfulness import UNFAITHFUL_KINDS
from rag.verification import (
    CascadeVerifier,
    LexicalVerifier,
    LLMVerifier,
    Thresholds,
    Verdict,
    adds_nothing,
    answer_span,
    get_verifier,
    lexical_decision,
    load_thresholds,
)

ROOT = Path(__file__).resolve().parents[2]
CASES = [
    json.loads(line)
    for line in (ROOT / "evals" / "faithfulness.jsonl").read_text(encoding="utf-8").splitlines()
    if line.strip()
]
# Kinds whose statement says something the evidence does not (the "irrelevant" kind is true
# but does not answer; its rejection is the answer check's job).
UNFAITHFUL = set(UNFAITHFUL_KINDS)


def test_the_adversarial_set_is_the_one_the_issue_asks_for() -> None:
    kinds = {c["kind"] for c in CASES}
    assert len(CASES) >= 60 and len({c["doc"] for c in CASES}) >= 3
    assert UNFAITHFUL | {"irrelevant", "paraphrase"} <= kinds


@pytest.mark.parametrize(
    "case", [c for c in CASES if c["kind"] in UNFAITHFUL], ids=lambda c: str(c["id"])
)
def test_no_unfaithful_statement_is_shown_as_written_or_passed_by_words(case: dict) -> None:
    assert not adds_nothing(case["statement"], case["evidence"])
    d = lexical_decision(case["statement"], case["evidence"], case["question"])
    assert d.supported is not True, d.reason
    assert (
        not LexicalVerifier().verify(case["statement"], case["evidence"], case["question"]).accept
    )


@pytest.mark.parametrize(
    "case", [c for c in CASES if c["expected"] == "accept"], ids=lambda c: str(c["id"])
)
def test_the_lexical_stage_never_rejects_a_faithful_statement(case: dict) -> None:
    """What words decide "no" never reaches the model: it must be right."""
    d = lexical_decision(case["statement"], case["evidence"], case["question"])
    assert d.supported is not False, d.reason
    assert d.answers is not False, d.reason


def test_the_issue_examples_are_rejected_or_left_to_the_model() -> None:
    e1 = "The Lumen Institute was founded in 1987 by Ana Ortiz."
    e2 = "Its main office is in Porto, and a second office opened in Lyon in 2015."
    for statement, evidence in [
        ("The Lumen Institute was not founded by Ana Ortiz.", e1),
        ("Its main office is not in Porto.", e2),
        ("The Lumen Institute was never founded by Ana Ortiz.", e1),
        ("Garcia founded the Lumen Institute in 1987.", e1),
        ("Its main office isn't in Porto.", e2),
        ("The institute was founded without Ana Ortiz.", e1),
    ]:
        assert lexical_decision(statement, evidence).supported is False, statement
    for statement, evidence in [
        ("Ana Ortiz sold the Lumen Institute in 1987.", e1),
        (
            "Bhutan has signed the agreement with Qatar.",
            "Qatar has signed the agreement with Bhutan.",
        ),
        ("Jane Roe criticised the plan.", "The plan was criticised by Dr. Jane Roe."),
        ("The plan criticised Dr. Jane Roe.", "The plan was criticised by Dr. Jane Roe."),
        ("Its main office is in Porto.", "Critics say that its main office is in Porto."),
    ]:
        assert lexical_decision(statement, evidence).supported is None, statement
        assert not adds_nothing(statement, evidence), statement
    assert lexical_decision("Its main office is in Porto.", e2).supported is True
    # Dropping a negation is not "adding nothing".
    assert not adds_nothing("Its main office is in Porto", "Its main office is not in Porto.")


def test_the_answer_span_is_the_part_the_question_does_not_hold() -> None:
    e = (
        "“Cooperation matters,” notes Dr. Tenzin Wangchuk, "
        "a specialist at the Kathmandu Policy Forum."
    )
    q = "Which institution is Dr. Tenzin Wangchuk affiliated with?"
    s, t = answer_span("Dr. Tenzin Wangchuk is affiliated with the Kathmandu Policy Forum.", e, q)
    assert e[s:t] == "Kathmandu Policy Forum"
    e = "It dates back to its independence in 1949."
    s, t = answer_span("1949", e, "When did Bhutan become independent?")
    assert e[s:t] == "1949"


def test_a_statement_restating_the_whole_sentence_gets_no_short_answer() -> None:
    """When the answer's words are spread over the sentence, no part of it is the answer."""
    e = (
        "Within the next six months, we can anticipate increased trade between the two "
        "countries, particularly in sectors such as renewable energy and technology."
    )
    q = "In which sectors is trade between Bhutan and Qatar expected to increase?"
    assert answer_span(e, e, q) is None
    s, t = answer_span("Renewable energy and technology.", e, q)  # capitalised: still found
    assert e[s:t] == "renewable energy and technology"


class FakeScorer:
    """P(yes) from a table keyed by the statement/question line; counts calls."""

    def __init__(self, table: dict[str, float], default: float = 0.5) -> None:
        self.table = table
        self.default = default
        self.calls: list[str] = []

    def p_yes(self, messages: Sequence[dict[str, str]]) -> float:
        user = messages[-1]["content"]
        self.calls.append(user)
        for needle, p in self.table.items():
            if needle in user:
                return p
        return self.default


def cascade(table: dict[str, float], default: float = 0.5) -> tuple[CascadeVerifier, FakeScorer]:
    scorer = FakeScorer(table, default)
    return CascadeVerifier(LLMVerifier(scorer, Thresholds(support=0.6, answer=0.6))), scorer


def test_the_model_is_asked_only_what_words_cannot_decide() -> None:
    v, scorer = cascade({}, default=0.9)
    e = "The Lumen Institute was founded in 1987 by Ana Ortiz."
    assert v.verify("The Lumen Institute was not founded by Ana Ortiz.", e) == Verdict(
        False, None, 0.0, "lexical", "adds not"
    )
    assert scorer.calls == []
    verdict = v.verify("The Lumen Institute was founded in 1987 by Ana Ortiz.", e)
    assert verdict.supported and verdict.stage == "lexical" and scorer.calls == []
    # A paraphrase: the model decides support; with a question, also whether it answers.
    verdict = v.verify("Ana Ortiz founded the institute.", e, "Who founded the Lumen Institute?")
    assert verdict.accept and verdict.stage == "llm" and len(scorer.calls) == 2


def test_a_true_sentence_that_does_not_answer_is_rejected() -> None:
    v, _ = cascade({"Question:": 0.1}, default=0.9)
    e = "The Lumen Institute was founded in 1987 by Ana Ortiz."
    verdict = v.verify(
        "The Lumen Institute was founded in 1987 by Ana Ortiz.", e, "Who runs the Lumen Institute?"
    )
    assert verdict.supported and verdict.answers is False and not verdict.accept


def test_a_low_p_yes_rejects_a_reordered_statement() -> None:
    v, _ = cascade({"Statement: Bhutan has signed": 0.2}, default=0.9)
    verdict = v.verify(
        "Bhutan has signed the agreement with Qatar.", "Qatar has signed the agreement with Bhutan."
    )
    assert not verdict.supported and verdict.stage == "llm" and verdict.score == 0.2


def test_a_bare_answer_is_judged_with_its_question() -> None:
    v, scorer = cascade({}, default=0.9)
    v.verify(
        "Ana Ortiz", "The Lumen Institute was founded in 1987 by Ana Ortiz.", "Who founded it?"
    )
    assert "The answer to “Who founded it?” is: Ana Ortiz" in scorer.calls[0]


def test_verifiers_by_name() -> None:
    assert isinstance(get_verifier("lexical"), LexicalVerifier)
    with pytest.raises(ValueError, match="unknown verifier"):
        get_verifier("nli")
    t = load_thresholds()
    assert 0.0 < t.support < 1.0 and 0.0 < t.answer < 1.0


def test_without_the_model_support_check_an_undecided_statement_rests_on_the_answer_check() -> None:
    """The product default: the model is not asked whether a paraphrase says exactly what the
    sentence says (such a statement is shown only as the verbatim sentence); whether the
    sentence answers the question still decides."""
    scorer = FakeScorer({"Question:": 0.9}, default=0.0)
    v = CascadeVerifier(LLMVerifier(scorer, Thresholds(support=0.6, answer=0.6)), False)
    e = "The Lumen Institute was founded in 1987 by Ana Ortiz."
    verdict = v.verify("Ana Ortiz founded the institute.", e, "Who founded the Lumen Institute?")
    assert verdict.accept and len(scorer.calls) == 1 and "Question:" in scorer.calls[0]
    # words still reject what they can: a negation is never accepted
    assert not v.verify("Ana Ortiz never founded the institute.", e, "Who founded it?").accept
    off_topic = FakeScorer({"Question:": 0.1}, default=0.0)
    v = CascadeVerifier(LLMVerifier(off_topic, Thresholds(support=0.6, answer=0.6)), False)
    assert not v.verify("Ana Ortiz founded the institute.", e, "Who runs it today?").accept
