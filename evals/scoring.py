"""Score one prediction against its question, and aggregate a run into labelled metrics.

Every aggregate metric carries the *judge* that produced it:

* ``evidence-match``: gold evidence strings found in paragraph text (retrieval, citations);
* ``gold-answer``: gold answer strings with SQuAD's normalisation (correctness, F1);
* ``gold-label``: the question's ``answerable`` flag (abstention metrics);
* ``deterministic``: verbatim quote + content-word support (faithfulness);
* ``llm:<model>``: the LLM judge (faithfulness), when enabled;
* ``timer``: wall-clock seconds measured by the chain.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from evals import metrics as m
from evals.dataset import Question
from evals.judge import Judge


@dataclass(frozen=True)
class MetricInfo:
    judge: str
    higher_is_better: bool = True
    description: str = ""


# name -> static info (the LLM judge's name is filled in at run time)
METRICS: dict[str, MetricInfo] = {
    "retrieval_recall_at_1": MetricInfo(
        "evidence-match", True, "evidence in the top retrieved paragraph"
    ),
    "retrieval_recall_at_k": MetricInfo(
        "evidence-match", True, "evidence in the top k retrieved paragraphs"
    ),
    "retrieval_mrr": MetricInfo(
        "evidence-match", True, "1/rank of the first paragraph with evidence"
    ),
    "answer_contains": MetricInfo(
        "gold-answer", True, "answerable: normalised gold answer in the answer"
    ),
    "answer_f1": MetricInfo("gold-answer", True, "answerable: SQuAD token F1 (best gold)"),
    "overall_accuracy": MetricInfo(
        "gold-answer", True, "answerable: gold contained; unanswerable: abstained"
    ),
    "citation_recall": MetricInfo(
        "evidence-match", True, "ALCE: citations jointly contain evidence"
    ),
    "citation_precision": MetricInfo(
        "evidence-match", True, "ALCE: share of citations containing evidence"
    ),
    "faithfulness_deterministic": MetricInfo(
        "deterministic", True, "share of statements supported"
    ),
    "faithfulness_llm": MetricInfo(
        "llm", True, "share of statements the LLM judge calls supported"
    ),
    "judge_agreement": MetricInfo(
        "deterministic vs llm", True, "share of statements both judges agree on"
    ),
    "abstention_precision": MetricInfo("gold-label", True, "abstentions that were right"),
    "abstention_recall": MetricInfo("gold-label", True, "unanswerable questions abstained on"),
    "abstention_f1": MetricInfo("gold-label", True, "F1 of the two above"),
    "false_abstention_rate": MetricInfo("gold-label", False, "answerable questions abstained on"),
    "latency_p50_s": MetricInfo("timer", False, "median seconds per answer"),
    "latency_p95_s": MetricInfo("timer", False, "95th percentile seconds per answer"),
}


def prediction_record(q: Question, answer: Any) -> dict[str, Any]:
    """The predictions.jsonl row of one ``rag.Answer``."""
    d = answer.to_dict()
    return {
        "id": q.id,
        "question": q.question,
        "answer": d["answer"],
        "abstained": d["abstained"],
        "citations": [
            {k: c[k] for k in ("marker", "source", "paragraph", "text", "quote")}
            for c in d["citations"]
        ],
        "standalone_question": d["standalone_question"],
        "retrieved": d["retrieved"],
        "timings": d["timings"],
        "reason": d.get("reason", ""),
        "raw_output": getattr(answer, "raw_output", ""),  # the unverified model text, for diagnosis
    }


def error_record(q: Question, error: str) -> dict[str, Any]:
    """A prediction row for a question the chain raised on (scored as an abstention)."""
    return {
        "id": q.id,
        "question": q.question,
        "answer": "",
        "abstained": True,
        "citations": [],
        "standalone_question": "",
        "retrieved": [],
        "timings": {},
        "reason": "",
        "error": error,
    }


def score_question(
    q: Question,
    pred: dict[str, Any],
    retrieved_texts: Sequence[str],
    *,
    k: int,
    judges: Sequence[Judge] = (),
) -> dict[str, Any]:
    """Per-question scores. ``retrieved_texts``: the retrieved paragraphs' text, in rank order."""
    abstained = bool(pred["abstained"])
    answer_text = m.strip_markers(pred["answer"]) if not abstained else ""
    s: dict[str, Any] = {
        "id": q.id,
        "category": q.category,
        "answerable": q.answerable,
        "abstained": abstained,
    }
    if q.answerable:
        s["retrieval_recall_at_1"] = m.recall_at_k(retrieved_texts, q.evidence, 1, q.all_answers)
        s["retrieval_recall_at_k"] = m.recall_at_k(retrieved_texts, q.evidence, k, q.all_answers)
        s["retrieval_mrr"] = m.reciprocal_rank(retrieved_texts, q.evidence)
        s["retrieved_relevant"] = [m.contains_evidence(t, q.evidence) for t in retrieved_texts]
        s["answer_contains"] = m.answer_contains(answer_text, q.answers, q.all_answers)
        s["answer_f1"] = m.answer_f1(answer_text, q.answers, q.all_answers)
        s["correct"] = bool(s["answer_contains"])
    else:
        s["correct"] = abstained
    cites = pred.get("citations", [])
    cs = m.citation_scores(
        [c["text"] for c in cites],
        q.evidence,
        answerable=q.answerable,
        abstained=abstained,
        all_required=q.all_answers,
    )
    s["citation_recall"] = cs.recall
    s["citation_precision"] = cs.precision
    statements = []
    if not abstained:
        asked = pred.get("standalone_question") or q.question
        for stmt, c in m.pair_statements(pred["answer"], cites):
            row: dict[str, Any] = {
                "statement": stmt,
                "source": c["source"],
                "paragraph": c["paragraph"],
                "quote": c["quote"],
                "relevant": m.contains_evidence(c["text"], q.evidence) if q.answerable else False,
                "verdicts": {},
            }
            for j in judges:
                row["verdicts"][j.name] = j.supported(stmt, c["quote"], c["text"], asked)
            statements.append(row)
    s["statements"] = statements
    s["latency_s"] = (pred.get("timings") or {}).get("total")
    if pred.get("error"):
        s["error"] = pred["error"]
    s["failures"] = failure_reasons(q, s)
    return s


