"""No green run on a broken chain (errors, missing metrics), intervals, run comparison,
generated questions and the eval corpus, with a fake chain (no models)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from evals import cli
from evals.compare import CompareError, compare, render_markdown
from evals.corpus import assemble, eval_documents
from evals.generate import (
    answer_targets,
    check_answerable,
    check_unanswerable,
    generate_questions,
    parse_reply,
)
from evals.runner import run_suite as REAL_RUN_SUITE
from evals.stats import bootstrap, paired_delta, wilson
from tests.unit.test_evals_pipeline import QUESTIONS, FakeChain


def _question_file(tmp_path: Path) -> Path:
    qf = tmp_path / "q.jsonl"
    qf.write_text("\n".join(json.dumps(q.model_dump()) for q in QUESTIONS) + "\n")
    return qf


def _cli_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chain: Any, thresholds: dict[str, Any]
) -> Any:
    import evals.runner as runner

    def fake_run_suite(questions: Any, settings: Any, out_dir: Path, **kw: Any) -> Any:
        return REAL_RUN_SUITE(questions, settings, out_dir, chain=chain, index=False, **kw)

    monkeypatch.setattr(runner, "run_suite", fake_run_suite)
    th = tmp_path / "th.json"
    th.write_text(json.dumps({"fixed": thresholds}))
    args = ["run", "--questions", str(_question_file(tmp_path)), "--out", str(tmp_path / "o")]
    args += ["--thresholds", str(th), "--baseline", str(tmp_path / "b.json"), "--no-progress"]
    return CliRunner().invoke(cli.app, args)


class ChainThatFailsOn:
    """The fake chain, except that it raises on one question."""

    def __init__(self, qid_question: str) -> None:
        self.bad = qid_question
        self.inner = FakeChain()

    def invoke(self, question: str, history: Any = None) -> Any:
        if question == self.bad:
            raise ConnectionError("llama.cpp server refused the connection")
        return self.inner.invoke(question, history)


GATES = {"min": {"overall_accuracy": 0.25, "abstention_recall": 0.5}}


def test_an_exception_on_an_unanswerable_question_fails_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok = _cli_run(tmp_path, monkeypatch, FakeChain(), GATES)
    assert ok.exit_code == 0, ok.output
    # u1 is unanswerable and the fake chain abstains on it: a crash there must not look like
    # a correct abstention
    res = _cli_run(
        tmp_path, monkeypatch, ChainThatFailsOn("What is the population of Bhutan?"), GATES
    )
    assert res.exit_code == 1, res.output
    assert "GATE FAILED errors = 1 > 0" in res.output
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    u1 = next(s for s in report["questions"] if s["id"] == "u1")
    assert u1["outcome"] == "error" and u1["abstained"] is False and u1["correct"] is False
    assert report["metrics"]["errors"]["value"] == 1
    # the abstention metrics leave the error out instead of crediting it
    assert report["metrics"]["abstention_recall"]["n"] == 1
    assert report["metrics"]["overall_accuracy"]["value"] == 0.25
    md = (tmp_path / "o" / "report.md").read_text()
    assert "ERROR: ConnectionError: llama.cpp server refused" in md


def test_a_generation_timeout_is_an_error_not_an_abstention() -> None:
    from evals.scoring import prediction_record
    from rag.types import ABSTENTION_TEXT, Answer

    q = QUESTIONS[2]
    timed_out = Answer(
        ABSTENTION_TEXT, True, reason="the model did not finish within 90 s (RAG_LLM__TIMEOUT_S)"
    )
    row = prediction_record(q, timed_out)
    assert row["outcome"] == "error" and row["abstained"] is False and "90 s" in row["error"]
    row = prediction_record(q, Answer(ABSTENTION_TEXT, True, reason="no verified statement"))
    assert row["outcome"] == "abstained" and "error" not in row


def test_a_misspelled_threshold_name_fails_its_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    res = _cli_run(tmp_path, monkeypatch, FakeChain(), {"min": {"overal_accuracy": 0.1}})
    assert res.exit_code == 1
    assert "overal_accuracy: not in this run; the gate cannot pass" in res.output
    # marked optional, a missing metric does not fail (e.g. an LLM judge not asked for)
    th = {"min": {"faithfulness_llm_judge": 0.9}, "optional": ["faithfulness_llm_judge"]}
    assert _cli_run(tmp_path, monkeypatch, FakeChain(), th).exit_code == 0


def test_an_interrupted_run_reports_what_it_answered_and_fails(tmp_path: Path) -> None:
    class Interrupted(FakeChain):
        def invoke(self, question: str, history: Any = None) -> Any:
            if question.startswith("What is the population"):
                raise KeyboardInterrupt
            return super().invoke(question, history)

    from rag.settings import Settings

    res = REAL_RUN_SUITE(
        QUESTIONS,
        Settings(),
        tmp_path,
        chain=Interrupted(),
        index=False,
        progress=False,
        thresholds_path=None,
        baseline_path=None,
    )
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["n_questions"] == 2 and report["interrupted"] is True
    assert report["subset"] == "2 of 4 questions (interrupted)"
    assert not res.passed and report["passed"] is False


def test_a_suite_without_thresholds_is_not_green(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    res = _cli_run(tmp_path, monkeypatch, FakeChain(), {})
    assert res.exit_code == 1 and "nothing would be gated" in res.output


# -- intervals -------------------------------------------------------------------------------


def test_wilson_matches_the_formula() -> None:
    import math

    k, n, z = 7, 10, 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    lo, hi = wilson(k, n)  # type: ignore[misc]
    assert lo == pytest.approx(centre - half, abs=1e-4)
    assert hi == pytest.approx(centre + half, abs=1e-4)
    assert wilson(0, 0) is None and wilson(5, 5)[1] == 1.0  # type: ignore[index]


def test_bootstrap_is_reproducible_and_brackets_the_mean() -> None:
    xs = [0.0, 0.5, 1.0, 0.25, 0.75, 1.0, 0.0, 0.5]
    mean = sum(xs) / len(xs)
    ci = bootstrap(xs, lambda s: sum(s) / len(s))
    assert ci == bootstrap(xs, lambda s: sum(s) / len(s))
    assert ci is not None and ci[0] < mean < ci[1]
    assert bootstrap([1.0], lambda s: s[0]) is None


def test_paired_delta_is_zero_centred_only_when_nothing_changed() -> None:
    same = [(1, 1), (0, 0), (1, 1), (0, 0)] * 5
    d, ci = paired_delta(same, lambda s: sum(s) / len(s))
    assert d == 0 and ci == (0.0, 0.0)
    better = [(0, 1)] * 15 + [(1, 1)] * 5
    d, ci = paired_delta(better, lambda s: sum(s) / len(s))
    assert d == 0.75 and ci is not None and ci[0] > 0


# -- compare ---------------------------------------------------------------------------------


class FixedChain(FakeChain):
    """Abstains on u2 (right) and on a1 (wrong) instead of the fake chain's answers."""

    def invoke(self, question: str, history: Any = None) -> Any:
        from rag.types import ABSTENTION_TEXT, Answer

        if question.startswith(("Capital", "Where")):
            return Answer(ABSTENTION_TEXT, True, (), (), question, question, reason="no support")
        return super().invoke(question, history)


