"""Every evaluation metric against hand-computed values."""

from __future__ import annotations

import pytest

from evals import metrics as m

P_GOOD = "Dr. Tenzin Wangchuk is a specialist at the Kathmandu Policy Forum. He writes often."
P_OTHER = "Qatar benefits from significant hydrocarbon reserves."
P_THIRD = "The signing took place in New York this month."
EV = ["specialist at the Kathmandu Policy Forum"]


# -- evidence matching -----------------------------------------------------------------------


def test_contains_evidence_ignores_case_whitespace_and_typographic_quotes() -> None:
    assert m.contains_evidence("Bhutan’s  NEUTRALITY\nis old", ["bhutan's neutrality is"])
    assert not m.contains_evidence(P_OTHER, EV)
    assert not m.contains_evidence(P_GOOD, [])
    assert not m.contains_evidence(P_GOOD, ["   "])


def test_evidence_coverage_any_versus_all() -> None:
    ev = ["Kathmandu Policy Forum", "New York"]
    assert m.evidence_coverage([P_GOOD], ev) == 1.0
    assert m.evidence_coverage([P_GOOD], ev, all_required=True) == 0.5
    assert m.evidence_coverage([P_GOOD, P_THIRD], ev, all_required=True) == 1.0
    assert m.evidence_coverage([P_OTHER], ev) == 0.0
    assert m.evidence_coverage([P_GOOD], []) == 0.0


# -- retrieval -------------------------------------------------------------------------------


def test_recall_at_k_and_mrr() -> None:
    ranked = [P_OTHER, P_THIRD, P_GOOD]
    assert m.recall_at_k(ranked, EV, 1) == 0.0
    assert m.recall_at_k(ranked, EV, 2) == 0.0
    assert m.recall_at_k(ranked, EV, 3) == 1.0
    assert m.reciprocal_rank(ranked, EV) == pytest.approx(1 / 3)
    assert m.reciprocal_rank(ranked, EV, k=2) == 0.0
    assert m.reciprocal_rank([P_GOOD], EV) == 1.0
    assert m.reciprocal_rank([], EV) == 0.0


def test_recall_at_k_multi_paragraph_is_fractional() -> None:
    ev = ["Kathmandu Policy Forum", "New York"]
    assert m.recall_at_k([P_GOOD, P_OTHER, P_THIRD], ev, 2, all_required=True) == 0.5
    assert m.recall_at_k([P_GOOD, P_OTHER, P_THIRD], ev, 3, all_required=True) == 1.0


def test_rank_of() -> None:
    assert m.rank_of([("a", 1), ("a", 2)], ("a", 2)) == 2
    assert m.rank_of([("a", 1)], ("b", 1)) is None


# -- answer correctness ----------------------------------------------------------------------


def test_normalize_answer_is_squad_normalisation() -> None:
    assert m.normalize_answer("The  Kathmandu Policy-Forum!") == "kathmandu policyforum"
    assert m.normalize_answer("An apple, a pear and THE plum.") == "apple pear and plum"
    assert m.normalize_answer("“Quoted”") == "quoted"


def test_token_f1_hand_computed() -> None:
    # prediction tokens: kathmandu policy forum in nepal (5); gold: kathmandu policy forum (3)
    # overlap 3: precision 3/5, recall 3/3, F1 = 2*0.6*1/(1.6) = 0.75
    assert m.token_f1(
        "the Kathmandu Policy Forum in Nepal", "Kathmandu Policy Forum"
    ) == pytest.approx(0.75)
    assert m.token_f1("New York", "Kathmandu") == 0.0
    assert m.token_f1("", "") == 1.0
    assert m.token_f1("a", "Kathmandu") == 0.0  # prediction normalises to nothing
    assert m.exact_match("The New York.", "new york") == 1.0


def test_answer_f1_best_gold_or_joined() -> None:
    assert m.answer_f1("New York", ["Paris", "New York"]) == 1.0
    # all_answers: gold "renewable energy technology" (3 tokens) vs prediction "renewable energy"
    # precision 2/2, recall 2/3 -> F1 0.8
    assert m.answer_f1(
        "renewable energy", ["renewable energy", "technology"], all_answers=True
    ) == pytest.approx(0.8)
    assert m.answer_f1("anything", []) == 0.0


def test_answer_contains_whole_words_any_or_all() -> None:
    assert (
        m.answer_contains("It is at the Kathmandu Policy Forum. [1]", ["Kathmandu Policy Forum"])
        == 1.0
    )
    assert m.answer_contains("In 19490 years", ["1949"]) == 0.0  # whole words only
    assert (
        m.answer_contains("renewable energy", ["renewable energy", "technology"], all_answers=True)
        == 0.0
    )
    assert (
        m.answer_contains(
            "renewable energy and technology", ["renewable energy", "technology"], True
        )
        == 1.0
    )
    assert m.answer_contains("x", []) == 0.0
    assert m.answer_contains("5-10 years", ["5-10 years"]) == 1.0


def test_strip_markers() -> None:
    assert m.strip_markers("A fact. [1] Another. [2]") == "A fact. Another."


# -- citations (ALCE) ------------------------------------------------------------------------


