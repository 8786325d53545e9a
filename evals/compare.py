"""Compare two runs of the same questions: metric deltas with paired-bootstrap 95 % intervals,
and the questions that went right -> wrong and wrong -> right, side by side.

A run is a folder holding report.json and predictions.jsonl (as ``evals run`` writes it), or
the report.json itself. Only questions present in both runs are compared. A question is
*right* when its ``correct`` flag is set (answerable: the gold answer is in the answer;
unanswerable: it abstained); an error is wrong.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evals.scoring import metric_defs
from evals.stats import paired_delta


class CompareError(Exception):
    """A run cannot be read or the runs share no question; one line for the user."""


def load_run(path: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(report, predictions by id) of a run folder or report.json."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    report_path = path if path.is_file() else folder / "report.json"
    if not report_path.is_file():
        raise CompareError(f"no report.json at {path}")
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CompareError(f"{report_path} is not JSON ({exc.msg})") from None
    preds: dict[str, dict[str, Any]] = {}
    pred_path = folder / "predictions.jsonl"
    if pred_path.is_file():
        for line in pred_path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                p = json.loads(line)
                preds[p["id"]] = p
    return report, preds


def _llm_judges(report: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (n.split(":", 1)[0], n)
        for n in report.get("judges", [])
        if n.split(":", 1)[0] in ("self_judge", "llm_judge")
    ]


def compare(a_path: Path, b_path: Path) -> dict[str, Any]:
    """The comparison of run A (before) and run B (after)."""
    rep_a, pred_a = load_run(a_path)
    rep_b, pred_b = load_run(b_path)
    qa = {s["id"]: s for s in rep_a.get("questions", [])}
    qb = {s["id"]: s for s in rep_b.get("questions", [])}
    ids = [i for i in qa if i in qb]
    if not ids:
        raise CompareError("the two runs have no question in common")
    judges = [j for j in _llm_judges(rep_a) if j in _llm_judges(rep_b)]
    pairs = [(qa[i], qb[i]) for i in ids]
    metrics = []
    for name, d in metric_defs(judges).items():
        if name.startswith("latency"):
            continue
        va = d.compute([p[0] for p in pairs])[0]
        vb = d.compute([p[1] for p in pairs])[0]
        delta, ci = paired_delta(pairs, lambda rows, d=d: d.compute(rows)[0])
        metrics.append(
            {
                "metric": name,
                "a": None if va is None else round(va, 4),
                "b": None if vb is None else round(vb, 4),
                "delta": delta,
                "ci": list(ci) if ci else None,
                "higher_is_better": d.higher_is_better,
                "judge": d.judge,
                "significant": bool(ci and (ci[0] > 0 or ci[1] < 0)),
            }
        )

    def side(rep_pred: dict[str, dict[str, Any]], s: dict[str, Any]) -> dict[str, Any]:
        p = rep_pred.get(s["id"], {})
        return {
            "outcome": s.get("outcome") or ("abstained" if s.get("abstained") else "answered"),
            "answer": p.get("answer", "") if s.get("outcome") != "error" else "",
            "error": p.get("error") or s.get("error"),
            "citations": [
                f"{c['source']} ¶{c['paragraph']}: {c['quote']}" for c in p.get("citations", [])
            ],
            "reason": p.get("reason", ""),
            "failures": s.get("failures", []),
        }

    flips: dict[str, list[dict[str, Any]]] = {"right_to_wrong": [], "wrong_to_right": []}
    for i in ids:
        a, b = qa[i], qb[i]
        if bool(a["correct"]) == bool(b["correct"]):
            continue
        key = "right_to_wrong" if a["correct"] else "wrong_to_right"
        question = (pred_b.get(i) or pred_a.get(i) or {}).get("question", "")
        flips[key].append(
            {
                "id": i,
                "category": a.get("category"),
                "question": question,
                "a": side(pred_a, a),
                "b": side(pred_b, b),
            }
        )
    return {
        "a": str(a_path),
        "b": str(b_path),
        "n_common": len(ids),
        "only_a": sorted(set(qa) - set(qb)),
        "only_b": sorted(set(qb) - set(qa)),
        "metrics": metrics,
        **flips,
    }


def _cell(text: Any, limit: int = 400) -> str:
    t = " ".join(str(text).split())
    return (t[:limit] + "…" if len(t) > limit else t).replace("|", "\\|")


def render_markdown(c: dict[str, Any]) -> str:
    lines = [
        f"# Compare: A = `{c['a']}`, B = `{c['b']}`",
        "",
        f"{c['n_common']} questions in both runs"
        + (f"; only in A: {len(c['only_a'])}" if c["only_a"] else "")
        + (f"; only in B: {len(c['only_b'])}" if c["only_b"] else "")
        + ". Delta = B − A with a paired-bootstrap 95 % interval (the same resampled "
        "questions for both runs, 2,000 resamples); * = the interval excludes 0.",
        "",
        "| metric | A | B | delta | 95 % interval | judge |",
        "|---|---:|---:|---:|---|---|",
    ]

    def f(v: Any) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    for m in c["metrics"]:
        ci = f"[{m['ci'][0]:+.3f}, {m['ci'][1]:+.3f}]" if m["ci"] else ""
        delta = "n/a" if m["delta"] is None else f"{m['delta']:+.3f}"
        star = " *" if m["significant"] else ""
        better = "" if m["higher_is_better"] else " (lower is better)"
        lines.append(
            f"| {m['metric']}{better} | {f(m['a'])} | {f(m['b'])} | {delta}{star} | {ci} | "
            f"{m['judge']} |"
        )
    for key, title in (
        ("right_to_wrong", "Right in A, wrong in B"),
        ("wrong_to_right", "Wrong in A, right in B"),
    ):
        rows = c[key]
        lines += ["", f"## {title} ({len(rows)})", ""]
        if not rows:
            continue
        lines += [
            "| question | A: answer · citations · reason | B: answer · citations · reason |",
            "|---|---|---|",
        ]
        for r in rows:
            cells = []
            for s in (r["a"], r["b"]):
                if s["outcome"] == "error":
                    text = f"ERROR: {s['error']}"
                else:
                    text = s["answer"] or s["outcome"]
                    if s["citations"]:
                        text += " · " + " / ".join(s["citations"])
                    if s["reason"]:
                        text += f" · reason: {s['reason']}"
                cells.append(_cell(text))
            lines.append(f"| **{r['id']}** {_cell(r['question'], 200)} | {cells[0]} | {cells[1]} |")
    lines.append("")
    return "\n".join(lines)


def write_comparison(c: dict[str, Any], out_file: Path) -> None:
    """The comparison as Markdown in ``out_file`` and as JSON beside it (``.json``)."""
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(render_markdown(c), encoding="utf-8")
    out_file.with_suffix(".json").write_text(
        json.dumps(c, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