def _run_with(tmp_path: Path, name: str, chain: Any) -> Path:
    from evals.runner import run_suite
    from rag.settings import Settings

    out = tmp_path / name
    run_suite(
        QUESTIONS,
        Settings(),
        out,
        chain=chain,
        index=False,
        progress=False,
        thresholds_path=None,
        baseline_path=None,
    )
    return out


def test_compare_lists_flips_side_by_side_with_deltas(tmp_path: Path) -> None:
    a = _run_with(tmp_path, "a", FakeChain())
    b = _run_with(tmp_path, "b", FixedChain())
    c = compare(a, b)
    assert c["n_common"] == 4
    assert [r["id"] for r in c["right_to_wrong"]] == ["a1"]
    assert [r["id"] for r in c["wrong_to_right"]] == ["u2"]
    flip = c["right_to_wrong"][0]
    assert "New York" in flip["a"]["answer"] and flip["a"]["citations"][0].startswith("d.md ¶1")
    assert flip["b"]["outcome"] == "abstained" and flip["b"]["reason"] == "no support"
    by = {m["metric"]: m for m in c["metrics"]}
    assert by["answer_contains"]["delta"] == -0.5 and by["abstention_recall"]["delta"] == 0.5
    assert by["overall_accuracy"]["delta"] == 0.0
    assert by["answer_contains"]["ci"] is not None
    md = render_markdown(c)
    assert "## Right in A, wrong in B (1)" in md and "## Wrong in A, right in B (1)" in md
    assert "reason: no support" in md
    res = CliRunner().invoke(cli.app, ["compare", str(a), str(b), "--out", str(tmp_path / "c.md")])
    assert res.exit_code == 0 and (tmp_path / "c.json").is_file()
    with pytest.raises(CompareError):
        compare(a, tmp_path / "nowhere")
    res = CliRunner().invoke(cli.app, ["compare", str(a), str(tmp_path / "nowhere")])
    assert res.exit_code == 2 and "no report.json" in res.output


# -- generate --------------------------------------------------------------------------------


class P:
    def __init__(self, source: str, number: int, text: str) -> None:
        self.source, self.number, self.text = source, number, text


PARAS = [
    P(
        "a.md",
        1,
        "The Lumen Institute was founded in 1987 by Ana Ortiz in the city of Porto. "
        "Its main office is on the river and employs forty researchers in hydrology today.",
    ),
    P(
        "a.md",
        2,
        "A second office opened in Lyon in 2015 and works on flood forecasting for "
        "the regional government, with support from the national weather service of France.",
    ),
]