def test_citations_all_relevant() -> None:
    s = m.citation_scores([P_GOOD], EV, answerable=True, abstained=False)
    assert (s.recall, s.precision, s.n_citations, s.n_relevant) == (1.0, 1.0, 1, 1)


def test_alce_precision_irrelevant_citation_is_penalised() -> None:
    # Two citations, one contains evidence: recall 1 (jointly supported), precision 1/2
    # (the other is irrelevant: alone it supports nothing and dropping it changes nothing).
    s = m.citation_scores([P_GOOD, P_OTHER], EV, answerable=True, abstained=False)
    assert s.recall == 1.0
    assert s.precision == 0.5


def test_alce_no_precision_credit_when_nothing_is_supported() -> None:
    s = m.citation_scores([P_OTHER, P_THIRD], EV, answerable=True, abstained=False)
    assert s.recall == 0.0
    assert s.precision == 0.0


def test_alce_multi_paragraph_partial_recall() -> None:
    ev = ["Kathmandu Policy Forum", "New York"]
    s = m.citation_scores(
        [P_GOOD, P_OTHER], ev, answerable=True, abstained=False, all_required=True
    )
    assert s.recall == 0.5
    assert s.precision == 0.5
    s = m.citation_scores(
        [P_GOOD, P_THIRD], ev, answerable=True, abstained=False, all_required=True
    )
    assert (s.recall, s.precision) == (1.0, 1.0)


def test_empty_citation_cases() -> None:
    # answerable, answered without citations: recall 0, precision not applicable
    s = m.citation_scores([], EV, answerable=True, abstained=False)
    assert (s.recall, s.precision) == (0.0, None)
    # abstention: neither applies (for answerable and unanswerable questions)
    assert m.citation_scores([], EV, answerable=True, abstained=True).recall is None
    assert m.citation_scores([], EV, answerable=True, abstained=True).precision is None
    assert m.citation_scores([], [], answerable=False, abstained=True).precision is None
    # unanswerable but answered: recall n/a; any citation is irrelevant
    s = m.citation_scores([P_GOOD], [], answerable=False, abstained=False)
    assert (s.recall, s.precision) == (None, 0.0)
    s = m.citation_scores([], [], answerable=False, abstained=False)
    assert (s.recall, s.precision) == (None, None)


# -- faithfulness ----------------------------------------------------------------------------


def test_split_and_pair_statements() -> None:
    text = "He works at the Kathmandu Policy Forum. [1] “Qatar benefits from reserves.” [2]"
    assert m.split_statements(text) == [
        ("He works at the Kathmandu Policy Forum.", 1),
        ("“Qatar benefits from reserves.”", 2),
    ]
    cites = [{"marker": 1, "quote": "a"}, {"marker": 2, "quote": "b"}]
    pairs = m.pair_statements(text, cites)
    assert [p[0] for p in pairs] == [
        "He works at the Kathmandu Policy Forum.",
        "“Qatar benefits from reserves.”",
    ]
    # two citations sharing marker 1 and two sentences ending in [1]
    text2 = "First fact. [1] Second fact. [1]"
    pairs2 = m.pair_statements(text2, [{"marker": 1}, {"marker": 1}])
    assert [p[0] for p in pairs2] == ["First fact.", "Second fact."]
    # a citation whose marker has no sentence gets the whole answer
    pairs3 = m.pair_statements("Only text. [1]", [{"marker": 1}, {"marker": 3}])
    assert pairs3[1][0] == "Only text."


# -- abstention ------------------------------------------------------------------------------


def test_abstention_scores_hand_computed() -> None:
    answerable = [True, True, True, True, False, False, False]
    abstained = [False, False, False, True, True, True, False]
    s = m.abstention_scores(answerable, abstained)
    assert (s.tp, s.fp, s.fn, s.tn) == (2, 1, 1, 3)
    assert s.precision == pytest.approx(2 / 3)
    assert s.recall == pytest.approx(2 / 3)
    assert s.f1 == pytest.approx(2 / 3)
    assert s.false_abstention_rate == pytest.approx(1 / 4)


def test_abstention_scores_undefined_cases() -> None:
    s = m.abstention_scores([True, True], [False, False])
    assert s.precision is None and s.recall is None and s.f1 is None
    assert s.false_abstention_rate == 0.0
    s = m.abstention_scores([False], [False])
    assert s.precision is None and s.recall == 0.0 and s.f1 is None
    assert s.false_abstention_rate is None
    s = m.abstention_scores([True, False], [True, False])
    assert (s.precision, s.recall, s.f1) == (0.0, 0.0, 0.0)


# -- aggregation -----------------------------------------------------------------------------


def test_mean_percentile_agreement() -> None:
    assert m.mean([1.0, None, 0.0]) == 0.5
    assert m.mean([None]) is None
    assert m.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert m.percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95) == pytest.approx(4.8)
    assert m.percentile([], 50) is None
    assert m.percentile([7.0], 95) == 7.0
    assert m.agreement([True, False, None, True], [True, True, True, None]) == (0.5, 2)
    assert m.agreement([None], [True]) == (None, 0)
