"""``rag.written``: how sure the model was of the words of a statement, read from the tokens it
wrote (the answer gate's ``answer_logprob``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rag.written import Written, _Observer


def _written(pairs: list[tuple[str, float]]) -> Written:
    w = Written()
    for piece, logprob in pairs:
        w.add(piece, logprob)
    return w


OUTPUT = [("Answer", -0.01), (" [", -0.01), ("P", -0.01), ("1", -0.9), ("]:", -0.01),
          (" New", -0.05), (" York", -2.3), ("\n", -0.2), ("Answer", -0.4), (" [", -0.01),
          ("P", -0.01), ("2", -0.1), ("]:", -0.01), (" 1949", -0.02)]  # fmt: skip


def test_a_statement_is_as_sure_as_its_least_likely_token() -> None:
    w = _written(OUTPUT)
    assert w.least_likely("New York") == pytest.approx(-2.3)
    # The other line's words only: neither the paragraph number nor the first line counts.
    assert w.least_likely("1949") == pytest.approx(-0.02)
    assert w.least_likely(" 1949 ") == pytest.approx(-0.02)  # stripped like a parsed statement


def test_a_statement_not_written_as_such_is_as_sure_as_the_whole_output() -> None:
    assert _written(OUTPUT).least_likely("New York in 1949") == pytest.approx(-2.3)
    assert Written().least_likely("anything") == 0.0


def test_a_character_split_across_tokens_belongs_to_the_token_that_completes_it() -> None:
    text = "Answer [P1]: Zürich"
    data = text.encode()
    cut = data.index("ü".encode()) + 1  # inside the two bytes of ü
    tokens = {1: data[:cut], 2: data[cut:]}
    w = Written(lambda ids: b"".join(tokens[i] for i in ids))
    w.add_id(1, -0.1)
    w.add_id(2, -1.5)
    assert "".join(w.pieces) == text
    assert w.least_likely("Zürich") == pytest.approx(-1.5)


def test_the_observer_records_the_most_likely_token_and_leaves_the_logits_alone() -> None:
    w = Written(lambda ids: b"x" * len(ids))
    scores = np.array([0.0, 2.0, 1.0], dtype=np.single)
    out = _Observer(w)(np.array([5], dtype=np.intc), scores)
    assert out is scores and list(scores) == [0.0, 2.0, 1.0]
    expected = 2.0 - math.log(math.exp(0.0) + math.exp(2.0) + math.exp(1.0))
    assert w.logprobs == [pytest.approx(expected)] and w.pieces == ["x"]
