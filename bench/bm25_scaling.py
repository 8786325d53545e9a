"""rank_bm25 vs a sparse inverted-index BM25 (bench/bm25_sparse.py) at 1k / 10k / 100k
paragraphs, keyword search only (no Chroma, no embedding), same corpus construction as
bench/retrieval.py: base SQuAD-dev paragraphs plus variants with a prefix/suffix from another
paragraph. Tokens come from ``rag.text.content_terms`` (what ``rag.keyword`` uses); a variant's
tokens are its base paragraph's tokens plus those of its extra words, which equals tokenising
the variant text (content_terms works word by word) and avoids stemming 100k texts.

    python bench/bm25_scaling.py [--sizes 1204 10000 100000] [--queries 30]
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np
from bm25_sparse import SparseBM25
from common import peak_rss_mb, summary, table, write_json
from retrieval import base_paragraphs


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", nargs="*", type=int, default=[1204, 10000, 100000])
    ap.add_argument("--queries", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from rank_bm25 import BM25Okapi

    from rag.text import content_terms

    paras, questions = base_paragraphs()
    base_toks = [content_terms(p["text"]) for p in paras]
    words = [p["text"].split() for p in paras]
    qs = random.Random(args.seed).sample(questions, args.queries)
    q_terms = [content_terms(q["question"]) for q in qs]
    results = []
    for size in args.sizes:
        rng = random.Random(args.seed)
        corpus = list(base_toks[: min(size, len(paras))])
        while len(corpus) < size:
            for i in range(len(paras)):
                if len(corpus) >= size:
                    break
                o = (rng.randrange(len(paras) - 1) + i + 1) % len(paras)
                m = rng.randint(8, 20)
                start = rng.randrange(max(1, len(words[o]) - m))
                corpus.append(content_terms(" ".join(words[o][start : start + m])) + base_toks[i])
        t0 = time.perf_counter()
        bm25 = BM25Okapi(corpus)
        build = time.perf_counter() - t0
        t0 = time.perf_counter()
        sparse = SparseBM25.from_bm25(bm25)
        sbuild = time.perf_counter() - t0
        t_ref, t_sp, same = [], [], 0
        for terms in q_terms:
            t0 = time.perf_counter()
            ref = bm25.get_scores(terms)
            top_ref = np.argpartition(-ref, 29)[:30]
            t_ref.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            top_sp = sparse.top_n(terms, 30)
            t_sp.append(time.perf_counter() - t0)
            ref_sorted = [
                int(i) for i in top_ref[np.argsort(-ref[top_ref], kind="stable")] if ref[i] > 0
            ]
            # equal as score multisets (ties may order differently)
            same += np.allclose(sorted(ref[ref_sorted]), sorted(sparse.scores(terms)[top_sp]))
        r = {
            "size": size,
            "rank_bm25_build_s": build,
            "sparse_build_s": sbuild,
            "rank_bm25_ms": {k: v * 1000 for k, v in summary(t_ref).items() if k != "n"},
            "sparse_ms": {k: v * 1000 for k, v in summary(t_sp).items() if k != "n"},
            "same_top30_scores": f"{same}/{len(q_terms)}",
        }
        results.append(r)
        print(f"done {size}", flush=True)
    rows = [
        (
            r["size"],
            r["rank_bm25_ms"]["p50"],
            r["rank_bm25_ms"]["p95"],
            r["sparse_ms"]["p50"],
            r["sparse_ms"]["p95"],
            r["rank_bm25_ms"]["p50"] / r["sparse_ms"]["p50"],
            r["same_top30_scores"],
            r["rank_bm25_build_s"],
            r["sparse_build_s"],
        )
        for r in results
    ]
    print(
        table(
            rows,
            [
                "paragraphs",
                "rank_bm25 p50 ms",
                "rank_bm25 p95 ms",
                "sparse p50 ms",
                "sparse p95 ms",
                "speed-up",
                "same top-30 scores",
                "rank_bm25 build s",
                "sparse build s",
            ],
        )
    )
    print("wrote", write_json("bm25_scaling", {"results": results, "peak_rss_mb": peak_rss_mb()}))


if __name__ == "__main__":
    main()
