"""MiniLM (sentence-transformers, torch CPU) with 1 vs 2 torch threads: single-query latency
(what every retrieval pays) and batch throughput (what ingest pays), interleaved in one run.

On a machine whose cores are busy with other processes, torch's 2-thread OpenMP pool waits on
its own threads at every op; one thread avoids that. Run it on your deployment machine before
choosing: with idle cores, 2 threads are faster for batches.

    python bench/embedding_threads.py [--queries 30] [--paragraphs 48] [--reps 2]
"""

from __future__ import annotations

import argparse
import time

from common import DEV_ARTICLES, clean, load_squad, summary, table, write_json


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--queries", type=int, default=30)
    ap.add_argument("--paragraphs", type=int, default=48)
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args()

    import torch

    from rag.embedding import get_embedder
    from rag.settings import Settings

    model = get_embedder(Settings())._load()
    arts = [a for a in load_squad() if a["title"] in DEV_ARTICLES]
    paras = [clean(p["context"]) for a in arts for p in a["paragraphs"]][: args.paragraphs]
    qs = [qa["question"] for a in arts for p in a["paragraphs"] for qa in p["qas"]][: args.queries]
    model.encode(paras[:4])
    default = torch.get_num_threads()
    lat: dict[int, list[float]] = {1: [], 2: []}
    thr: dict[int, list[float]] = {1: [], 2: []}
    for q in qs:
        for n in (1, 2):
            torch.set_num_threads(n)
            t = time.perf_counter()
            model.encode([q], normalize_embeddings=True)
            lat[n].append(time.perf_counter() - t)
    for _ in range(args.reps):
        for n in (1, 2):
            torch.set_num_threads(n)
            t = time.perf_counter()
            model.encode(paras, batch_size=32, normalize_embeddings=True)
            thr[n].append(len(paras) / (time.perf_counter() - t))
    torch.set_num_threads(default)
    rows = []
    for n in (1, 2):
        s = summary(lat[n])
        rows.append((n, s["p50"] * 1000, s["p95"] * 1000, sum(thr[n]) / len(thr[n])))
    print(
        table(
            rows,
            [
                "torch threads",
                "query embed p50 ms",
                "query embed p95 ms",
                "paragraphs/s (batch 32)",
            ],
        )
    )
    print(f"(torch default here: {default} threads)")
    print(
        "wrote",
        write_json(
            "embedding_threads",
            {
                "query_ms": {
                    n: {k: v * 1000 for k, v in summary(lat[n]).items() if k != "n"} for n in lat
                },
                "paragraphs_per_s": thr,
                "default_threads": default,
            },
        ),
    )


if __name__ == "__main__":
    main()