def test_generated_questions_are_kept_only_when_the_checks_pass() -> None:
    """The answer is picked from the paragraph's own names and numbers; the model only writes
    the question (and a near-miss variant of it for the unanswerable kind)."""
    asked: list[str] = []

    def ask(prompt: str) -> str:
        asked.append(prompt)
        first = "Lumen Institute was founded" in prompt
        if prompt.startswith("Change one name"):  # the unanswerable near miss
            if "Lumen" in prompt:
                return "Question: What does the Lumen Institute study in Madrid?"  # kept
            return "Question: What does the Lyon office forecast?"  # names nothing absent
        target = re.search(r'exactly this answer: "(.+?)"', prompt)
        assert target, prompt
        if first:
            return "Question: What does the Lumen Institute study?"  # kept
        return f"Question: Is {target.group(1)} mentioned?"  # gives its answer away

    found = {"What does the Lumen Institute study?": [("a.md", 1)]}
    qs, stats = generate_questions(
        PARAS,
        ask,
        lambda q: found.get(q, []),
        n_paragraphs=2,
        n_unanswerable=2,
        seed=0,
        min_words=5,
    )
    assert stats.kept == {"answerable": 1, "unanswerable": 1}
    assert stats.to_dict()["kept"] == {"answerable": 1, "unanswerable": 1}  # the .stats.json
    assert stats.dropped == {
        "answerable: answer already in the question": 1,
        "unanswerable: names nothing the corpus lacks": 1,
    }
    assert all(q.generated for q in qs)
    by = {q.question: q for q in qs}
    q = by["What does the Lumen Institute study?"]
    [answer] = q.answers
    assert q.answerable and answer in answer_targets(PARAS[0].text)
    assert answer in q.evidence[0] and q.evidence[0] in PARAS[0].text
    assert by["What does the Lumen Institute study in Madrid?"].answerable is False


def test_answer_targets_are_names_and_numbers_of_the_text() -> None:
    text = "The Lumen Institute was founded in 1987 by Dr. Ana Ortiz. It employs 42,000 people."
    assert answer_targets(text) == ["Lumen Institute", "1987", "Ana Ortiz", "42,000 people"]


def test_generation_checks_one_by_one() -> None:
    text = PARAS[0].text
    here = ("a.md", 1)
    assert parse_reply('**Question:** Who?\n**Answer:** "Ana Ortiz."') == ("Who?", "Ana Ortiz")
    assert check_answerable("Who founded it?", "Ana Ortiz", text, [here], here) == ""
    assert check_answerable("Who founded it?", "Ana Ortiz", text, [], here).startswith("retrieval")
    assert check_answerable("Who is Ana Ortiz?", "Ana Ortiz", text, [here], here).startswith(
        "answer already"
    )
    assert check_answerable("Q?", "a b c d e f g h i j k l m", text, [here], here) == (
        "answer too long"
    )
    # A question about nothing the answer's sentence says is not a question for that answer.
    assert check_answerable("What country is mentioned?", "Porto", text, [here], here).startswith(
        "question shares no word"
    )
    corpus = " ".join(p.text for p in PARAS)
    assert check_unanswerable("Who funds the institute in Madrid?", text, corpus) == ""
    assert check_unanswerable("Who funds the institute in Porto?", text, corpus).startswith("names")
    assert check_unanswerable("What is the capital of Peru?", text, corpus).startswith("off topic")


# -- eval corpus -----------------------------------------------------------------------------


def test_assemble_adds_the_eval_documents_and_removes_stale_files(tmp_path: Path) -> None:
    base = tmp_path / "corpus"
    (base / "sub").mkdir(parents=True)
    (base / "a.md").write_text("A.")
    (base / "sub" / "b.txt").write_text("B.")
    dest = tmp_path / "run"
    (dest).mkdir()
    (dest / "stale.md").write_text("old")
    assemble(base, dest, eval_documents())
    names = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert names == ["a.md", "kestrel-bay-ferries.html", "marlow-seed-bank.pdf", "sub/b.txt"]
    (base / "kestrel-bay-ferries.html").write_text("<p>clash</p>")
    with pytest.raises(ValueError, match="both in the corpus"):
        assemble(base, dest, eval_documents())


def test_unconfirmed_evidence_is_an_abstention_and_its_gold_is_reported_apart() -> None:
    from evals.scoring import aggregate, by_stage, prediction_record, score_question
    from rag.types import UNCONFIRMED_TEXT, Answer, Citation

    q = next(x for x in QUESTIONS if x.answerable)
    sentence = f"The record says {q.answers[0]} plainly."
    cite = Citation(1, "doc.md", 1, "", sentence, sentence, 0, len(sentence))
    shown = Answer(
        f"{UNCONFIRMED_TEXT} “{sentence}” [1]",
        True,
        evidence=(cite,),
        outcome="unconfirmed",
        stage="gate",
        gate_score=0.2,
        gate_threshold=0.4,
    )
    row = prediction_record(q, shown)
    assert row["outcome"] == "abstained" and row["shown"] == "unconfirmed"
    s = score_question(q, row, [sentence], k=5)
    # The gold answer sits in the evidence, yet the question was not answered.
    assert s["abstained"] and not s["correct"] and s["gold_in_evidence"] is True
    assert by_stage([s]) == {"gate": {"answerable": 1, "unanswerable": 0}}
    metrics = aggregate([s])
    assert metrics["false_abstention_rate"]["value"] == 1.0
    assert metrics["gold_in_unconfirmed_evidence"]["value"] == 1.0
