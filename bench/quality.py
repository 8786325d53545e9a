"""Answer quality: this project vs the LangChain-tutorial naive RAG, with the evals metrics.

Scores the per-question outputs that bench/answers.py wrote (bench/out/answers_rag.json and
answers_naive.json; run it first, or pass --run) with the functions of ``evals/``
(``evals.scoring.score_question`` / ``aggregate``, ``evals.judge.DeterministicJudge``): answer
correctness (gold answer contained), SQuAD token F1, ALCE-style citation recall/precision
against the gold evidence, abstention precision/recall/F1, deterministic faithfulness.

The naive pipeline has no citations; its 4 retrieved chunks stand in for them (what a UI would
list as "sources"), and it counts as abstaining when its text says it does not know
(``naive.says_dont_know``). Its deterministic faithfulness is 0 by construction (it quotes
nothing), so that row is not a fair comparison and is left out.

    python bench/quality.py [--run] [--all]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from common import OUT, ROOT, table, write_json

METRICS = [
    ("overall_accuracy", "correct (answered right / abstained right)"),
    ("answer_contains", "answerable: gold answer in the answer"),
    ("answer_f1", "answerable: token F1"),
    ("citation_recall", "citation recall"),
    ("citation_precision", "citation precision"),
    ("abstention_precision", "abstention precision"),
    ("abstention_recall", "abstention recall"),
    ("abstention_f1", "abstention F1"),
    ("false_abstention_rate", "false abstention rate"),
    ("retrieval_recall_at_k", "evidence in retrieved context"),
    ("faithfulness_deterministic", "faithfulness (deterministic judge)"),
    ("latency_p50_s", "latency p50 s"),
]


def score(system: str, tag: str = "") -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from evals.dataset import load_questions
    from evals.judge import DeterministicJudge
    from evals.scoring import aggregate, score_question

    data = json.loads((OUT / f"answers_{system}{tag}.json").read_text())
    qfile = data.get("questions_file") or ROOT / "evals" / "questions.jsonl"
    questions, errors = load_questions(Path(qfile))
    assert not errors, errors
    by_id = {q.id: q for q in questions}
    qs, scores = [], []
    judges = [DeterministicJudge()] if system == "rag" else []
    for r in data["results"]:
        q = by_id[r["id"]]
        pred = {
            "id": r["id"],
            "answer": r["answer"],
            "abstained": r["abstained"],
            "citations": r["citations"],
            "standalone_question": q.question,
            "timings": {"total": r["total_s"]},
        }
        qs.append(q)
        scores.append(
            score_question(
                q, pred, r["retrieved_texts"], k=len(r["retrieved_texts"]) or 1, judges=judges
            )
        )
    return aggregate(qs, scores), scores


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--run", action="store_true", help="run bench/answers.py first")
    ap.add_argument("--all", action="store_true", help="with --run: every single-turn question")
    ap.add_argument(
        "--squad",
        action="store_true",
        help="score the SQuAD outputs (bench/answers.py --squad N) instead of the seed ones",
    )
    args = ap.parse_args()
    tag = "_squad" if args.squad else ""
    if not (ROOT / "evals" / "scoring.py").exists():
        raise SystemExit("evals/ is missing: this script reuses evals.scoring and evals.metrics")
    have_outputs = all((OUT / f"answers_{s}{tag}.json").exists() for s in ("rag", "naive"))
    if args.squad and not have_outputs:
        raise SystemExit("run `python bench/answers.py --squad N` first")
    if args.run or not have_outputs:
        subprocess.run(
            [sys.executable, str(Path(__file__).with_name("answers.py"))]
            + (["--all"] if args.all else []),
            check=True,
            cwd=ROOT,
        )

    agg = {}
    per_q = {}
    for system in ("rag", "naive"):
        agg[system], per_q[system] = score(system, tag)
    rows = []
    for name, label in METRICS:
        a, b = agg["rag"].get(name, {}), agg["naive"].get(name, {})
        if name == "faithfulness_deterministic":
            rows.append((label, a.get("value"), "n/a (quotes nothing)", a.get("n")))
            continue
        rows.append((label, a.get("value"), b.get("value"), f"{a.get('n')} / {b.get('n')}"))
    print(
        table(rows, ["metric", "this project", "naive (LangChain tutorial)", "n (project / naive)"])
    )
    print()
    qrows = []
    for s_rag, s_naive in zip(per_q["rag"], per_q["naive"], strict=True):
        qrows.append(
            (
                s_rag["id"],
                "yes" if s_rag["correct"] else "NO",
                "yes" if s_naive["correct"] else "NO",
                "abstained" if s_rag["abstained"] else "answered",
                "abstained" if s_naive["abstained"] else "answered",
            )
        )
    print(table(qrows, ["question", "project correct", "naive correct", "project", "naive"]))
    print("wrote", write_json("quality" + tag, {"aggregate": agg, "per_question": per_q}))


if __name__ == "__main__":
    main()
