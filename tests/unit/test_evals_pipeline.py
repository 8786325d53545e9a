"""Runner, gates, baseline, judges, SQuAD conversion and the CLI, with a fake chain (no models)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from evals import cli
from evals.dataset import Question, load_questions, parse_questions
from evals.gates import check_gates, update_baseline
from evals.judge import DeterministicJudge, LLMJudge, parse_verdict
from evals.retrieval_eval import retrieval_scores
from evals.runner import run_suite
from evals.squad import all_questions, convert, doc_name, sample_questions, select_articles
from rag.settings import Settings
from rag.types import ABSTENTION_TEXT, Answer, Citation, Passage, Timings

PARA1 = "The signing of the Joint Communiqué in New York this month underscores a maneuver."
PARA2 = "Qatar, benefiting from significant hydrocarbon reserves, invests in infrastructure."


def fact(qid: str, question: str, answer: str, evidence: str) -> Question:
    """An answerable question of category "fact": one answer, one evidence string."""
    return Question(
        id=qid,
        question=question,
        answerable=True,
        answers=[answer],
        evidence=[evidence],
        category="fact",
    )


QUESTIONS = [
    fact("a1", "Where was it signed?", "New York", "Joint Communiqué in New York"),
    fact(
        "a2",
        "What reserves does Qatar have?",
        "hydrocarbon reserves",
        "significant hydrocarbon reserves",
    ),
    Question(
        id="u1",
        question="What is the population of Bhutan?",
        answerable=False,
        category="unanswerable",
    ),
    Question(id="u2", question="Capital of Qatar?", answerable=False, category="outside"),
]


class FakeChain:
    """a1: right answer, right citation; a2: abstains; u1: abstains; u2: answers wrongly."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def invoke(self, question: str, history: Any = None) -> Answer:
        self.calls.append((question, history))
        ps = (Passage("d.md", 1, "", PARA1, 0.1), Passage("d.md", 2, "", PARA2, 0.05))
        t = Timings(total=2.0 if question.startswith("Where") else 4.0)
        if question.startswith("Where"):
            c = Citation(1, "d.md", 1, "", PARA1, "The signing of the Joint Communiqué in New York")
            return Answer("It was signed in New York. [1]", False, (c,), ps, question, question, t)
        if question.startswith("Capital"):
            c = Citation(
                1, "d.md", 2, "", PARA2, "Qatar, benefiting from significant hydrocarbon reserves"
            )
            return Answer(
                "Doha is the capital of Qatar. [1]", False, (c,), ps, question, question, t
            )
        if question.startswith("boom"):
            raise RuntimeError("model crashed")
        return Answer(ABSTENTION_TEXT, True, (), ps, question, question, t)


class YesJudge:
    name = "llm_judge:fake"
    kind = "llm_judge"

    def supported(self, statement: str, quote: str, paragraph: str, question: str) -> bool | None:
        return True


def _run(tmp_path: Path, chain: Any = None, **kw: Any) -> Any:
    return run_suite(
        QUESTIONS,
        Settings(),
        tmp_path / "out",
        chain=chain or FakeChain(),
        index=False,
        progress=False,
        thresholds_path=None,
        baseline_path=None,
        **kw,
    )


