"""Run a question file through the real answer chain and write the evaluation outputs.

Outputs in ``out_dir``: predictions.jsonl, report.json, report.md, metrics.png, latency.png.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evals.dataset import LineError, Question
from evals.gates import GateResult, check_gates, load_json
from evals.judge import DeterministicJudge, Judge
from evals.report import render_markdown, write_plots
from evals.scoring import aggregate, by_category, error_record, prediction_record, score_question

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_QUESTIONS = PACKAGE_DIR / "questions.jsonl"
DEFAULT_THRESHOLDS = PACKAGE_DIR / "thresholds.json"
DEFAULT_BASELINE = PACKAGE_DIR / "baseline.json"


@dataclass
class RunResult:
    report: dict[str, Any]
    gates: list[GateResult] = field(default_factory=list)
    out_dir: Path = Path(".")

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)


def _progress(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc="questions",
        unit="q",
        file=sys.stderr,
        disable=not enabled,
        dynamic_ncols=True,
    )


def run_suite(
    questions: Sequence[Question],
    settings: Any,
    out_dir: Path,
    *,
    suite: str = "fixed",
    questions_file: str = "",
    question_errors: Sequence[LineError] = (),
    thresholds_path: Path | None = DEFAULT_THRESHOLDS,
    baseline_path: Path | None = DEFAULT_BASELINE,
    chain: Any = None,
    llm_judge: Judge | None = None,
    progress: bool = True,
    index: bool = True,
) -> RunResult:
    """Answer every question with the chain, score, gate and write the report files.

    ``chain``: anything with ``invoke(question, history) -> rag.Answer`` (default: the real
    ``rag.get_chain(settings)``). ``llm_judge``: an optional second faithfulness judge.
    ``index``: bring the index in line with the corpus first (incremental ``rag.ingest``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    t0 = time.perf_counter()
    if index:
        from rag.ingest import ensure_index, ingest

        if ensure_index(settings) is None:
            ingest(settings)  # already indexed: only what changed is embedded
    if chain is None:
        from rag.chain import get_chain

        chain = get_chain(settings)
    judges: list[Judge] = [DeterministicJudge()]
    if llm_judge is not None:
        judges.append(llm_judge)
    k = int(settings.retrieval.k)
    scores: list[dict[str, Any]] = []
    preds: dict[str, dict[str, Any]] = {}
    pred_path = out_dir / "predictions.jsonl"
    with pred_path.open("w", encoding="utf-8") as pf, _progress(len(questions), progress) as bar:
        for q in questions:
            texts: list[str] = []
            try:
                ans = chain.invoke(q.question, q.history_dicts())
                pred = prediction_record(q, ans)
                texts = [p.text for p in ans.passages]
            except Exception as exc:  # one failing question must not lose the others
                logger.warning("question %s failed: %s", q.id, exc)
                pred = error_record(q, f"{type(exc).__name__}: {exc}")
            pf.write(json.dumps(pred, ensure_ascii=False) + "\n")
            pf.flush()
            preds[q.id] = pred
            scores.append(score_question(q, pred, texts, k=k, judges=judges))
            bar.update(1)
            bar.set_postfix_str(q.id)
    llm_name = llm_judge.name if llm_judge is not None else None
    metrics = aggregate(questions, scores, llm_judge=llm_name)
    thresholds = load_json(thresholds_path).get(suite, {})
    baseline = load_json(baseline_path).get(suite, {})
    gates = check_gates(metrics, thresholds, baseline, question_errors=len(question_errors))
    report: dict[str, Any] = {
        "suite": suite,
        "questions_file": questions_file,
        "corpus": str(settings.corpus_dir),
        "k": k,
        "started": started,
        "seconds": round(time.perf_counter() - t0, 1),
        "n_questions": len(questions),
        "n_answerable": sum(1 for q in questions if q.answerable),
        "judges": [j.name for j in judges],
        "llm": settings.llm.backend,
        "metrics": metrics,
        "categories": by_category(questions, scores),
        "thresholds": thresholds,
        "baseline": baseline.get("metrics") or {},
        "gates": [g.to_dict() for g in gates],
        "passed": all(g.passed for g in gates),
        "question_errors": [str(e) for e in question_errors],
        "questions": scores,
    }
    (out_dir / "report.json").write_text(
        json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    qmap = {q.id: q.model_dump() for q in questions}
    (out_dir / "report.md").write_text(render_markdown(report, qmap, preds), encoding="utf-8")
    try:
        write_plots(report, out_dir)
    except Exception as exc:  # plots are a convenience; never fail the run for them
        logger.warning("plots failed: %s", exc)
    return RunResult(report, gates, out_dir)


def judge_run(
    out_dir: Path,
    judge: Judge,
    *,
    questions: Sequence[Question] | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> RunResult:
    """Apply a (slow) LLM judge to the statements of an earlier run in ``out_dir``, then
    recompute faithfulness_llm and judge_agreement, re-check the gates and rewrite the report.

    Answering and LLM judging are separable so that a run on a busy CPU can answer first and
    be judged later. ``limit``: judge at most this many statements (the first ones).
    """
    from evals.dataset import load_questions

    out_dir = Path(out_dir)
    report = json.loads((out_dir / "report.json").read_text(encoding="utf-8"))
    if questions is None:
        questions, _ = load_questions(Path(report["questions_file"]))
    by_id = {q.id: q for q in questions}
    scores = report["questions"]
    qs = [by_id[s["id"]] for s in scores]
    preds = {}
    for line in (out_dir / "predictions.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            p = json.loads(line)
            preds[p["id"]] = p
    todo = [(s, st) for s in scores for st in s.get("statements", [])]
    if limit is not None:
        todo = todo[:limit]
    with _progress(len(todo), progress) as bar:
        for s, st in todo:
            p = preds.get(s["id"], {})
            text = next(
                (
                    c["text"]
                    for c in p.get("citations", [])
                    if c["quote"] == st["quote"] and c["paragraph"] == st["paragraph"]
                ),
                "",
            )
            asked = p.get("standalone_question") or by_id[s["id"]].question
            st["verdicts"][judge.name] = (
                judge.supported(st["statement"], st["quote"], text, asked) if text else None
            )
            bar.update(1)
    metrics = aggregate(qs, scores, llm_judge=judge.name)
    gates = check_gates(
        metrics,
        report.get("thresholds") or {},
        {"metrics": report.get("baseline") or {}},
        question_errors=len(report.get("question_errors") or []),
    )
    report["metrics"] = metrics
    report["judges"] = sorted(set(report.get("judges", [])) | {judge.name})
    report["llm_judged_statements"] = len(todo)
    report["gates"] = [g.to_dict() for g in gates]
    report["passed"] = all(g.passed for g in gates)
    (out_dir / "report.json").write_text(
        json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    qmap = {q.id: q.model_dump() for q in qs}
    (out_dir / "report.md").write_text(render_markdown(report, qmap, preds), encoding="utf-8")
    try:
        write_plots(report, out_dir)
    except Exception as exc:
        logger.warning("plots failed: %s", exc)
    return RunResult(report, gates, out_dir)


def score_predictions(
    questions: Sequence[Question],
    predictions: Sequence[dict[str, Any]],
    settings: Any,
    out_dir: Path,
    *,
    suite: str = "fixed",
    questions_file: str = "",
    thresholds_path: Path | None = DEFAULT_THRESHOLDS,
    baseline_path: Path | None = DEFAULT_BASELINE,
) -> RunResult:
    """Score saved predictions (predictions.jsonl rows) without running the chain again.

    Retrieved paragraphs are looked up by (source, paragraph) in ``settings.corpus_dir``, so the
    corpus must be the one the predictions were made on. Questions without a prediction are
    left out. Only the deterministic judge runs (use ``judge_run`` for the LLM judge).
    """
    from rag.loading import load_corpus
    from rag.paragraphs import split_paragraphs

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paras = {
        (p.source, p.number): p.text
        for d in load_corpus(settings.corpus_dir)
        for p in split_paragraphs(d)
    }
    by_id = {p["id"]: p for p in predictions}
    qs = [q for q in questions if q.id in by_id]
    judges: list[Judge] = [DeterministicJudge()]
    k = int(settings.retrieval.k)
    scores = []
    with (out_dir / "predictions.jsonl").open("w", encoding="utf-8") as pf:
        for q in qs:
            pred = by_id[q.id]
            pf.write(json.dumps(pred, ensure_ascii=False) + "\n")
            texts = [
                paras.get((r["source"], int(r["paragraph"])), "") for r in pred.get("retrieved", [])
            ]
            scores.append(score_question(q, pred, texts, k=k, judges=judges))
    metrics = aggregate(qs, scores)
    thresholds = load_json(thresholds_path).get(suite, {})
    baseline = load_json(baseline_path).get(suite, {})
    gates = check_gates(metrics, thresholds, baseline)
    report: dict[str, Any] = {
        "suite": suite,
        "questions_file": questions_file,
        "corpus": str(settings.corpus_dir),
        "k": k,
        "started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seconds": None,
        "n_questions": len(qs),
        "n_answerable": sum(1 for q in qs if q.answerable),
        "judges": [j.name for j in judges],
        "llm": settings.llm.backend,
        "rescored": True,
        "metrics": metrics,
        "categories": by_category(qs, scores),
        "thresholds": thresholds,
        "baseline": baseline.get("metrics") or {},
        "gates": [g.to_dict() for g in gates],
        "passed": all(g.passed for g in gates),
        "question_errors": [],
        "questions": scores,
    }
    (out_dir / "report.json").write_text(
        json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    qmap = {q.id: q.model_dump() for q in qs}
    (out_dir / "report.md").write_text(render_markdown(report, qmap, by_id), encoding="utf-8")
    try:
        write_plots(report, out_dir)
    except Exception as exc:
        logger.warning("plots failed: %s", exc)
    return RunResult(report, gates, out_dir)
