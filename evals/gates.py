"""Quality gates: minimums/maximums per metric (evals/thresholds.json) and no large drop from
the recorded baseline (evals/baseline.json). Both files hold one section per suite
(``fixed``: evals/questions.jsonl, ``squad``: the SQuAD sample).

thresholds.json::

    {"fixed": {"min": {"answer_contains": 0.6, ...},
               "max": {"false_abstention_rate": 0.3, ...},
               "baseline_margin": 0.1,                 # allowed drop from baseline (absolute)
               "baseline_margins": {"abstention_recall": 0.2},  # per-metric overrides
               "baseline_skip": ["latency_p50_s", ...],        # not compared with baseline
               "optional": ["faithfulness_llm_judge"]},       # may be absent (see below)
     "squad": {...}}

A gate whose metric is missing from the run, or not applicable (value None), FAILS, unless the
metric is listed in ``optional``: a misspelled metric name or a judge that was switched off
must not turn a gate silently off.

baseline.json::

    {"fixed": {"metrics": {"answer_contains": 0.8, ...}, "updated": "...", "from": "..."}}
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class GateResult:
    metric: str
    kind: str  # "min", "max", "baseline", "questions"
    value: float | None
    limit: float | None
    passed: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_json(path: Path | None) -> dict[str, Any]:
    if path is None or not Path(path).is_file():
        return {}
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def check_gates(
    metrics: dict[str, dict[str, Any]],
    thresholds: dict[str, Any],
    baseline: dict[str, Any] | None = None,
    *,
    question_errors: int = 0,
) -> list[GateResult]:
    """Every gate of one suite. ``metrics``: aggregate metrics as from ``scoring.aggregate``;
    ``thresholds`` / ``baseline``: the suite's section. A metric that is absent or not
    applicable (value None) fails its gate unless ``thresholds["optional"]`` lists it."""
    results: list[GateResult] = []
    optional = set(thresholds.get("optional") or [])

    def value(name: str) -> float | None:
        v = metrics.get(name, {}).get("value")
        return None if v is None else float(v)

    def missing(name: str, kind: str, limit: float | None) -> GateResult:
        why = "not in this run" if name not in metrics else "not applicable in this run"
        if name in optional:
            return GateResult(name, kind, None, limit, True, f"{name}: {why} (optional)")
        return GateResult(
            name,
            kind,
            None,
            limit,
            False,
            f"{name}: {why}; the gate cannot pass (misspelled, or mark it optional)",
        )

    if not thresholds:
        results.append(
            GateResult(
                "thresholds",
                "config",
                None,
                None,
                False,
                "no section for this suite in the thresholds file: nothing would be gated",
            )
        )
    if "errors" in metrics and "errors" not in (thresholds.get("max") or {}):
        v = value("errors") or 0.0
        results.append(
            GateResult(
                "errors",
                "max",
                v,
                0.0,
                v == 0,
                f"errors = {v:.0f} {'==' if v == 0 else '>'} 0 (a question the chain raised on)",
            )
        )
    if question_errors:
        results.append(
            GateResult(
                "question_file",
                "questions",
                float(question_errors),
                0.0,
                False,
                f"{question_errors} malformed line(s) in the question file",
            )
        )
    for name, limit in sorted((thresholds.get("min") or {}).items()):
        v = value(name)
        if v is None:
            results.append(missing(name, "min", limit))
            continue
        ok = v >= limit - 1e-9
        results.append(
            GateResult(
                name, "min", v, limit, ok, f"{name} = {v:.4g} {'>=' if ok else '<'} min {limit:g}"
            )
        )
    for name, limit in sorted((thresholds.get("max") or {}).items()):
        v = value(name)
        if v is None:
            results.append(missing(name, "max", limit))
            continue
        ok = v <= limit + 1e-9
        results.append(
            GateResult(
                name, "max", v, limit, ok, f"{name} = {v:.4g} {'<=' if ok else '>'} max {limit:g}"
            )
        )
    base = (baseline or {}).get("metrics") or {}
    margin = float(thresholds.get("baseline_margin", 0.1))
    margins = thresholds.get("baseline_margins") or {}
    skip = set(thresholds.get("baseline_skip") or [])
    for name, b in sorted(base.items()):
        if name in skip or b is None:
            continue
        v = value(name)
        if v is None:
            results.append(missing(name, "baseline", float(b)))
            continue
        allowed = float(margins.get(name, margin))
        higher = bool(metrics[name].get("higher_is_better", True))
        drop = (float(b) - v) if higher else (v - float(b))
        ok = drop <= allowed + 1e-9
        word = "dropped" if higher else "rose"
        msg = f"{name} = {v:.4g} vs baseline {float(b):.4g}" + (
            "" if ok else f": {word} by {abs(drop):.4g} > margin {allowed:g}"
        )
        results.append(GateResult(name, "baseline", v, float(b), ok, msg))
    return results


def update_baseline(
    baseline_path: Path, report: dict[str, Any], source: str = ""
) -> dict[str, Any]:
    """Record ``report``'s metric values as the baseline of its suite; return the file's data."""
    data = load_json(baseline_path)
    suite = str(report.get("suite") or "fixed")
    data[suite] = {
        "metrics": {k: v.get("value") for k, v in report.get("metrics", {}).items()},
        "judges": {k: v.get("judge") for k, v in report.get("metrics", {}).items()},
        "questions": report.get("n_questions"),
        "from": source,
        "updated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    baseline_path.parent.mkdir(parents=True, exist_ok=True)
    baseline_path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return data