def failure_reasons(q: Question, s: dict[str, Any]) -> list[str]:
    """Why a question counts as failing (empty: it passed)."""
    out = []
    if s.get("error"):
        out.append(f"error: {s['error']}")
    if q.answerable:
        if s["abstained"]:
            out.append("abstained on an answerable question")
        elif not s["answer_contains"]:
            out.append("gold answer not in the answer")
        if not s["abstained"] and s.get("citation_recall") == 0:
            out.append("no cited paragraph contains the evidence")
        elif not s["abstained"] and (s.get("citation_recall") or 0) < 1:
            out.append("citations cover only part of the evidence")
        if s.get("retrieval_recall_at_k") == 0:
            out.append("evidence not retrieved")
    elif not s["abstained"]:
        out.append("answered an unanswerable question")
    for st in s.get("statements", []):
        if st["verdicts"].get("deterministic") is False:
            out.append(f"unfaithful statement (deterministic): {st['statement'][:80]!r}")
    return out


def aggregate(
    questions: Sequence[Question],
    scores: Sequence[dict[str, Any]],
    *,
    llm_judge: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Aggregate metrics: {name: {value, judge, n, higher_is_better, description}}."""
    out: dict[str, dict[str, Any]] = {}

    def put(name: str, value: float | None, n: int, judge: str | None = None) -> None:
        info = METRICS[name]
        out[name] = {
            "value": None if value is None else round(float(value), 4),
            "judge": judge or info.judge,
            "n": n,
            "higher_is_better": info.higher_is_better,
            "description": info.description,
        }

    def avg(name: str) -> None:
        vals = [s.get(name) for s in scores if s.get(name) is not None]
        put(name, m.mean(vals), len(vals))

    for name in (
        "retrieval_recall_at_1",
        "retrieval_recall_at_k",
        "retrieval_mrr",
        "answer_contains",
        "answer_f1",
        "citation_recall",
        "citation_precision",
    ):
        avg(name)
    put("overall_accuracy", m.mean([float(s["correct"]) for s in scores]), len(scores))

    stmts = [st for s in scores for st in s.get("statements", [])]
    det = [st["verdicts"].get("deterministic") for st in stmts]
    det_known = [v for v in det if v is not None]
    put("faithfulness_deterministic", m.mean([float(v) for v in det_known]), len(det_known))
    if llm_judge:
        llm = [st["verdicts"].get(llm_judge) for st in stmts]
        llm_known = [v for v in llm if v is not None]
        put("faithfulness_llm", m.mean([float(v) for v in llm_known]), len(llm_known), llm_judge)
        agree, n = m.agreement(det, llm)
        put("judge_agreement", agree, n, f"deterministic vs {llm_judge}")

    ab = m.abstention_scores([q.answerable for q in questions], [s["abstained"] for s in scores])
    n_unans = ab.tp + ab.fn
    put("abstention_precision", ab.precision, ab.tp + ab.fp)
    put("abstention_recall", ab.recall, n_unans)
    put("abstention_f1", ab.f1, len(scores))
    put("false_abstention_rate", ab.false_abstention_rate, ab.fp + ab.tn)
    lat = [float(s["latency_s"]) for s in scores if s.get("latency_s") is not None]
    put("latency_p50_s", m.percentile(lat, 50), len(lat))
    put("latency_p95_s", m.percentile(lat, 95), len(lat))
    return out


def by_category(
    questions: Sequence[Question], scores: Sequence[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Per category: question count, share correct (overall_accuracy), abstentions."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for q, s in zip(questions, scores, strict=True):
        groups[q.category or "(none)"].append(s)
    return {
        cat: {
            "n": len(ss),
            "correct": round(sum(1 for s in ss if s["correct"]) / len(ss), 4),
            "abstained": sum(1 for s in ss if s["abstained"]),
        }
        for cat, ss in sorted(groups.items())
    }
