"""Score one prediction against its question, and aggregate a run into labelled metrics with
95 % confidence intervals.

Every question ends in exactly one *outcome*: ``answered``, ``abstained`` or ``error`` (the
chain raised, or abstained only because the model did not finish in time). An error is never
an abstention: it counts as a wrong answer in ``overall_accuracy`` and ``answer_contains``, is
left out of the abstention metrics (it is neither a right nor a wrong abstention), and is
counted by the ``errors`` metric, gated at 0.

Every aggregate metric carries the *judge* that produced it:

* ``evidence-match``: gold evidence strings found in paragraph text (retrieval, citations);
* ``gold-answer``: gold answer strings with SQuAD's normalisation (correctness, F1);
* ``gold-label``: the question's ``answerable`` flag (abstention metrics);
* ``deterministic``: the evals' own statement check (``evals.judge``; no code shared with rag);
* ``self_judge:<model>`` / ``llm_judge:<model>``: an LLM judge, when asked for;
* ``timer``: wall-clock seconds measured by the chain; ``runner``: counts of the run itself.

Intervals (``ci``, method in ``ci_method``): Wilson for a share of yes/no outcomes (k of n),
percentile bootstrap over questions for averages of fractional scores and for F1
(``evals.stats``). Latency percentiles and counts have no interval.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from evals import metrics as m
from evals.dataset import Question
from evals.judge import Judge
from evals.stats import bootstrap, wilson

Rows = Sequence[dict[str, Any]]
# (value, n, successes): successes is k of a k/n share (Wilson), None otherwise (bootstrap)
Computed = tuple[float | None, int, int | None]


@dataclass(frozen=True)
class MetricDef:
    judge: str
    higher_is_better: bool
    description: str
    compute: Callable[[Rows], Computed]
    interval: bool = True  # False: no confidence interval (latency, counts)
    independent: bool = True  # False: judged by the model that wrote the answers


def _mean_of(key: str) -> Callable[[Rows], Computed]:
    def compute(rows: Rows) -> Computed:
        vals = [float(r[key]) for r in rows if r.get(key) is not None]
        if not vals:
            return None, 0, None
        binary = all(v in (0.0, 1.0) for v in vals)
        return sum(vals) / len(vals), len(vals), int(sum(vals)) if binary else None

    return compute


def _overall(rows: Rows) -> Computed:
    k = sum(1 for r in rows if r["correct"])
    return (k / len(rows) if rows else None), len(rows), k


def _confusion(rows: Rows) -> m.AbstentionScores:
    done = [r for r in rows if r.get("outcome") != "error"]
    return m.abstention_scores([r["answerable"] for r in done], [r["abstained"] for r in done])


def _abst_precision(rows: Rows) -> Computed:
    a = _confusion(rows)
    return a.precision, a.tp + a.fp, a.tp


def _abst_recall(rows: Rows) -> Computed:
    a = _confusion(rows)
    return a.recall, a.tp + a.fn, a.tp


def _abst_f1(rows: Rows) -> Computed:
    a = _confusion(rows)
    return a.f1, a.tp + a.fp + a.fn + a.tn, None


def _false_abst(rows: Rows) -> Computed:
    a = _confusion(rows)
    return a.false_abstention_rate, a.fp + a.tn, a.fp


def _gold_in_evidence(rows: Rows) -> Computed:
    hits = [s["gold_in_evidence"] for s in rows if s.get("gold_in_evidence") is not None]
    return (sum(hits) / len(hits) if hits else None), len(hits), sum(hits)


def _errors(rows: Rows) -> Computed:
    return float(sum(1 for r in rows if r.get("outcome") == "error")), len(rows), None


def _latency(q: float) -> Callable[[Rows], Computed]:
    def compute(rows: Rows) -> Computed:
        lat = [float(r["latency_s"]) for r in rows if r.get("latency_s") is not None]
        return m.percentile(lat, q), len(lat), None

    return compute


def _verdicts(rows: Rows, judge: str) -> list[bool]:
    return [
        bool(v)
        for r in rows
        for st in r.get("statements", [])
        if (v := st["verdicts"].get(judge)) is not None
    ]


def _faith(judge: str) -> Callable[[Rows], Computed]:
    def compute(rows: Rows) -> Computed:
        vs = _verdicts(rows, judge)
        k = sum(vs)
        return (k / len(vs) if vs else None), len(vs), k

    return compute


def _agreement(judge: str) -> Callable[[Rows], Computed]:
    def compute(rows: Rows) -> Computed:
        pairs = [
            (st["verdicts"].get("deterministic"), st["verdicts"].get(judge))
            for r in rows
            for st in r.get("statements", [])
        ]
        known = [(a, b) for a, b in pairs if a is not None and b is not None]
        k = sum(1 for a, b in known if a == b)
        return (k / len(known) if known else None), len(known), k

    return compute


BASE_METRICS: dict[str, MetricDef] = {
    "retrieval_recall_at_1": MetricDef(
        "evidence-match",
        True,
        "evidence in the top retrieved paragraph",
        _mean_of("retrieval_recall_at_1"),
    ),
    "retrieval_recall_at_k": MetricDef(
        "evidence-match",
        True,
        "evidence in the top k retrieved paragraphs",
        _mean_of("retrieval_recall_at_k"),
    ),
    "retrieval_mrr": MetricDef(
        "evidence-match",
        True,
        "1/rank of the first paragraph with evidence",
        _mean_of("retrieval_mrr"),
    ),
    "answer_contains": MetricDef(
        "gold-answer",
        True,
        "answerable: normalised gold answer in the answer",
        _mean_of("answer_contains"),
    ),
    "answer_f1": MetricDef(
        "gold-answer", True, "answerable: SQuAD token F1 (best gold)", _mean_of("answer_f1")
    ),
    "overall_accuracy": MetricDef(
        "gold-answer",
        True,
        "answerable: gold contained; unanswerable: abstained; error: wrong",
        _overall,
    ),
    "citation_recall": MetricDef(
        "evidence-match",
        True,
        "ALCE: citations jointly contain evidence",
        _mean_of("citation_recall"),
    ),
    "citation_precision": MetricDef(
        "evidence-match",
        True,
        "ALCE: share of citations containing evidence",
        _mean_of("citation_precision"),
    ),
    "faithfulness_deterministic": MetricDef(
        "deterministic",
        True,
        "share of statements the evals' own check supports",
        _faith("deterministic"),
    ),
    "abstention_precision": MetricDef(
        "gold-label", True, "abstentions that were right", _abst_precision
    ),
    "abstention_recall": MetricDef(
        "gold-label", True, "unanswerable questions abstained on", _abst_recall
    ),
    "abstention_f1": MetricDef("gold-label", True, "F1 of the two above", _abst_f1),
    "false_abstention_rate": MetricDef(
        "gold-label", False, "answerable questions abstained on", _false_abst
    ),
    "gold_in_unconfirmed_evidence": MetricDef(
        "gold-answer",
        True,
        "answerable questions shown as unconfirmed whose evidence holds the gold answer",
        _gold_in_evidence,
    ),
    "errors": MetricDef(
        "runner",
        False,
        "questions on which the chain raised (its own outcome)",
        _errors,
        interval=False,
    ),
    "latency_p50_s": MetricDef(
        "timer", False, "median seconds per answer", _latency(50), interval=False
    ),
    "latency_p95_s": MetricDef(
        "timer", False, "95th percentile seconds per answer", _latency(95), interval=False
    ),
}


def metric_defs(llm_judges: Sequence[tuple[str, str]] = ()) -> dict[str, MetricDef]:
    """All metrics of a run; ``llm_judges``: (kind, name) of each LLM judge used, which adds
    ``faithfulness_<kind>`` and ``agreement_<kind>`` (deterministic vs that judge)."""
    defs = dict(BASE_METRICS)
    for kind, name in llm_judges:
        independent = kind != "self_judge"
        defs[f"faithfulness_{kind}"] = MetricDef(
            name,
            True,
            "share of statements the LLM calls supported"
            + ("" if independent else " (the generator judging itself)"),
            _faith(name),
            independent=independent,
        )
        defs[f"agreement_{kind}"] = MetricDef(
            f"deterministic vs {name}",
            True,
            "share of statements both judges agree on",
            _agreement(name),
            independent=independent,
        )
    return defs


# The chain turns a generation timeout into an abstention whose reason says so; the model did
# not run to the end, so for the evaluation it is an error, not an abstention.
_CHAIN_FAILURE = re.compile(r"model did not finish within", re.IGNORECASE)


def prediction_record(q: Question, answer: Any) -> dict[str, Any]:
    """The predictions.jsonl row of one ``rag.Answer``."""
    d = answer.to_dict(citation_fields=("marker", "source", "paragraph", "page", "text", "quote"))
    reason = d.get("reason", "") or ""
    failed = bool(d["abstained"] and (d.get("stage") == "timeout" or _CHAIN_FAILURE.search(reason)))
    outcome = "error" if failed else ("abstained" if d["abstained"] else "answered")
    return {
        "id": q.id,
        "question": q.question,
        "outcome": outcome,
        **({"error": f"chain: {reason}"} if failed else {}),
        "answer": d["answer"],
        "abstained": d["abstained"] and not failed,
        "citations": d["citations"],
        "standalone_question": d["standalone_question"],
        "retrieved": d["retrieved"],
        "timings": d["timings"],
        "reason": d.get("reason", ""),
        # answered | unconfirmed | abstained as the user saw it; unconfirmed counts as abstained
        "shown": d.get("outcome", ""),
        "stage": d.get("stage", ""),
        "gate_score": d.get("gate_score"),
        "gate_threshold": d.get("gate_threshold"),
        "evidence": d.get("evidence", []),
        "raw_output": getattr(answer, "raw_output", ""),  # the unverified model text, for diagnosis
    }


def error_record(q: Question, error: str) -> dict[str, Any]:
    """A prediction row for a question the chain raised on: outcome ``error``, no answer."""
    return {
        "id": q.id,
        "question": q.question,
        "outcome": "error",
        "answer": "",
        "abstained": False,
        "citations": [],
        "standalone_question": "",
        "retrieved": [],
        "timings": {},
        "reason": "",
        "error": error,
    }


def outcome_of(pred: dict[str, Any]) -> str:
    """``answered``, ``abstained`` or ``error`` (older prediction rows have no ``outcome``)."""
    if pred.get("outcome"):
        return str(pred["outcome"])
    if pred.get("error"):
        return "error"
    return "abstained" if pred.get("abstained") else "answered"


def score_question(
    q: Question,
    pred: dict[str, Any],
    retrieved_texts: Sequence[str],
    *,
    k: int,
    judges: Sequence[Judge] = (),
) -> dict[str, Any]:
    """Per-question scores. ``retrieved_texts``: the retrieved paragraphs' text, in rank order."""
    outcome = outcome_of(pred)
    abstained = outcome == "abstained"
    answered = outcome == "answered"
    answer_text = m.strip_markers(pred["answer"]) if answered else ""
    s: dict[str, Any] = {
        "id": q.id,
        "category": q.category,
        "answerable": q.answerable,
        "outcome": outcome,
        "abstained": abstained,
    }
    if q.answerable:
        if outcome != "error":
            s["retrieval_recall_at_1"] = m.recall_at_k(
                retrieved_texts, q.evidence, 1, q.all_answers
            )
            s["retrieval_recall_at_k"] = m.recall_at_k(
                retrieved_texts, q.evidence, k, q.all_answers
            )
            s["retrieval_mrr"] = m.reciprocal_rank(retrieved_texts, q.evidence)
            s["retrieved_relevant"] = [m.contains_evidence(t, q.evidence) for t in retrieved_texts]
        s["answer_contains"] = m.answer_contains(answer_text, q.answers, q.all_answers)
        s["answer_f1"] = m.answer_f1(answer_text, q.answers, q.all_answers)
        s["correct"] = bool(s["answer_contains"])
    else:
        s["correct"] = abstained
    cites = pred.get("citations", [])
    if outcome != "error":
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
    if answered:
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
    s["stage"] = pred.get("stage", "") if abstained else ""
    s["gate_score"] = pred.get("gate_score") if outcome != "error" else None
    s["gate_threshold"] = pred.get("gate_threshold")
    if q.answerable and pred.get("shown") == "unconfirmed":
        evidence = " ".join(c.get("quote", "") for c in pred.get("evidence", []))
        s["gold_in_evidence"] = bool(m.answer_contains(evidence, q.answers, q.all_answers))
    s["latency_s"] = (pred.get("timings") or {}).get("total")
    if pred.get("error"):
        s["error"] = pred["error"]
    s["failures"] = failure_reasons(q, s)
    return s


