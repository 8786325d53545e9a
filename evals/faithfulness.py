"""The faithfulness suite: run a statement verifier on hand-labelled (statement, evidence
sentence, question) cases and report how often it decides as labelled, per kind of error.

The set (``evals/faithfulness.jsonl``, see evals/README.md) labels each case ``accept`` (a
faithful paraphrase or a verbatim sentence that answers the question) or ``reject``
(negation, role swap, wrong entity, substituted relation, changed number, merged facts, or a
true sentence that does not answer the question). A verifier *accepts* a case when its verdict
is supported and does not say the evidence fails to answer (``answers is not False``).

The verifier comes from ``rag.verification.get_verifier(name, settings)`` (``verify(statement,
evidence, question)`` -> a verdict with ``supported``, ``answers``, ``score``, ``stage``,
``reason``), or is the evals' own deterministic judge (``evals-judge``, support only). A case
on which the verifier raises is an ``error``: counted, never a decision, gated at 0.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from evals.stats import wilson

logger = logging.getLogger(__name__)

DEFAULT_SET = Path(__file__).resolve().parent / "faithfulness.jsonl"
JUDGE_VERIFIER = "evals-judge"

# The statement says what the evidence does not:
UnfaithfulKind = Literal[
    "negation",
    "role_swap",
    "wrong_entity",
    "substituted_relation",
    "changed_number",
    "merged_facts",
]
Kind = Literal[UnfaithfulKind, "irrelevant", "paraphrase", "verbatim"]
UNFAITHFUL_KINDS: tuple[str, ...] = get_args(UnfaithfulKind)
KINDS: tuple[str, ...] = get_args(Kind)


class FaithfulnessError(Exception):
    """The suite cannot run (bad set file, no such verifier); one line for the user."""


class Case(BaseModel):
    """One labelled case."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    doc: str = Field(min_length=1)
    question: str = Field(min_length=1)
    evidence: str = Field(min_length=1)
    statement: str = Field(min_length=1)
    kind: Kind
    expected: Literal["accept", "reject"]


def load_cases(path: Path = DEFAULT_SET) -> list[Case]:
    """The cases of a set file; ``FaithfulnessError`` naming the first bad line."""
    if not Path(path).is_file():
        raise FaithfulnessError(f"no faithfulness set at {path}")
    cases: list[Case] = []
    seen: set[str] = set()
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        try:
            case = Case.model_validate(json.loads(line))
        except (json.JSONDecodeError, ValidationError) as exc:
            msg = str(exc).splitlines()
            raise FaithfulnessError(f"{path} line {n}: {' '.join(msg[:3])}") from None
        if case.id in seen:
            raise FaithfulnessError(f"{path} line {n}: duplicate id {case.id!r}")
        seen.add(case.id)
        cases.append(case)
    return cases


class Verifier(Protocol):
    def verify(self, statement: str, evidence: str, question: str) -> Any: ...


@dataclass(frozen=True)
class JudgeVerdict:
    supported: bool
    answers: bool | None
    score: float
    stage: str
    reason: str


class JudgeVerifier:
    """The evals' deterministic judge as a verifier (support only: ``answers`` is None)."""

    def verify(self, statement: str, evidence: str, question: str) -> JudgeVerdict:
        from evals.judge import check_statement

        problems = check_statement(statement, evidence, question)
        return JudgeVerdict(
            not problems, None, 0.0 if problems else 1.0, "evals-judge", "; ".join(problems)
        )


def get_verifier(name: str, settings: Any = None) -> Verifier:
    """``evals-judge``, or a verifier of ``rag.verification`` by name."""
    if name == JUDGE_VERIFIER:
        return JudgeVerifier()
    try:
        from rag.verification import get_verifier as rag_get_verifier
    except ImportError as exc:
        raise FaithfulnessError(
            "rag.verification is not available in this installation "
            f"({exc}); only --verifier {JUDGE_VERIFIER} can run"
        ) from None
    if settings is None:
        from rag.settings import Settings

        settings = Settings()
    try:
        return rag_get_verifier(name, settings)  # type: ignore[no-any-return]
    except (KeyError, ValueError) as exc:
        raise FaithfulnessError(f"no verifier {name!r} ({exc})") from None