def test_run_suite_writes_every_output_and_scores_by_hand(tmp_path: Path) -> None:
    res = _run(tmp_path, llm_judges=[YesJudge()])
    out = tmp_path / "out"
    for name in ("predictions.jsonl", "report.json", "report.md", "metrics.png", "latency.png"):
        assert (out / name).is_file(), name
    preds = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert [p["id"] for p in preds] == ["a1", "a2", "u1", "u2"]
    assert set(preds[0]) >= {
        "id",
        "answer",
        "abstained",
        "citations",
        "standalone_question",
        "retrieved",
        "timings",
    }
    assert set(preds[0]["citations"][0]) >= {"source", "paragraph", "text", "quote"}
    assert preds[0]["retrieved"] == [
        {"source": "d.md", "paragraph": 1},
        {"source": "d.md", "paragraph": 2},
    ]
    mm = {k: v["value"] for k, v in res.report["metrics"].items()}
    assert mm["retrieval_recall_at_1"] == 0.5  # a1 at rank 1, a2 at rank 2
    assert mm["retrieval_recall_at_k"] == 1.0
    assert mm["retrieval_mrr"] == 0.75
    assert mm["answer_contains"] == 0.5
    assert mm["overall_accuracy"] == 0.5  # a1 right, a2 abstained, u1 right, u2 answered
    assert mm["citation_recall"] == 1.0  # only a1 applies
    assert mm["citation_precision"] == 0.5  # a1: 1.0; u2: 0.0
    assert mm["abstention_precision"] == 0.5  # u1 right, a2 wrong
    assert mm["abstention_recall"] == 0.5
    assert mm["false_abstention_rate"] == 0.5
    assert mm["latency_p50_s"] == 4.0  # 2, 4, 4, 4
    # deterministic: a1 supported; u2 "Doha" is a name not in the paragraph -> unsupported
    assert mm["faithfulness_deterministic"] == 0.5
    assert mm["faithfulness_llm_judge"] == 1.0
    assert mm["agreement_llm_judge"] == 0.5
    assert mm["errors"] == 0
    assert res.report["metrics"]["faithfulness_llm_judge"]["judge"] == "llm_judge:fake"
    assert res.report["metrics"]["faithfulness_deterministic"]["judge"] == "deterministic"
    # every rate carries a 95 % interval that holds its value
    for name in ("answer_contains", "overall_accuracy", "abstention_recall", "retrieval_mrr"):
        m = res.report["metrics"][name]
        assert m["ci_method"] in ("wilson", "bootstrap")
        assert m["ci"][0] <= m["value"] <= m["ci"][1], name
    assert res.report["metrics"]["answer_contains"]["ci_method"] == "wilson"
    md = (out / "report.md").read_text()
    assert "| answer_contains | 0.500 | [0.095, 0.905] wilson |" in md
    assert "### a2" in md and "abstained on an answerable question" in md
    assert "### u2" in md and "answered an unanswerable question" in md
    assert "### a1" not in md


