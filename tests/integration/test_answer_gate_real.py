"""The shipped answer gate with the packaged model's answer check, on the adversarial set
``evals/faithfulness.jsonl`` (never used to fit the gate): a true sentence that does not answer
the question is not confirmed, and a sentence that answers it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.faithfulness import load_cases
from rag.checking import section_of
from rag.settings import Settings
from rag.types import Passage
from rag.verification import get_verifier
from rag.verification.answer_gate import load_answer_gate, signals

pytestmark = [pytest.mark.integration, pytest.mark.llm]

ROOT = Path(__file__).resolve().parents[2]
CASES = load_cases()


@pytest.fixture(scope="module")
def passed() -> dict[str, bool]:
    """Case id -> whether the gate confirms that its sentence answers its question (the
    sentence from the top-ranked paragraph, the model's statement being the sentence itself)."""
    checks = get_verifier("default", Settings(models_dir=ROOT / "data" / "models")).llm
    gate = load_answer_gate()
    out = {}
    for c in CASES:
        if c.kind not in ("irrelevant", "paraphrase", "verbatim"):
            continue  # the other kinds are statements the sentence does not state: not the gate's
        passage = Passage(c.doc.removeprefix("squad:"), 1, "", c.evidence, 1.0)
        p = checks.answer_score(c.evidence, c.question, section_of(passage))
        feats = signals(
            question=c.question,
            statement=c.evidence,
            sentence=c.evidence,
            paragraph=c.evidence,
            p_answers=p,
            rank=1,
            similarity=0.5,
            distinctive=None,
            answer_logprob=None,  # the model wrote none of these
        )
        out[c.id] = gate.score(feats) >= gate.threshold
    return out


def test_true_but_irrelevant_sentences_are_not_confirmed(passed: dict[str, bool]) -> None:
    irrelevant = [c.id for c in CASES if c.kind == "irrelevant"]
    confirmed = [i for i in irrelevant if passed[i]]
    assert len(confirmed) <= 0.1 * len(irrelevant), confirmed


def test_most_answering_sentences_are_confirmed(passed: dict[str, bool]) -> None:
    answering = [c.id for c in CASES if c.expected == "accept"]
    refused = [i for i in answering if not passed[i]]
    print(f"refused {len(refused)} of {len(answering)}: {refused}")
    assert len(refused) <= 0.25 * len(answering), refused
