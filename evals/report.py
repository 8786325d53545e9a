"""report.md and the PNG plots of one run."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def _cell(text: str, limit: int = 300) -> str:
    t = " ".join(str(text).split())
    if len(t) > limit:
        t = t[:limit] + "…"
    return t.replace("|", "\\|")


def render_markdown(
    report: dict[str, Any], questions: dict[str, Any], predictions: dict[str, Any]
) -> str:
    """The human-readable report: metric table, gates, categories, then every failing question."""
    lines: list[str] = []
    suite = report.get("suite", "fixed")
    lines.append(f"# Evaluation report: {suite}")
    lines.append("")
    lines.append(
        f"{report.get('n_questions', 0)} questions from `{report.get('questions_file', '')}`, "
        f"corpus `{report.get('corpus', '')}`, k = {report.get('k')}, "
        f"run {report.get('started', '')} ({_fmt(report.get('seconds'))} s)."
    )
    gates = report.get("gates", [])
    passed = report.get("passed", True)
    lines.append("")
    lines.append(f"**Gate: {'PASSED' if passed else 'FAILED'}**")
    lines.append("")
    lines.append("## Metrics")
    lines.append("")
    lines.append("| metric | value | n | judge | baseline | threshold | meaning |")
    lines.append("|---|---:|---:|---|---:|---|---|")
    base = report.get("baseline") or {}
    thr = report.get("thresholds") or {}
    for name, mm in report.get("metrics", {}).items():
        limit = []
        if name in (thr.get("min") or {}):
            limit.append(f">= {thr['min'][name]}")
        if name in (thr.get("max") or {}):
            limit.append(f"<= {thr['max'][name]}")
        lines.append(
            f"| {name} | {_fmt(mm.get('value'))} | {mm.get('n')} | {mm.get('judge')} | "
            f"{_fmt(base.get(name))} | {' '.join(limit)} | {mm.get('description', '')} |"
        )
    failed = [g for g in gates if not g["passed"]]
    if failed:
        lines.append("")
        lines.append("## Failed gates")
        lines.append("")
        for g in failed:
            lines.append(f"- {g['message']}")
    if report.get("question_errors"):
        lines.append("")
        lines.append("## Malformed question lines (skipped)")
        lines.append("")
        for e in report["question_errors"]:
            lines.append(f"- {e}")
    cats = report.get("categories") or {}
    if cats:
        lines.append("")
        lines.append("## By category")
        lines.append("")
        lines.append("| category | n | correct | abstained |")
        lines.append("|---|---:|---:|---:|")
        for c, v in cats.items():
            lines.append(f"| {c} | {v['n']} | {_fmt(v['correct'])} | {v['abstained']} |")
    failing = [s for s in report.get("questions", []) if s.get("failures")]
    lines.append("")
    lines.append(f"## Failing questions ({len(failing)})")
    for s in failing:
        q = questions.get(s["id"], {})
        p = predictions.get(s["id"], {})
        lines.append("")
        lines.append(f"### {s['id']} ({q.get('category') or 'no category'})")
        lines.append("")
        lines.append(f"- question: {_cell(q.get('question', ''))}")
        if q.get("history"):
            lines.append(
                f"- history: {len(q['history'])} turn(s); searched for: "
                f"{_cell(p.get('standalone_question', ''))}"
            )
        if q.get("answerable"):
            joiner = " AND " if q.get("all_answers") else " | "
            lines.append(f"- expected: {_cell(joiner.join(q.get('answers', [])))}")
            lines.append(f"- evidence: {_cell(' … '.join(q.get('evidence', [])), 200)}")
        else:
            lines.append("- expected: abstention (*The source does not say.*)")
        got = p.get("answer", "")
        reason = f" (reason: {p['reason']})" if p.get("reason") else ""
        lines.append(f"- got: {_cell(got)}{reason}")
        for c in p.get("citations", []):
            lines.append(
                f"  - [{c.get('marker')}] {c['source']} ¶{c['paragraph']}: "
                f"“{_cell(c['quote'], 160)}”"
            )
        retrieved = ", ".join(
            f"¶{r['paragraph']}{'*' if rel else ''}"
            for r, rel in zip(
                p.get("retrieved", []), s.get("retrieved_relevant") or [False] * 99, strict=False
            )
        )
        if retrieved:
            lines.append(f"- retrieved (* = has evidence): {retrieved}")
        for f in s["failures"]:
            lines.append(f"- **{_cell(f)}**")
    lines.append("")
    return "\n".join(lines)


PLOT_METRICS = (
    "retrieval_recall_at_1",
    "retrieval_recall_at_k",
    "retrieval_mrr",
    "answer_contains",
    "answer_f1",
    "overall_accuracy",
    "citation_recall",
    "citation_precision",
    "faithfulness_deterministic",
    "faithfulness_llm",
    "judge_agreement",
    "abstention_precision",
    "abstention_recall",
    "abstention_f1",
    "false_abstention_rate",
)


def write_plots(report: dict[str, Any], out_dir: Path) -> list[Path]:
    """metrics.png (each metric against the baseline) and latency.png (histogram)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths: list[Path] = []
    metrics = report.get("metrics", {})
    base = report.get("baseline") or {}
    names = [n for n in PLOT_METRICS if n in metrics]
    cur: list[float] = [float(metrics[n].get("value") or 0.0) for n in names]
    old: list[float] = [float(base.get(n) or 0.0) for n in names]
    fig, ax = plt.subplots(figsize=(10, 0.42 * len(names) + 1.5))
    y = range(len(names))
    h = 0.4
    ax.barh([i + h / 2 for i in y], cur, height=h, label="this run", color="#3b6ea8")
    if base:
        ax.barh([i - h / 2 for i in y], old, height=h, label="baseline", color="#bbbbbb")
    labels = [f"{n} [{metrics[n].get('judge')}]" for n in names]
    ax.set_yticks(list(y))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.05)
    for i, v in enumerate(cur):
        ax.text(min(v, 1.0) + 0.01, i + h / 2, f"{v:.2f}", va="center", fontsize=7)
    ax.set_title(
        f"{report.get('suite', 'fixed')}: metrics vs baseline "
        "(false_abstention_rate: lower is better)"
    )
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    p = out_dir / "metrics.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)

    lat = [s["latency_s"] for s in report.get("questions", []) if s.get("latency_s") is not None]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(lat or [0.0], bins=min(20, max(5, len(lat) // 2)), color="#3b6ea8")
    for name, style in (("latency_p50_s", "--"), ("latency_p95_s", ":")):
        v = metrics.get(name, {}).get("value")
        if v is not None:
            ax.axvline(v, color="k", linestyle=style, label=f"{name.split('_')[1]} {v:.1f} s")
    ax.set_xlabel("seconds per answer")
    ax.set_ylabel("questions")
    ax.set_title(f"{report.get('suite', 'fixed')}: latency")
    if lat:
        ax.legend()
    fig.tight_layout()
    p = out_dir / "latency.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)
    return paths