def test_run_suite_survives_a_failing_question(tmp_path: Path) -> None:
    qs = [Question(id="x", question="boom?", answerable=False)] + QUESTIONS[:1]
    res = run_suite(
        qs,
        Settings(),
        tmp_path,
        chain=FakeChain(),
        index=False,
        progress=False,
        thresholds_path=None,
        baseline_path=None,
    )
    preds = [json.loads(x) for x in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert preds[0]["error"].startswith("RuntimeError") and preds[1]["abstained"] is False
    assert preds[0]["outcome"] == "error" and preds[0]["abstained"] is False
    assert res.report["questions"][0]["failures"][0].startswith("error")
    assert res.report["metrics"]["errors"]["value"] == 1


def test_history_is_passed_to_the_chain(tmp_path: Path) -> None:
    q = Question(
        id="h",
        question="And him?",
        answerable=False,
        history=[{"role": "user", "content": "Who?"}, {"role": "assistant", "content": "X."}],
    )
    chain = FakeChain()
    run_suite(
        [q],
        Settings(),
        tmp_path,
        chain=chain,
        index=False,
        progress=False,
        thresholds_path=None,
        baseline_path=None,
    )
    assert chain.calls == [
        ("And him?", [{"role": "user", "content": "Who?"}, {"role": "assistant", "content": "X."}])
    ]


# -- gates -----------------------------------------------------------------------------------


def _metrics(**vals: float | None) -> dict[str, dict[str, Any]]:
    lower = {"false_abstention_rate", "latency_p95_s"}
    return {k: {"value": v, "higher_is_better": k not in lower} for k, v in vals.items()}


def test_gates_min_max_and_not_applicable() -> None:
    th = {
        "min": {"answer_contains": 0.6, "faithfulness_llm_judge": 0.5, "citation_recall": 0.5},
        "max": {"false_abstention_rate": 0.3},
        "optional": ["faithfulness_llm_judge"],
    }
    res = check_gates(
        _metrics(
            answer_contains=0.7,
            false_abstention_rate=0.4,
            faithfulness_llm_judge=None,
            citation_recall=None,
        ),
        th,
    )
    by = {(g.metric, g.kind): g for g in res}
    assert by[("answer_contains", "min")].passed
    assert not by[("false_abstention_rate", "max")].passed
    # not applicable: passes only when marked optional
    assert by[("faithfulness_llm_judge", "min")].passed
    assert "optional" in by[("faithfulness_llm_judge", "min")].message
    assert not by[("citation_recall", "min")].passed
    res = check_gates(_metrics(answer_contains=0.59), th)
    assert not [g for g in res if g.metric == "answer_contains"][0].passed


def test_gates_baseline_drop_with_margins_and_direction() -> None:
    th = {
        "baseline_margin": 0.1,
        "baseline_margins": {"abstention_recall": 0.3},
        "baseline_skip": ["latency_p95_s"],
    }
    base = {
        "metrics": {
            "answer_contains": 0.8,
            "abstention_recall": 0.8,
            "false_abstention_rate": 0.1,
            "latency_p95_s": 1.0,
        }
    }
    cur = _metrics(
        answer_contains=0.69, abstention_recall=0.55, false_abstention_rate=0.25, latency_p95_s=50.0
    )
    res = {g.metric: g for g in check_gates(cur, th, base)}
    assert not res["answer_contains"].passed  # dropped 0.11 > 0.1
    assert res["abstention_recall"].passed  # dropped 0.25 <= 0.3
    assert not res["false_abstention_rate"].passed  # rose 0.15 > 0.1 (lower is better)
    assert "latency_p95_s" not in res
    cur = _metrics(answer_contains=0.71, abstention_recall=0.9, false_abstention_rate=0.05)
    assert all(g.passed for g in check_gates(cur, th, base))


def test_gates_question_file_errors_fail() -> None:
    res = check_gates({}, {}, None, question_errors=2)
    assert [(g.metric, g.passed) for g in res] == [("thresholds", False), ("question_file", False)]


def test_update_baseline_records_the_reports_suite(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({"squad": {"metrics": {"x": 1}}}))
    report = {
        "suite": "fixed",
        "n_questions": 3,
        "metrics": {"answer_contains": {"value": 0.7, "judge": "gold-answer"}},
    }
    data = update_baseline(path, report, source="r.json")
    assert data["fixed"]["metrics"] == {"answer_contains": 0.7}
    assert data["squad"] == {"metrics": {"x": 1}}
    assert json.loads(path.read_text())["fixed"]["from"] == "r.json"


# -- judges ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("yes", True),
        ("Yes.", True),
        (" no", False),
        ("No, it is not.", False),
        ("Supported", True),
        ("The answer is yes", True),
        ("maybe", None),
        ("", None),
        ("It could be yes or no", None),
    ],
)
def test_parse_verdict(text: str, want: bool | None) -> None:
    assert parse_verdict(text) is want


def test_llm_judge_asks_the_model_and_parses() -> None:
    class Model:
        def __init__(self, reply: str) -> None:
            self.reply, self.seen = reply, []

        def invoke(self, messages: Any, **kw: Any) -> Any:
            self.seen.append(messages)
            return type("M", (), {"content": self.reply})()

    m = Model("Yes")
    j = LLMJudge(m, "fake", "llm_judge")
    assert j.name == "llm_judge:fake"
    assert j.supported("It was in New York.", "q", PARA1, "Where?") is True
    assert (
        "New York this month" in m.seen[0][1].content
        and "It was in New York." in m.seen[0][1].content
    )
    assert LLMJudge(Model("no"), "x", "self_judge").supported("s", "q", "p", "") is False
    with pytest.raises(ValueError):
        LLMJudge(Model("no"), "x", "independent")

    class Broken:
        def invoke(self, *a: Any, **k: Any) -> Any:
            raise RuntimeError("down")

    assert LLMJudge(Broken(), "x", "llm_judge").supported("s", "q", "p", "") is None


