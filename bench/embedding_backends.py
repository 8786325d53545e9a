"""Embedding backends side by side: torch vs ONNX fp32 vs ONNX int8, same texts, same run.

Measures, per backend: paragraphs/s embedding the 9 SQuAD-dev development articles (what an
ingest embeds; batch 32), query-embedding latency (one question at a time, p50/p95), and the
cosine similarity of its vectors to torch's (paragraphs and questions). The backends take
turns in two passes (torch, onnx, int8, then int8, onnx, torch) and each rate is the mean of
its two passes, so load drifting during the run affects them alike.

    python bench/embedding_backends.py [--paragraphs N] [--queries 50]
"""

from __future__ import annotations

import argparse
import os
import random
import time

import numpy as np
from common import DEV_ARTICLES, MODELS_DIR, clean, load_squad, summary, table, write_json

BACKENDS = ("torch", "onnx", "onnx-int8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--paragraphs", type=int, default=0, help="0: all of the 9 articles")
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()

    from rag.embedding import get_embedder
    from rag.settings import EmbeddingSettings, Settings

    arts = [a for a in load_squad() if a["title"] in DEV_ARTICLES]
    texts = [clean(p["context"]) for a in arts for p in a["paragraphs"]]
    if args.paragraphs:
        texts = texts[: args.paragraphs]
    questions = [qa["question"] for a in arts for p in a["paragraphs"] for qa in p["qas"]]
    questions = random.Random(0).sample(questions, args.queries)

    embs = {}
    load_s = {}
    for b in BACKENDS:
        s = Settings(
            models_dir=MODELS_DIR,
            embedding=EmbeddingSettings(backend=b, batch_size=args.batch_size),
        )
        embs[b] = get_embedder(s)
        t = time.perf_counter()
        embs[b].embed_documents(texts[:8])  # loads (and exports ONNX once if missing)
        load_s[b] = time.perf_counter() - t

    rates: dict[str, list[float]] = {b: [] for b in BACKENDS}
    vecs: dict[str, np.ndarray] = {}
    for order in (BACKENDS, tuple(reversed(BACKENDS))):
        for b in order:
            t = time.perf_counter()
            v = np.asarray(embs[b].embed_documents(texts), dtype=np.float32)
            rates[b].append(len(texts) / (time.perf_counter() - t))
            vecs[b] = v
    qms: dict[str, list[float]] = {b: [] for b in BACKENDS}
    qvecs: dict[str, list[np.ndarray]] = {b: [] for b in BACKENDS}
    for q in questions:  # interleaved per question
        for b in BACKENDS:
            t = time.perf_counter()
            qvecs[b].append(np.asarray(embs[b].embed_query(q), dtype=np.float32))
            qms[b].append((time.perf_counter() - t) * 1000)

    rows = []
    result = {
        "paragraphs": len(texts),
        "queries": len(questions),
        "load": os.getloadavg(),
        "backends": {},
    }
    base_rate = float(np.mean(rates["torch"]))
    for b in BACKENDS:
        cos_p = (vecs[b] * vecs["torch"]).sum(axis=1)
        cos_q = (np.stack(qvecs[b]) * np.stack(qvecs["torch"])).sum(axis=1)
        r = float(np.mean(rates[b]))
        qs = summary(qms[b])
        result["backends"][b] = {
            "load_s": load_s[b],
            "paragraphs_per_s": rates[b],
            "query_ms": qs,
            "cosine_vs_torch_paragraphs": {"min": float(cos_p.min()), "mean": float(cos_p.mean())},
            "cosine_vs_torch_queries": {"min": float(cos_q.min()), "mean": float(cos_q.mean())},
        }
        rows.append(
            [
                b,
                r,
                r / base_rate,
                qs["p50"],
                qs["p95"],
                float(cos_p.min()),
                float(cos_p.mean()),
                float(cos_q.min()),
            ]
        )
    print(
        table(
            rows,
            [
                "backend",
                "paragraphs/s",
                "vs torch",
                "query p50 ms",
                "query p95 ms",
                "cos min (paras)",
                "cos mean (paras)",
                "cos min (queries)",
            ],
        )
    )
    print(f"{len(texts)} paragraphs, {len(questions)} queries, load avg {os.getloadavg()}")
    write_json("embedding_backends", result)


if __name__ == "__main__":
    main()
