"""The report of one run: the only writer of report.json, report.md and the PNG plots."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from rag.extras import require_extra

logger = logging.getLogger(__name__)


def write_report(
    report: dict[str, Any],
    out_dir: Path,
    questions: dict[str, Any],
    predictions: dict[str, Any],
) -> None:
    """Write report.json, report.md, metrics.png, latency.png and gate_curve.png into ``out_dir``.

    ``questions``: id -> question dict; ``predictions``: id -> predictions.jsonl row.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(
        json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (out_dir / "report.md").write_text(
        render_markdown(report, questions, predictions), encoding="utf-8"
    )
    try:
        write_plots(report, out_dir)
    except Exception as exc:  # plots are a convenience; never fail the run for them
        logger.warning("plots failed: %s", exc)


def fmt_ci(mm: dict[str, Any]) -> str:
    """'[0.612, 0.801] wilson' or '' when the metric has no interval."""
    ci = mm.get("ci")
    if not ci:
        return ""
    return f"[{ci[0]:.3f}, {ci[1]:.3f}] {mm.get('ci_method') or ''}".strip()


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


def _section(title: str, *lines: str) -> list[str]:
    """A level-2 section of the Markdown report: a blank line, the heading, a blank line."""
    return ["", f"## {title}", "", *lines]


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
        + (f" **Subset: {report['subset']}.**" if report.get("subset") else "")
    )
    res = report.get("resources") or {}
    if res:
        lines.append("")
        lines.append(
            f"Time: {_fmt(res.get('seconds_total'))} s in all, "
            f"{_fmt(res.get('seconds_answering'))} s answering "
            f"(ratio {_fmt(res.get('overhead_ratio'))}); peak memory "
            f"{_fmt(res.get('peak_rss_mb'))} MB (psutil, sampled every "
            f"{res.get('rss_sample_s', '?')} s). Judges: "
            + ", ".join(f"`{j}`" for j in report.get("judges", []))
            + "."
        )
    lines.append("")
    lines.append(
        "Intervals are 95 %: `wilson` = Wilson score interval of a k/n share; `bootstrap` = "
        "percentile bootstrap over questions (2,000 resamples, seed 0). `independent` = no: "
        "judged by the model that wrote the answers."
    )
    gates = report.get("gates", [])
    passed = report.get("passed", True)
    lines.append("")
    lines.append(f"**Gate: {'PASSED' if passed else 'FAILED'}**")
    lines += _section(
        "Metrics",
        "| metric | value | 95 % interval | n | judge | independent | baseline | threshold "
        "| meaning |",
        "|---|---:|---|---:|---|---|---:|---|---|",
    )
    base = report.get("baseline") or {}
    thr = report.get("thresholds") or {}
    for name, mm in report.get("metrics", {}).items():
        limit = []
        if name in (thr.get("min") or {}):
            limit.append(f">= {thr['min'][name]}")
        if name in (thr.get("max") or {}):
            limit.append(f"<= {thr['max'][name]}")
        lines.append(
            f"| {name} | {_fmt(mm.get('value'))} | {fmt_ci(mm)} | {mm.get('n')} | "
            f"{mm.get('judge')} | {'yes' if mm.get('independent', True) else 'no'} | "
            f"{_fmt(base.get(name))} | {' '.join(limit)} | {mm.get('description', '')} |"
        )
    failed = [g for g in gates if not g["passed"]]
    if failed:
        lines += _section("Failed gates", *(f"- {g['message']}" for g in failed))
    if report.get("question_errors"):
        errors = (f"- {e}" for e in report["question_errors"])
        lines += _section("Malformed question lines (skipped)", *errors)
    stages = report.get("abstentions_by_stage") or {}
    if stages:
        rows = [f"| {st} | {v['answerable']} | {v['unanswerable']} |" for st, v in stages.items()]
        header = "| stage | answerable (false abstentions) | unanswerable |"
        lines += _section("Abstentions by stage", header, "|---|---:|---:|", *rows)
    curve = report.get("gate_curve") or []
    if curve:
        step = max(1, len(curve) // 10)
        rows = [
            f"| {c['threshold']:.3f} | {c['answerable_answered']:.2f} | "
            f"{c['unanswerable_answered']:.2f} |"
            for c in [*curve[::step], curve[-1]]
        ]
        header = "| threshold | answerable answered | unanswerable answered |"
        lines += _section(
            "The answer gate's threshold (gate_curve.png)", header, "|---:|---:|---:|", *rows
        )
    cats = report.get("categories") or {}
    if cats:
        lines += _section(
            "By category",
            "| category | n | correct | 95 % interval (Wilson) | abstained | errors |",
            "|---|---:|---:|---|---:|---:|",
        )
        for c, v in cats.items():
            ci = v.get("ci") or []
            lines.append(
                f"| {c} | {v['n']} | {_fmt(v['correct'])} | "
                f"{f'[{ci[0]:.3f}, {ci[1]:.3f}]' if ci else ''} | {v['abstained']} | "
                f"{v.get('errors', 0)} |"
            )
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
        got = p.get("answer", "") if p.get("outcome") != "error" else f"ERROR: {p.get('error')}"
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
    "faithfulness_llm_judge",
    "agreement_llm_judge",
    "faithfulness_self_judge",
    "agreement_self_judge",
    "abstention_precision",
    "abstention_recall",
    "abstention_f1",
    "false_abstention_rate",
)