def test_deterministic_judge() -> None:
    j = DeterministicJudge()
    assert j.supported(
        "It was signed in New York.", "Joint Communiqué in New York", PARA1, "Where was it signed?"
    )
    assert not j.supported(
        "It was signed in Paris.", "Joint Communiqué in New York", PARA1, "Where was it signed?"
    )


# -- SQuAD conversion ------------------------------------------------------------------------

SQUAD = {
    "version": "v2.0",
    "data": [
        {
            "title": "Alpha_(A)",
            "paragraphs": [
                {
                    "context": "Alpha one.\nIt has  two lines.",
                    "qas": [
                        {
                            "id": "q1",
                            "question": "What is alpha?",
                            "answers": [{"text": "one"}, {"text": "one"}],
                            "is_impossible": False,
                        },
                        {
                            "id": "q2",
                            "question": "What is beta?",
                            "answers": [],
                            "is_impossible": True,
                        },
                    ],
                },
                {
                    "context": "Alpha two.",
                    "qas": [
                        {
                            "id": "q3",
                            "question": "Which alpha?",
                            "answers": [{"text": "two"}],
                            "is_impossible": False,
                        },
                        {"id": "q4", "question": "Why?", "answers": [], "is_impossible": True},
                    ],
                },
            ],
        },
        {
            "title": "Beta",
            "paragraphs": [
                {
                    "context": "Beta text.",
                    "qas": [
                        {
                            "id": "q5",
                            "question": "Beta?",
                            "answers": [{"text": "text"}],
                            "is_impossible": False,
                        }
                    ],
                }
            ],
        },
    ],
}


def test_squad_conversion(tmp_path: Path) -> None:
    src = tmp_path / "squad.json"
    src.write_text(json.dumps(SQUAD))
    (tmp_path / "out" / "corpus").mkdir(parents=True)
    (tmp_path / "out" / "corpus" / "stale.md").write_text("old")
    corpus, qpath, sample = convert(
        src, tmp_path / "out", articles=["Alpha_(A)"], per_article=3, seed=1
    )
    assert sorted(p.name for p in corpus.iterdir()) == ["Alpha_A.md"]
    assert (
        corpus / "Alpha_A.md"
    ).read_text() == "# Alpha (A)\n\nAlpha one. It has two lines.\n\nAlpha two.\n"
    qs, errors = load_questions(qpath)
    assert errors == [] and len(qs) == 3
    assert sum(q.answerable for q in qs) == 2
    by_id = {g.question.id: g for g in sample}
    if "q1" in by_id:
        assert by_id["q1"].question.answers == ["one"]
        assert by_id["q1"].question.evidence == ["Alpha one. It has two lines."]
        assert (by_id["q1"].source, by_id["q1"].paragraph) == ("Alpha_A.md", 1)
    assert by_id["q3"].paragraph == 2 if "q3" in by_id else True
    # same seed, same sample
    again = sample_questions(select_articles(SQUAD, ["Alpha_(A)"]), 3, seed=1)
    assert [g.question.id for g in again] == [g.question.id for g in sample]
    with pytest.raises(ValueError, match="Gamma"):
        select_articles(SQUAD, ["Gamma"])


def test_squad_questions_and_doc_names() -> None:
    gold = all_questions(select_articles(SQUAD, None))
    assert [g.question.id for g in gold] == ["q1", "q2", "q3", "q4", "q5"]
    assert not gold[1].question.answerable and gold[1].question.evidence == []
    assert doc_name("Victoria_(Australia)") == "Victoria_Australia.md"
    assert doc_name("1973_oil_crisis") == "1973_oil_crisis.md"