def accepted(verdict: Any) -> bool:
    """Shown as written: supported, and not judged to miss the question."""
    return bool(verdict.supported) and getattr(verdict, "answers", None) is not False


def run_cases(verifier: Verifier, cases: Sequence[Case]) -> list[dict[str, Any]]:
    """One row per case: its label, the verifier's decision (or error) and verdict details."""
    rows = []
    for c in cases:
        row: dict[str, Any] = c.model_dump()
        t0 = time.perf_counter()
        try:
            v = verifier.verify(c.statement, c.evidence, c.question)
            row["outcome"] = "accept" if accepted(v) else "reject"
            row["supported"] = bool(v.supported)
            row["answers"] = getattr(v, "answers", None)
            row["score"] = getattr(v, "score", None)
            row["stage"] = getattr(v, "stage", "")
            row["reason"] = str(getattr(v, "reason", ""))
        except Exception as exc:  # its own outcome, never a decision
            logger.warning("case %s: verifier raised %s", c.id, exc)
            row["outcome"] = "error"
            row["error"] = f"{type(exc).__name__}: {exc}"
        row["seconds"] = round(time.perf_counter() - t0, 4)
        row["correct"] = row["outcome"] == c.expected
        rows.append(row)
    return rows


def _rate(k: int, n: int) -> dict[str, Any]:
    ci = wilson(k, n)
    return {
        "value": round(k / n, 4) if n else None,
        "k": k,
        "n": n,
        "ci": list(ci) if ci else None,
        "ci_method": "wilson" if ci else None,
    }


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Metrics of a run of the suite.

    Per kind ``correct.<kind>``: the share of cases decided as labelled (for an unfaithful
    kind, the recall of rejection: how many were caught; for ``paraphrase``/``verbatim``, the
    share accepted). Overall, with "accept" as the positive class: ``accept_precision`` (of
    the statements shown as written, the share that were faithful and answering) and
    ``accept_recall`` (of those, the share shown); the same for "reject"; ``errors``.
    Rates carry Wilson 95 % intervals.
    """
    metrics: dict[str, Any] = {}
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_kind[r["kind"]].append(r)
    for kind in KINDS:
        rs = by_kind.get(kind, [])
        if rs:
            metrics[f"correct.{kind}"] = _rate(sum(1 for r in rs if r["correct"]), len(rs))
    done = [r for r in rows if r["outcome"] != "error"]
    for cls in ("accept", "reject"):
        said = [r for r in done if r["outcome"] == cls]
        truly = [r for r in done if r["expected"] == cls]
        tp = sum(1 for r in said if r["expected"] == cls)
        metrics[f"{cls}_precision"] = _rate(tp, len(said))
        metrics[f"{cls}_recall"] = _rate(tp, len(truly))
    unf = [r for r in done if r["kind"] in UNFAITHFUL_KINDS]
    metrics["unfaithful_accepted"] = {
        "value": float(sum(1 for r in unf if r["outcome"] == "accept")),
        "n": len(unf),
        "ci": None,
        "ci_method": None,
    }
    metrics["errors"] = {
        "value": float(sum(1 for r in rows if r["outcome"] == "error")),
        "n": len(rows),
        "ci": None,
        "ci_method": None,
    }
    return metrics


def render_markdown(report: dict[str, Any]) -> str:
    """faithfulness.md: per-kind table, overall precision/recall, gates, every wrong decision."""
    m = report["metrics"]

    def ci(x: dict[str, Any]) -> str:
        return f"[{x['ci'][0]:.3f}, {x['ci'][1]:.3f}]" if x.get("ci") else ""

    lines = [
        f"# Faithfulness suite: verifier `{report['verifier']}`",
        "",
        f"{report['n_cases']} cases from `{report['set']}` ({report['n_docs']} documents); "
        f"{report['seconds']} s. **Gate: {'PASSED' if report['passed'] else 'FAILED'}**",
        "",
        "Accept = shown as written (supported, and not judged to miss the question). Intervals: "
        "Wilson 95 %.",
        "",
        "| kind | expected | n | decided as labelled | 95 % interval | accepted |",
        "|---|---|---:|---:|---|---:|",
    ]
    counts = Counter((r["kind"], r["outcome"]) for r in report["cases"])
    for kind in KINDS:
        x = m.get(f"correct.{kind}")
        if not x:
            continue
        exp = "accept" if kind in ("paraphrase", "verbatim") else "reject"
        lines.append(
            f"| {kind} | {exp} | {x['n']} | {x['value']:.3f} | {ci(x)} | "
            f"{counts[(kind, 'accept')]} |"
        )
    lines += ["", "| overall | value | 95 % interval | n |", "|---|---:|---|---:|"]
    for name in ("accept_precision", "accept_recall", "reject_precision", "reject_recall"):
        x = m[name]
        v = "n/a" if x["value"] is None else f"{x['value']:.3f}"
        lines.append(f"| {name} | {v} | {ci(x)} | {x['n']} |")
    lines.append(
        f"| unfaithful_accepted | {m['unfaithful_accepted']['value']:.0f} | | "
        f"{m['unfaithful_accepted']['n']} |"
    )
    lines.append(f"| errors | {m['errors']['value']:.0f} | | {m['errors']['n']} |")
    failed = [g for g in report["gates"] if not g["passed"]]
    if failed:
        lines += ["", "## Failed gates", ""] + [f"- {g['message']}" for g in failed]
    wrong = [r for r in report["cases"] if not r["correct"]]
    lines += ["", f"## Decided against the label ({len(wrong)})", ""]
    if wrong:
        lines += [
            "| id | kind | expected | got | statement | evidence | reason |",
            "|---|---|---|---|---|---|---|",
        ]
    for r in wrong:
        why = r.get("error") or r.get("reason") or ""
        cells = [
            r["id"],
            r["kind"],
            r["expected"],
            r["outcome"],
            r["statement"],
            r["evidence"],
            f"{r.get('stage') or ''}: {why}".strip(": "),
        ]
        lines.append(
            "| "
            + " | ".join(" ".join(str(c).split()).replace("|", "\\|")[:220] for c in cells)
            + " |"
        )
    lines.append("")
    return "\n".join(lines)


def run_suite(
    verifier_name: str,
    *,
    set_path: Path = DEFAULT_SET,
    out_dir: Path | None = None,
    thresholds: dict[str, Any] | None = None,
    settings: Any = None,
    verifier: Verifier | None = None,
) -> dict[str, Any]:
    """Run ``verifier_name`` (or the given ``verifier`` object) on the set, gate the metrics
    with ``thresholds`` (the ``faithfulness`` section) and write faithfulness.json/.md."""
    from evals.gates import check_gates

    cases = load_cases(set_path)
    v = verifier if verifier is not None else get_verifier(verifier_name, settings)
    t0 = time.perf_counter()
    rows = run_cases(v, cases)
    metrics = summarise(rows)
    gates = check_gates(metrics, thresholds or {})
    report = {
        "verifier": verifier_name,
        "set": str(set_path),
        "n_cases": len(cases),
        "n_docs": len({c.doc for c in cases}),
        "seconds": round(time.perf_counter() - t0, 2),
        "metrics": metrics,
        "gates": [g.to_dict() for g in gates],
        "passed": all(g.passed for g in gates),
        "cases": rows,
    }
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "faithfulness.json").write_text(
            json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        (out_dir / "faithfulness.md").write_text(render_markdown(report), encoding="utf-8")
    return report