def failure_reasons(q: Question, s: dict[str, Any]) -> list[str]:
    """Why a question counts as failing (empty: it passed)."""
    out = []
    if s.get("outcome") == "error":
        return [f"error: {s.get('error', 'the chain raised')}"]
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
            out.append(
                f"statement not supported by its quote (deterministic): {st['statement'][:80]!r}"
            )
    return out


def aggregate(
    scores: Rows | Sequence[Question],
    rows: Rows | None = None,
    *,
    llm_judges: Sequence[tuple[str, str]] = (),
    intervals: bool = True,
) -> dict[str, dict[str, Any]]:
    """Aggregate metrics: {name: {value, ci, ci_method, judge, independent, n,
    higher_is_better, description}} of the scored questions. ``llm_judges``: (kind, name) of
    the LLM judges used. ``aggregate(questions, scores)`` (the older form) is accepted: the
    rows carry what the questions would add."""
    if rows is not None:
        scores = rows
    out: dict[str, dict[str, Any]] = {}
    for name, d in metric_defs(llm_judges).items():
        value, n, k = d.compute(scores)
        ci: tuple[float, float] | None = None
        method = None
        if intervals and d.interval and value is not None:
            if k is not None:
                ci, method = wilson(k, n), "wilson"
            else:
                ci = bootstrap(list(scores), lambda rows, d=d: d.compute(rows)[0])
                method = "bootstrap" if ci is not None else None
        out[name] = {
            "value": None if value is None else round(float(value), 4),
            "ci": list(ci) if ci else None,
            "ci_method": method,
            "judge": d.judge,
            "independent": d.independent,
            "n": n,
            "higher_is_better": d.higher_is_better,
            "description": d.description,
        }
    return out