def test_retrieval_scores() -> None:
    assert retrieval_scores(1) == {"recall_at_1": 1.0, "recall_at_5": 1.0, "mrr_at_10": 1.0}
    assert retrieval_scores(4) == {"recall_at_1": 0.0, "recall_at_5": 1.0, "mrr_at_10": 0.25}
    assert retrieval_scores(11) == {"recall_at_1": 0.0, "recall_at_5": 0.0, "mrr_at_10": 0.0}
    assert retrieval_scores(None)["mrr_at_10"] == 0.0


# -- CLI -------------------------------------------------------------------------------------


def test_cli_validate_reports_bad_lines(tmp_path: Path) -> None:
    qf = tmp_path / "q.jsonl"
    qf.write_text('{"id": "a", "question": "Q?", "answerable": false}\n{oops\n')
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text("Some text.\n")
    res = CliRunner().invoke(cli.app, ["validate", "--questions", str(qf), "--corpus", str(corpus)])
    assert res.exit_code == 1
    assert "line 2" in res.output and "1 valid questions, 1 malformed lines" in res.output


def test_cli_baseline_updates_file(tmp_path: Path) -> None:
    rep = tmp_path / "report.json"
    rep.write_text(
        json.dumps(
            {"suite": "fixed", "metrics": {"answer_f1": {"value": 0.4, "judge": "gold-answer"}}}
        )
    )
    base = tmp_path / "baseline.json"
    res = CliRunner().invoke(cli.app, ["baseline", "--from", str(rep), "--baseline", str(base)])
    assert res.exit_code == 0, res.output
    assert json.loads(base.read_text())["fixed"]["metrics"] == {"answer_f1": 0.4}
    res = CliRunner().invoke(
        cli.app, ["baseline", "--from", str(tmp_path / "none.json"), "--baseline", str(base)]
    )
    assert res.exit_code == 2


def test_cli_run_exit_code_follows_the_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import evals.runner as runner

    real = runner.run_suite

    def fake_run_suite(questions: Any, settings: Any, out_dir: Path, **kw: Any) -> Any:
        assert kw.pop("llm_judges") == []  # no LLM judge unless asked
        return real(questions, settings, out_dir, chain=FakeChain(), index=False, **kw)

    monkeypatch.setattr(runner, "run_suite", fake_run_suite)
    qf = tmp_path / "q.jsonl"
    qf.write_text("\n".join(json.dumps(q.model_dump()) for q in QUESTIONS) + "\n")
    th = tmp_path / "th.json"
    th.write_text(json.dumps({"fixed": {"min": {"overall_accuracy": 0.5}}}))
    args = [
        "run",
        "--questions",
        str(qf),
        "--out",
        str(tmp_path / "o"),
        "--thresholds",
        str(th),
        "--baseline",
        str(tmp_path / "b.json"),
        "--no-progress",
        "--no-llm-judge",  # the older flag is still accepted (and changes nothing)
    ]
    res = CliRunner().invoke(cli.app, args)
    assert res.exit_code == 0, res.output
    assert "All gates passed" in res.output
    th.write_text(json.dumps({"fixed": {"min": {"overall_accuracy": 0.9}}}))
    res = CliRunner().invoke(cli.app, args)
    assert res.exit_code == 1
    assert "GATE FAILED" in res.output
    # a malformed line is reported, the rest still run, and the gate fails
    qf.write_text(qf.read_text() + "{bad\n")
    th.write_text(json.dumps({"fixed": {}}))
    res = CliRunner().invoke(cli.app, args)
    assert res.exit_code == 1 and "line 5" in res.output
    assert json.loads((tmp_path / "o" / "report.json").read_text())["n_questions"] == 4


def test_parse_questions_accepts_comment_lines() -> None:
    qs, errors = parse_questions(
        ["// a comment", '{"id": "a", "question": "Q?", "answerable": false}']
    )
    assert len(qs) == 1 and errors == []


