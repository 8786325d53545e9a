"""The default verifier (lexical stage + the packaged model's calibrated P(yes)) on the
adversarial set ``evals/faithfulness.jsonl``, against the targets of the verification issue."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.settings import Settings
from rag.verification import Verdict, adds_nothing, get_verifier
from rag.verification.lexical import is_phrase

pytestmark = [pytest.mark.integration, pytest.mark.llm]

ROOT = Path(__file__).resolve().parents[2]
CASES = [
    json.loads(line)
    for line in (ROOT / "evals" / "faithfulness.jsonl").read_text(encoding="utf-8").splitlines()
    if line.strip()
]


@pytest.fixture(scope="module")
def verdicts() -> dict[str, Verdict]:
    settings = Settings(models_dir=ROOT / "data" / "models")
    v = get_verifier("default", settings)
    return {c["id"]: v.verify(c["statement"], c["evidence"], c["question"]) for c in CASES}


def shown_as_written(case: dict, verdict: Verdict) -> bool:
    """What the chain shows for an accepted statement: as written only if it adds nothing."""
    return (
        verdict.accept
        and not is_phrase(case["statement"])
        and adds_nothing(case["statement"], case["evidence"])
    )


def test_no_unfaithful_statement_is_shown_as_written(verdicts: dict[str, Verdict]) -> None:
    bad = [
        c["id"]
        for c in CASES
        if c["expected"] == "reject" and shown_as_written(c, verdicts[c["id"]])
    ]
    assert bad == []


def test_faithful_paraphrases_are_accepted(verdicts: dict[str, Verdict]) -> None:
    faithful = [c for c in CASES if c["expected"] == "accept"]
    accepted = [c["id"] for c in faithful if verdicts[c["id"]].accept]
    assert len(accepted) >= 0.8 * len(faithful), sorted({c["id"] for c in faithful} - set(accepted))


def test_true_but_irrelevant_sentences_are_rejected(verdicts: dict[str, Verdict]) -> None:
    irrelevant = [c for c in CASES if c["kind"] == "irrelevant"]
    rejected = [c["id"] for c in irrelevant if not verdicts[c["id"]].accept]
    assert len(rejected) >= 0.9 * len(irrelevant), [
        c["id"] for c in irrelevant if c["id"] not in rejected
    ]


def test_every_verdict_says_which_stage_decided(verdicts: dict[str, Verdict]) -> None:
    assert {v.stage for v in verdicts.values()} == {"lexical", "llm"}
    assert all(0.0 <= v.score <= 1.0 and v.reason for v in verdicts.values())
