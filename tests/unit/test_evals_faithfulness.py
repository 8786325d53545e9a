"""The faithfulness suite: the labelled set itself, and what the suite says about verifiers
(a perfect one passes, the old overlap-only behaviour fails, a crashing one is an error)."""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from evals import cli
from evals.faithfulness import (
    DEFAULT_SET,
    KINDS,
    UNFAITHFUL_KINDS,
    FaithfulnessError,
    accepted,
    get_verifier,
    load_cases,
    run_suite,
)
from evals.gates import load_json
from evals.runner import DEFAULT_THRESHOLDS
from tests.conftest import CORPUS, ROOT, SQUAD_DEV

THRESHOLDS = load_json(DEFAULT_THRESHOLDS)["faithfulness"]


@dataclass
class Verdict:
    supported: bool
    answers: bool | None = None
    score: float = 0.0
    stage: str = "fake"
    reason: str = ""


class OracleVerifier:
    """Decides as labelled (a verifier with no holes)."""

    def __init__(self) -> None:
        self.labels = {(c.statement, c.evidence, c.question): c for c in load_cases()}

    def verify(self, statement: str, evidence: str, question: str) -> Verdict:
        c = self.labels[(statement, evidence, question)]
        if c.kind == "irrelevant":
            return Verdict(True, answers=False)
        return Verdict(c.expected == "accept", answers=True)


_STOP = set(
    """a an the and or of in on at to for from with by is are was were be been it its this
    that these those as not no nor never has have had do does did will would can could""".split()
)


def _content(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP]


class OverlapVerifier:
    """The old lexical behaviour: supported when >= 60 % of the statement's content words are
    in the evidence; stop words, "not" among them, ignored; no check of the question."""

    def verify(self, statement: str, evidence: str, question: str) -> Verdict:
        words = _content(statement)
        have = set(_content(evidence))
        share = sum(1 for w in words if w in have) / len(words) if words else 0.0
        return Verdict(share >= 0.6, answers=None, score=share)


class CrashOnce(OracleVerifier):
    def verify(self, statement: str, evidence: str, question: str) -> Verdict:
        if statement == "The Joint Communiqué was signed in Doha.":
            raise RuntimeError("model server went away")
        return super().verify(statement, evidence, question)


# -- the labelled set -------------------------------------------------------------------------


def _document_texts() -> dict[str, str]:
    from rag.loading import load_document

    texts = {"bhutan-qatar.md": (CORPUS / "bhutan-qatar.md").read_text(encoding="utf-8")}
    squad = json.loads(SQUAD_DEV.read_text(encoding="utf-8"))
    for art in squad["data"]:
        texts[f"squad:{art['title']}"] = " ".join(p["context"] for p in art["paragraphs"])
    for path in (ROOT / "evals" / "docs").glob("*.*"):
        if path.suffix in (".html", ".pdf"):
            texts[path.name] = load_document(path, path.name).text
    return {k: " ".join(v.split()) for k, v in texts.items()}


def test_the_set_covers_every_kind_on_several_kinds_of_document() -> None:
    cases = load_cases()
    assert len(cases) >= 80
    docs = Counter(c.doc for c in cases)
    assert "bhutan-qatar.md" in docs
    assert sum(1 for d in docs if d.startswith("squad:")) >= 3
    assert {"kestrel-bay-ferries.html", "marlow-seed-bank.pdf"} <= set(docs)
    kinds = Counter(c.kind for c in cases)
    assert set(kinds) == set(KINDS)
    assert kinds["paraphrase"] >= 20
    # bare short answers (a name, a number) to questions that ask for them must be accepted
    bare = [c for c in cases if c.kind == "paraphrase" and len(c.statement.split()) <= 3]
    assert len(bare) >= 10
    for c in cases:
        want = "accept" if c.kind in ("paraphrase", "verbatim") else "reject"
        assert c.expected == want, c.id
        if c.kind == "verbatim":
            assert c.statement == c.evidence, c.id


def test_every_evidence_sentence_is_verbatim_in_its_document() -> None:
    texts = _document_texts()
    for c in load_cases():
        assert " ".join(c.evidence.split()) in texts[c.doc], (c.id, c.evidence[:60])


def test_a_bad_line_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "f.jsonl"
    bad.write_text(DEFAULT_SET.read_text().splitlines()[0] + '\n{"id": "x", "kind": "typo"}\n')
    with pytest.raises(FaithfulnessError, match="line 2"):
        load_cases(bad)