def test_judge_run_adds_llm_verdicts_to_an_earlier_run(tmp_path: Path) -> None:
    from evals.runner import judge_run

    _run(tmp_path)  # deterministic judge only
    out = tmp_path / "out"
    before = json.loads((out / "report.json").read_text())
    assert "faithfulness_llm_judge" not in before["metrics"]
    res = judge_run(out, YesJudge(), questions=QUESTIONS, progress=False)
    mm = {k: v["value"] for k, v in res.report["metrics"].items()}
    assert mm["faithfulness_llm_judge"] == 1.0 and mm["agreement_llm_judge"] == 0.5
    after = json.loads((out / "report.json").read_text())
    assert after["metrics"]["agreement_llm_judge"]["judge"] == "deterministic vs llm_judge:fake"
    assert after["metrics"]["faithfulness_llm_judge"]["independent"] is True
    assert "llm_judge:fake" in after["judges"]
    assert after["questions"][0]["statements"][0]["verdicts"] == {
        "deterministic": True,
        "llm_judge:fake": True,
    }


def test_score_predictions_reproduces_the_run_from_saved_predictions(tmp_path: Path) -> None:
    from evals.runner import score_predictions

    res = _run(tmp_path)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "d.md").write_text(f"# Doc\n\n{PARA1}\n\n{PARA2}\n")
    rows = [
        json.loads(x) for x in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()
    ]
    again = score_predictions(
        QUESTIONS,
        rows[:3],
        Settings(corpus_dir=corpus),
        tmp_path / "re",
        thresholds_path=None,
        baseline_path=None,
    )
    assert again.report["n_questions"] == 3 and again.report["rescored"] is True
    # retrieval metrics come from the corpus paragraphs looked up by (source, paragraph)
    for name in ("retrieval_recall_at_1", "retrieval_mrr", "answer_contains"):
        assert again.report["metrics"][name]["value"] == res.report["metrics"][name]["value"], name
    assert again.report["metrics"]["abstention_recall"]["value"] == 1.0  # u2 left out


class GatedChain(FakeChain):
    """FakeChain's answers with the answer gate's scores: a1 0.8 (answered), a2 0.3 (refused by
    the gate), u1 never reached the gate, u2 0.6 (answered); the threshold is 0.5."""

    SCORES = {"Where": 0.8, "What reserves": 0.3, "Capital": 0.6}

    def invoke(self, question: str, history: Any = None) -> Answer:
        a = super().invoke(question, history)
        score = next((v for k, v in self.SCORES.items() if question.startswith(k)), None)
        return replace(a, gate_score=score, gate_threshold=0.5 if score is not None else None)


def test_the_report_shows_what_each_gate_threshold_would_answer(tmp_path: Path) -> None:
    res = _run(tmp_path, chain=GatedChain())
    points = [
        (c["threshold"], c["answerable_answered"], c["unanswerable_answered"])
        for c in res.report["gate_curve"]
    ]
    # Counted by hand: 2 answerable (a1 0.8, a2 0.3), 2 unanswerable (u1 no score, u2 0.6).
    assert points[:3] == [(0.3, 1.0, 0.5), (0.6, 0.5, 0.5), (0.8, 0.5, 0.0)]
    assert points[3][1:] == (0.0, 0.0)  # above every score nothing is answered
    assert (tmp_path / "out" / "gate_curve.png").is_file()
    assert "| 0.600 | 0.50 | 0.50 |" in (tmp_path / "out" / "report.md").read_text()


class PickedChain(GatedChain):
    """GatedChain, but u2's statement scored 0.2 at the gate and the reader's best sentence,
    picked on a P(yes) of its own, answered it."""

    SCORES = {"Where": 0.8, "What reserves": 0.3, "Capital": 0.2}


def test_an_answer_the_gate_did_not_pass_counts_as_answered_at_every_threshold(
    tmp_path: Path,
) -> None:
    res = _run(tmp_path, chain=PickedChain())
    points = [
        (c["threshold"], c["answerable_answered"], c["unanswerable_answered"])
        for c in res.report["gate_curve"]
    ]
    # u2 was shown whatever the gate's threshold: raising it never takes that answer back.
    assert points[:3] == [(0.2, 1.0, 0.5), (0.3, 1.0, 0.5), (0.8, 0.5, 0.5)]
    assert points[3][1:] == (0.0, 0.5)  # above every score
