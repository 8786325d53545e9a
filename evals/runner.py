"""Run a question file through the real answer chain, score it, gate it and hand the result to
the report writer (``evals.report.write_report``).

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
from evals.memory import PeakRss
from evals.report import write_report
from evals.scoring import (
    aggregate,
    by_category,
    by_stage,
    error_record,
    gate_curve,
    prediction_record,
    score_question,
)

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_QUESTIONS = PACKAGE_DIR / "questions.jsonl"
DEFAULT_THRESHOLDS = PACKAGE_DIR / "thresholds.json"
DEFAULT_BASELINE = PACKAGE_DIR / "baseline.json"
RSS_SAMPLE_S = 0.25


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


def _llm_judges(judges: Sequence[Judge]) -> list[tuple[str, str]]:
    return [(j.kind, j.name) for j in judges if j.kind != "deterministic"]


def build(
    questions: Sequence[Question],
    scores: list[dict[str, Any]],
    predictions: dict[str, dict[str, Any]],
    out_dir: Path,
    *,
    suite: str,
    thresholds: dict[str, Any],
    baseline: dict[str, Any],
    judges: Sequence[str],
    llm_judges: Sequence[tuple[str, str]] = (),
    question_errors: Sequence[str] = (),
    meta: dict[str, Any] | None = None,
) -> RunResult:
    """Metrics, gates and the report of scored questions (not yet written)."""
    metrics = aggregate(scores, llm_judges=llm_judges)
    gates = check_gates(metrics, thresholds, baseline, question_errors=len(question_errors))
    report: dict[str, Any] = {
        "suite": suite,
        **(meta or {}),
        "n_questions": len(questions),
        "n_answerable": sum(1 for q in questions if q.answerable),
        "judges": list(judges),
        "metrics": metrics,
        "categories": by_category(scores),
        "abstentions_by_stage": by_stage(scores),
        "gate_curve": gate_curve(scores),
        "thresholds": thresholds,
        "baseline": baseline.get("metrics") or {},
        "gates": [g.to_dict() for g in gates],
        "passed": all(g.passed for g in gates),
        "question_errors": list(question_errors),
        "questions": scores,
    }
    return RunResult(report, gates, Path(out_dir))


def finish(
    questions: Sequence[Question],
    scores: list[dict[str, Any]],
    predictions: dict[str, dict[str, Any]],
    out_dir: Path,
    **kwargs: Any,
) -> RunResult:
    """``build`` the report and write it."""
    return write(build(questions, scores, predictions, out_dir, **kwargs), questions, predictions)


def write(
    result: RunResult, questions: Sequence[Question], predictions: dict[str, dict[str, Any]]
) -> RunResult:
    """Write the report files of a built result: the one place a run's report is written."""
    questions_by_id = {q.id: q.model_dump() for q in questions}
    write_report(result.report, result.out_dir, questions_by_id, predictions)
    return result


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
    llm_judges: Sequence[Judge] = (),
    progress: bool = True,
    index: bool = True,
    subset: str = "",
) -> RunResult:
    """Answer every question with the chain, score, gate and write the report files.

    ``chain``: anything with ``invoke(question, history) -> rag.Answer`` (default: the real
    ``rag.get_chain(settings)``). ``llm_judges``: optional LLM faithfulness judges (none by
    default). ``index``: bring the index in line with the corpus first (incremental ingest).
    A question on which the chain raises gets the outcome ``error``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    t0 = time.perf_counter()
    answering = 0.0
    interrupted = False
    with PeakRss(RSS_SAMPLE_S) as rss:
        if index:
            from rag.ingest import ingest

            ingest(settings)  # incremental: only what changed is embedded
        if chain is None:
            from rag.chain import get_chain

            chain = get_chain(settings)
        judges: list[Judge] = [DeterministicJudge(), *llm_judges]
        k = int(settings.retrieval.k)
        scores: list[dict[str, Any]] = []
        preds: dict[str, dict[str, Any]] = {}
        pred_path = out_dir / "predictions.jsonl"
        with (
            pred_path.open("w", encoding="utf-8") as pf,
            _progress(len(questions), progress) as bar,
        ):
            for q in questions:
                texts: list[str] = []
                ta = time.perf_counter()
                try:
                    ans = chain.invoke(q.question, q.history_dicts())
                    answering += time.perf_counter() - ta
                    pred = prediction_record(q, ans)
                    texts = [p.text for p in ans.passages]
                except KeyboardInterrupt:  # Ctrl-C or SIGTERM: report what was answered
                    logger.warning("interrupted at question %s", q.id)
                    interrupted = True
                    break
                except Exception as exc:  # its own outcome; the other questions still run
                    answering += time.perf_counter() - ta
                    logger.warning("question %s failed: %s", q.id, exc)
                    pred = error_record(q, f"{type(exc).__name__}: {exc}")
                pf.write(json.dumps(pred, ensure_ascii=False) + "\n")
                pf.flush()
                preds[q.id] = pred
                scores.append(score_question(q, pred, texts, k=k, judges=judges))
                bar.update(1)
                bar.set_postfix_str(q.id)
        meta = {
            "questions_file": questions_file,
            "corpus": str(settings.corpus_dir),
            "k": k,
            "started": started,
            "llm": settings.llm.backend,
            "subset": subset,
        }
        if interrupted:
            meta["subset"] = f"{len(scores)} of {len(questions)} questions (interrupted)"
            meta["interrupted"] = True
            questions = [q for q in questions if q.id in preds]
        result = build(
            questions,
            scores,
            preds,
            out_dir,
            suite=suite,
            thresholds=load_json(thresholds_path).get(suite, {}),
            baseline=load_json(baseline_path).get(suite, {}),
            judges=[j.name for j in judges],
            llm_judges=_llm_judges(judges),
            question_errors=[str(e) for e in question_errors],
            meta=meta,
        )
    if interrupted:  # a partial run is never green
        gate = GateResult("run", "interrupted", None, None, False, "the run was interrupted")
        result.gates.append(gate)
        result.report["gates"].append(gate.to_dict())
        result.report["passed"] = False
    # time (index, answers, scoring, metrics with intervals; not the file writing) and memory
    total = time.perf_counter() - t0
    result.report["seconds"] = round(total, 1)
    result.report["resources"] = {
        "seconds_total": round(total, 1),
        "seconds_answering": round(answering, 1),
        "overhead_ratio": round(total / answering, 3) if answering else None,
        "peak_rss_mb": rss.peak_mb,
        "rss_sample_s": RSS_SAMPLE_S,
    }
    return write(result, questions, preds)


def read_predictions(*paths: Path) -> dict[str, dict[str, Any]]:
    """predictions.jsonl rows by question id; with several files, a later file wins per id."""
    preds = {}
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                p = json.loads(line)
                preds[p["id"]] = p
    return preds


def judge_run(
    out_dir: Path,
    judge: Judge,
    *,
    questions: Sequence[Question] | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> RunResult:
    """Apply an LLM judge to the statements of an earlier run in ``out_dir``, then recompute
    its metrics and gates and rewrite the report.

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
    preds = read_predictions(out_dir / "predictions.jsonl")
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
    names = list(dict.fromkeys([*report.get("judges", []), judge.name]))
    kinds = [(n.split(":", 1)[0], n) for n in names if n.split(":", 1)[0] != "deterministic"]
    meta = {
        k: report.get(k)
        for k in ("questions_file", "corpus", "k", "started", "llm", "seconds", "resources")
    }
    meta["llm_judged_statements"] = len(todo)
    return finish(
        qs,
        scores,
        preds,
        out_dir,
        suite=report.get("suite", "fixed"),
        thresholds=report.get("thresholds") or {},
        baseline={"metrics": report.get("baseline") or {}},
        judges=names,
        llm_judges=kinds,
        question_errors=report.get("question_errors") or [],
        meta=meta,
    )


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
    left out. Only the deterministic judge runs (use ``judge_run`` for an LLM judge).
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
    meta = {
        "questions_file": questions_file,
        "corpus": str(settings.corpus_dir),
        "k": k,
        "started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seconds": None,
        "llm": settings.llm.backend,
        "rescored": True,
    }
    return finish(
        qs,
        scores,
        by_id,
        out_dir,
        suite=suite,
        thresholds=load_json(thresholds_path).get(suite, {}),
        baseline=load_json(baseline_path).get(suite, {}),
        judges=[j.name for j in judges],
        question_errors=[],
        meta=meta,
    )