def write_plots(report: dict[str, Any], out_dir: Path) -> list[Path]:
    """metrics.png (each metric against the baseline), latency.png (histogram) and, when the
    answer gate judged any question, gate_curve.png (share answered against the threshold)."""
    require_extra("evals", "matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths: list[Path] = []
    metrics = report.get("metrics", {})
    base = report.get("baseline") or {}
    names = [n for n in PLOT_METRICS if n in metrics]
    cur: list[float] = [float(metrics[n].get("value") or 0.0) for n in names]
    old: list[float] = [float(base.get(n) or 0.0) for n in names]
    err_lo, err_hi = [], []
    for n, v in zip(names, cur, strict=True):
        ci = metrics[n].get("ci") or [v, v]
        err_lo.append(max(0.0, v - ci[0]))
        err_hi.append(max(0.0, ci[1] - v))
    fig, ax = plt.subplots(figsize=(10, 0.42 * len(names) + 1.5))
    y = range(len(names))
    h = 0.4
    ax.barh(
        [i + h / 2 for i in y],
        cur,
        height=h,
        label="this run (95 % interval)",
        color="#3b6ea8",
        xerr=[err_lo, err_hi],
        error_kw={"ecolor": "k", "capsize": 2, "lw": 0.8},
    )
    if base:
        ax.barh([i - h / 2 for i in y], old, height=h, label="baseline", color="#bbbbbb")
    labels = []
    for n in names:
        method = metrics[n].get("ci_method")
        labels.append(f"{n} [{metrics[n].get('judge')}{', ' + method if method else ''}]")
    ax.set_yticks(list(y))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.05)
    for i, v in enumerate(cur):
        ax.text(min(v, 1.0) + 0.01, i + h / 2, f"{v:.2f}", va="center", fontsize=7)
    ax.set_title(
        f"{report.get('suite', 'fixed')}: metrics vs baseline, 95 % intervals\n"
        "(method per metric in brackets; false_abstention_rate: lower is better)",
        fontsize=10,
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

    curve = report.get("gate_curve") or []
    if curve:
        fig, ax = plt.subplots(figsize=(5.5, 5))
        fa = [c["unanswerable_answered"] for c in curve]
        ans = [c["answerable_answered"] for c in curve]
        ax.plot(fa, ans, marker=".", color="#3b6ea8", drawstyle="steps-post")
        shipped = next(
            (
                s.get("gate_threshold")
                for s in report.get("questions", [])
                if s.get("gate_threshold")
            ),
            None,
        )
        if shipped is not None:
            # What the shipped gate answers: the first point at or above its threshold.
            at = next((c for c in curve if c["threshold"] >= shipped - 1e-9), curve[-1])
            ax.plot(at["unanswerable_answered"], at["answerable_answered"], "o", color="k")
            ax.annotate(
                f"threshold {shipped:.2f}",
                (at["unanswerable_answered"], at["answerable_answered"]),
                textcoords="offset points",
                xytext=(8, -12),
                fontsize=8,
            )
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("unanswerable questions answered (false-answer rate)")
        ax.set_ylabel("answerable questions answered")
        ax.set_title(f"{report.get('suite', 'fixed')}: the answer gate's threshold", fontsize=10)
        fig.tight_layout()
        p = out_dir / "gate_curve.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    return paths