# -- the suite on verifiers ------------------------------------------------------------------


def test_a_verifier_without_holes_passes_every_gate() -> None:
    rep = run_suite("oracle", verifier=OracleVerifier(), thresholds=THRESHOLDS)
    assert rep["passed"], [g["message"] for g in rep["gates"] if not g["passed"]]
    m = rep["metrics"]
    assert m["accept_precision"]["value"] == 1.0 and m["unfaithful_accepted"]["value"] == 0
    assert m["correct.negation"]["ci_method"] == "wilson"


def test_the_suite_fails_the_old_overlap_only_verifier(tmp_path: Path) -> None:
    """The holes of word-overlap verification are shown, not averaged away."""
    rep = run_suite("overlap", verifier=OverlapVerifier(), thresholds=THRESHOLDS, out_dir=tmp_path)
    assert not rep["passed"]
    m = rep["metrics"]
    failed = {g["metric"] for g in rep["gates"] if not g["passed"]}
    # a negation only adds "not": overlap cannot see it; a role swap keeps every word
    assert m["correct.negation"]["value"] < 0.5 and "correct.negation" in failed
    assert m["correct.role_swap"]["value"] < 0.5 and "correct.role_swap" in failed
    assert m["correct.irrelevant"]["value"] == 0.0 and "correct.irrelevant" in failed
    assert m["unfaithful_accepted"]["value"] >= 10 and "unfaithful_accepted" in failed
    md = (tmp_path / "faithfulness.md").read_text()
    assert "**Gate: FAILED**" in md and "| negation | reject | 11 |" in md
    assert "Bhutan has quietly provided technical assistance to Qatar" in md  # a listed miss


def test_a_verifier_error_is_counted_and_fails_the_gate() -> None:
    rep = run_suite("crash", verifier=CrashOnce(), thresholds=THRESHOLDS)
    crashed = [r for r in rep["cases"] if r["outcome"] == "error"]
    assert len(crashed) == 1 and "went away" in crashed[0]["error"]
    assert not crashed[0]["correct"]  # never a decision, right or wrong
    assert rep["metrics"]["errors"]["value"] == 1
    assert not rep["passed"]
    assert [g["metric"] for g in rep["gates"] if not g["passed"]] == [
        "correct.wrong_entity",
        "errors",
    ]


def test_accept_means_supported_and_not_missing_the_question() -> None:
    assert accepted(Verdict(True, answers=True)) and accepted(Verdict(True, answers=None))
    assert not accepted(Verdict(True, answers=False))
    assert not accepted(Verdict(False, answers=True))


def test_missing_rag_verification_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rag.verification", None)  # import raises ImportError
    with pytest.raises(FaithfulnessError, match="rag.verification is not available"):
        get_verifier("default")
    res = CliRunner().invoke(cli.app, ["faithfulness", "--verifier", "lexical", "--out", "/tmp/x"])
    assert res.exit_code == 2
    assert res.output.strip().count("\n") == 0 and "rag.verification" in res.output
    assert "Traceback" not in res.output


def test_the_real_verifier_interface_is_called_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    seen: list[Any] = []
    fake = types.ModuleType("rag.verification")

    def get(name: str, settings: Any) -> Any:
        seen.append(name)
        return OverlapVerifier()

    fake.get_verifier = get  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "rag.verification", fake)
    rep = run_suite("lexical", thresholds=THRESHOLDS, settings=object())
    assert seen == ["lexical"] and not rep["passed"]


def test_the_evals_judge_as_a_verifier_catches_most_support_errors() -> None:
    """The evals' own judge checks support only: it must catch most unfaithful statements and
    accept most faithful ones; it cannot see irrelevance (that is the verifier's answers check)."""
    rep = run_suite("evals-judge", thresholds=THRESHOLDS)
    rows = rep["cases"]
    unf = [r for r in rows if r["kind"] in UNFAITHFUL_KINDS]
    faithful = [r for r in rows if r["expected"] == "accept"]
    assert sum(r["outcome"] == "reject" for r in unf) / len(unf) >= 0.85
    assert sum(r["outcome"] == "accept" for r in faithful) / len(faithful) >= 0.9
    assert rep["metrics"]["correct.negation"]["value"] == 1.0
    assert all(r["answers"] is None for r in rows)
