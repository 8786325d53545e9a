"""Fit the sentence selector (rag/selection.json) on the 9 SQuAD 2.0 development articles and
measure what the model would miss: the share of answerable questions whose gold answer is in
the sentences chosen under each token budget, against the five whole paragraphs.

    .venv/bin/python bench/context_selection.py fit --per-article 60

For each sampled answerable question: the real retriever's paragraphs (k from Settings), every
sentence with the selector's signals (rag.selection.sentences), the label "the gold answer is
in this sentence", and its length in the packaged model's tokens. A logistic regression is
measured leaving one article out at a time (recall at each budget, out of fold), then refitted
on all rows and written with those measurements. The fixed suite is never used here.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
from common import ROOT, answer_in, fit_logistic, squad_dev_index, write_logistic

from evals.squad import all_questions

OUT = ROOT / "bench" / "out" / "answer-gate-squad"  # the same index as bench/answer_gate.py
BUDGETS = (100, 150, 200, 250, 300, 400)


def collect(per_article: int, seed: int) -> list[dict]:
    from llama_cpp import Llama

    from rag.embedding import Remembering
    from rag.llm import packaged_model_path
    from rag.retrieval import get_retriever
    from rag.selection import sentences

    arts, settings = squad_dev_index(OUT)
    retriever = get_retriever(settings)
    embedder = Remembering(retriever.embedder)  # as the answer chain embeds sentences
    vocab = Llama(model_path=str(packaged_model_path(settings)), vocab_only=True, verbose=False)

    def n_tokens(text: str) -> int:
        return len(vocab.tokenize(text.encode(), add_bos=False, special=False))

    rng = random.Random(seed)
    every = [g for g in all_questions(arts) if g.question.answerable]
    rows = []
    t0 = time.perf_counter()
    for art in arts:
        mine = [g for g in every if g.question.category.split(":")[1] == art["title"]]
        for g in rng.sample(mine, min(per_article, len(mine))):
            q = g.question
            passages = retriever.search(q.question, k=settings.retrieval.k)
            found = sentences(q.question, passages, embedder)
            rows.append(
                {
                    "article": art["title"],
                    "whole_tokens": sum(n_tokens(p.text) for p in passages),
                    "gold_in_passages": any(answer_in(p.text, q.answers) for p in passages),
                    "sentences": [
                        {
                            "features": s.features,
                            "tokens": n_tokens(passages[s.passage].text[s.start : s.end]),
                            "gold": answer_in(passages[s.passage].text[s.start : s.end], q.answers),
                        }
                        for s in found
                    ],
                }
            )
    print(f"{len(rows)} questions in {time.perf_counter() - t0:.0f} s", flush=True)
    return rows


def recall(rows: list[dict], scores: list[np.ndarray], budget: int) -> tuple[float, float]:
    """(share of questions with the gold answer in the chosen sentences, mean tokens chosen):
    the best sentences until the budget is spent, the best one always (pronoun sentences'
    predecessors are left out here: they only add text)."""
    hits, spent = 0, []
    for r, sc in zip(rows, scores, strict=True):
        total, got = 0, False
        for n in np.argsort(-sc):
            s = r["sentences"][n]
            if total and total + s["tokens"] > budget:
                continue
            total += s["tokens"]
            got |= s["gold"]
        hits += got
        spent.append(total)
    return hits / len(rows), float(np.mean(spent))


def fit(per_article: int, seed: int, out: Path) -> None:
    from rag.selection import FEATURES

    rows = [r for r in collect(per_article, seed) if r["sentences"]]
    X = [[s["features"][f] for f in FEATURES] for r in rows for s in r["sentences"]]
    y = [s["gold"] for r in rows for s in r["sentences"]]
    art = [r["article"] for r in rows for _ in r["sentences"]]
    X, y, art = np.array(X), np.array(y, dtype=int), np.array(art)
    oof = np.zeros(len(y))
    for a in sorted(set(art)):
        test = art == a
        scaler, model = fit_logistic(X[~test], y[~test])
        oof[test] = model.decision_function(scaler.transform(X[test]))
    cuts = np.cumsum([0] + [len(r["sentences"]) for r in rows])
    per_q = [oof[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    cosine = [np.array([s["features"]["cosine"] for s in r["sentences"]]) for r in rows]
    whole = float(np.mean([r["gold_in_passages"] for r in rows]))
    table = []
    for b in BUDGETS:
        fitted, tokens = recall(rows, per_q, b)
        cos_only, _ = recall(rows, cosine, b)
        table.append(
            {"budget": b, "recall_oof": fitted, "recall_cosine_only": cos_only, "tokens": tokens}
        )
    top3 = [[s for s in r["sentences"] if s["features"]["inv_rank"] >= 1 / 3] for r in rows]
    summary = {
        "questions": len(rows),
        "whole_paragraphs": {
            "recall": whole,
            "tokens": float(np.mean([r["whole_tokens"] for r in rows])),
        },
        "best_3_paragraphs_whole": {
            "recall": float(np.mean([any(s["gold"] for s in t) for t in top3])),
            "tokens": float(np.mean([sum(s["tokens"] for s in t) for t in top3])),
        },
        "budgets": table,
    }
    print(json.dumps(summary, indent=1))
    scaler, model = fit_logistic(X, y)
    write_logistic(
        out,
        FEATURES,
        scaler,
        model,
        {
            "fitted_on": "SQuAD 2.0 dev, the 9 development articles, answerable questions",
            "command": f"bench/context_selection.py fit --per-article {per_article}",
            "measured": summary,
        },
    )


def main() -> None:
    from rag.selection import SELECTOR_FILE

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fit")
    f.add_argument("--per-article", type=int, default=60)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--out", type=Path, default=SELECTOR_FILE)
    args = ap.parse_args()
    fit(args.per_article, args.seed, args.out)


if __name__ == "__main__":
    main()