def by_category(scores: Rows) -> dict[str, dict[str, Any]]:
    """Per category: question count, share correct with its Wilson interval, abstentions,
    errors."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in scores:
        groups[s.get("category") or "(none)"].append(s)
    out = {}
    for cat, ss in sorted(groups.items()):
        k = sum(1 for s in ss if s["correct"])
        out[cat] = {
            "n": len(ss),
            "correct": round(k / len(ss), 4),
            "ci": list(wilson(k, len(ss)) or ()),
            "abstained": sum(1 for s in ss if s["abstained"]),
            "errors": sum(1 for s in ss if s.get("outcome") == "error"),
        }
    return out


def gate_curve(scores: Rows) -> list[dict[str, float]]:
    """What the answer gate's threshold trades: for each threshold (each gate score seen, and
    above the highest), the share of answerable and of unanswerable questions that would be
    answered. A question the gate never judged (stopped at retrieval or reading, or an error)
    is answered at no threshold; one answered although the gate passed none of its statements
    (the reader's best sentence, picked on a P(yes) of its own) is answered at every
    threshold. Empty when no question reached the gate."""
    rows = [
        (s["answerable"], s.get("gate_score"), _answered_past_the_gate(s))
        for s in scores
        if s.get("outcome") != "error"
    ]
    seen = sorted({g for _, g, _ in rows if g is not None})
    n_ans = sum(1 for a, _, _ in rows if a)
    n_un = len(rows) - n_ans
    if not seen or not n_ans or not n_un:
        return []
    curve = []
    for t in [*seen, seen[-1] + 1e-9]:
        passed = [a for a, g, past in rows if past or (g is not None and g >= t)]
        curve.append(
            {
                "threshold": round(t, 6),
                "answerable_answered": sum(passed) / n_ans,
                "unanswerable_answered": (len(passed) - sum(passed)) / n_un,
            }
        )
    return curve


def _answered_past_the_gate(s: dict[str, Any]) -> bool:
    """Shown as an answer although the gate scored no statement at its threshold."""
    if s.get("outcome") != "answered":
        return False
    g, t = s.get("gate_score"), s.get("gate_threshold")
    return g is None or t is None or g < t


def by_stage(scores: Rows) -> dict[str, dict[str, int]]:
    """Abstentions per stage that made them (retrieval, reading, gate…), split by whether the
    question was answerable (those are the false abstentions to trace)."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: {"answerable": 0, "unanswerable": 0})
    for s in scores:
        if s.get("abstained"):
            out[s.get("stage") or "(none)"][
                "answerable" if s["answerable"] else "unanswerable"
            ] += 1
    return dict(sorted(out.items()))
