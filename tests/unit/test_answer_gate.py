"""The answer gate: the shipped fit loads, is the one its command rebuilds from the committed
signals, and ranks an answering sentence above adversarial ones at equal model scores."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rag.verification.answer_gate import (
    GATE_FILE,
    PICK_FILE,
    SIGNALS,
    AnswerGate,
    load_answer_gate,
    load_pick,
    signals,
)

ROOT = Path(__file__).resolve().parents[2]

PARAGRAPH = (
    "The harbour authority of Port Alder put two battery-electric ferries into service on the "
    "Kestrel Bay crossing. The project cost 38 million euros. The ferries were built in Gdynia."
)


def _score(question: str, statement: str, sentence: str, p: float = 0.5) -> float:
    gate = load_answer_gate()
    feats = signals(
        question=question,
        statement=statement,
        sentence=sentence,
        paragraph=PARAGRAPH,
        p_answers=p,
        rank=1,
        similarity=0.5,
        distinctive=None,
        answer_logprob=-0.1,
    )
    return gate.score(feats)


def test_the_shipped_gate_loads_with_its_measurements() -> None:
    gate = load_answer_gate()
    data = json.loads(GATE_FILE.read_text(encoding="utf-8"))
    feats = signals(
        question="q?",
        statement="s",
        sentence="s.",
        paragraph="s.",
        p_answers=0.5,
        rank=1,
        similarity=0.5,
        distinctive=None,
        answer_logprob=-0.1,
    )
    assert tuple(feats) == SIGNALS
    assert gate.names and set(gate.names) <= set(SIGNALS)  # the fitted subset of the signals
    assert 0.0 < gate.threshold < 1.0
    measured = data["measured"]
    # A gate without its out-of-fold measurement is not shipped.
    assert measured["auc_items_oof"] > 0.5 and measured["questions"] >= 100
    assert data["command"].startswith("bench/answer_gate.py fit")


def test_the_command_in_the_gate_file_rebuilds_it(tmp_path: Path) -> None:
    data = json.loads(GATE_FILE.read_text(encoding="utf-8"))
    out = tmp_path / "gate.json"
    args = data["command"].split()[1:]  # "fit" and its options
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "answer_gate.py"), *args, "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    rebuilt = json.loads(out.read_text(encoding="utf-8"))
    assert rebuilt["features"] == data["features"]
    assert rebuilt["threshold"] == data["threshold"]
    assert rebuilt["coef"] == pytest.approx(data["coef"], abs=1e-9)


def test_the_answer_check_reads_the_sentence_in_its_section() -> None:
    from rag.checking import section_of
    from rag.types import Passage
    from rag.verification.prompts import answer_messages

    with_heading = Passage("kestrel-bay-ferries.html", 3, "Ferries › Cost", PARAGRAPH, 1.0)
    bare = Passage("kestrel-bay_ferries.md", 3, "", PARAGRAPH, 1.0)
    assert section_of(with_heading) == "Ferries › Cost"
    assert section_of(bare) == "kestrel bay ferries"  # no heading: the document's name
    q, s = "How much did the Kestrel Bay ferry project cost?", "The project cost 38 million euros."
    last = answer_messages(s, q, section_of(with_heading))[-1]["content"]
    assert last.startswith("Section: Ferries › Cost\n") and s in last and q in last
    assert "Section:" not in answer_messages(s, q)[-1]["content"]


def test_the_model_saying_no_lowers_the_score() -> None:
    q = "How much did the Kestrel Bay ferry project cost?"
    s = "The project cost 38 million euros."
    assert _score(q, s, s, p=0.95) > _score(q, s, s, p=0.05)


def test_a_gate_refuses_to_score_without_a_signal_it_uses() -> None:
    feats = signals(
        question="How much did it cost?",
        statement="38 million euros",
        sentence="The project cost 38 million euros.",
        paragraph=PARAGRAPH,
        p_answers=0.9,
        rank=1,
        similarity=0.5,
        distinctive=None,
        answer_logprob=None,  # the model gave no log-probabilities
    )
    gate = AnswerGate(
        names=("logit_answers", "answer_logprob"),
        mean=(0.0, -1.0),
        scale=(1.0, 1.0),
        coef=(1.0, 1.0),
        intercept=0.0,
        threshold=0.5,
    )
    with pytest.raises(ValueError, match="answer_logprob"):
        gate.score(feats)
    assert 0.0 < gate.score({**feats, "answer_logprob": -0.5}) < 1.0


def test_the_shipped_pick_counts_what_its_recorded_questions_say() -> None:
    """The reader's-pick threshold: recounted here from the committed scores, at the shipped
    setting it answers the counted questions, and more of them with the gold answer than
    unanswerable ones."""
    pick = load_pick()
    data = json.loads(PICK_FILE.read_text(encoding="utf-8"))
    assert data["command"] == "bench/answer_gate.py pick-fit"
    assert pick.top >= 1 and 0.0 < pick.threshold < 1.0
    scores = ROOT / "bench" / "data" / "answer_gate_pick_scores.jsonl"
    rows = [json.loads(line) for line in scores.read_text(encoding="utf-8").splitlines()]
    gold = false = 0
    for row in rows:
        shown = [t for t in row["tops"][: pick.top] if t["score"] >= pick.threshold]
        if not shown:
            continue
        best = max(shown, key=lambda t: t["score"])
        if row["answerable"]:
            gold += best["gold"]
        else:
            false += 1
    measured = data["measured"]
    assert measured["questions"] == len(rows) >= 100
    assert (measured["gold_answered"], measured["unanswerable_answered"]) == (gold, false)
    assert gold > false
    # Under the threshold, from the evidence floor, the best sentence is an abstention's
    # evidence: it holds the gold answer for most answerable questions nothing answered.
    assert 0.0 < pick.evidence_floor < pick.threshold
    firsts = [(r, max(r["tops"][: pick.top], key=lambda t: t["score"])) for r in rows if r["tops"]]
    near = [(r, t) for r, t in firsts if t["score"] >= pick.evidence_floor]
    held = sum(t["gold"] for r, t in near if r["answerable"])
    assert (measured["evidence_gold"], measured["evidence_unanswerable"]) == (
        held,
        sum(not r["answerable"] for r, _ in near),
    )
    answerable = sum(r["answerable"] for r in rows)
    assert held >= 0.6 * answerable
