"""The keyword index (``rag.keyword``, bm25s) at 1k / 10k / 100k paragraphs: build, publish,
load, search, size. Keyword search only (no Chroma, no embedding).

Corpus: the 1,204 SQuAD-dev paragraphs, then variants (the paragraph with a prefix or suffix of
8-20 words from another paragraph, as in bench/retrieval.py) up to the size. Every text is
tokenised (``rag.keyword.bm25_terms``: stemmed content words) inside the build, as at ingest.
"Build" is ``ChunkStore.build``; "publish" saves the version folder and swaps ``CURRENT``;
"load" is what a search process does the first time it sees a new version.

``--baseline REV`` also builds each size the way revision REV did (its ``rag/text.py`` read
with ``git show``: every text tokenised and stemmed on its own, bm25s given strings), in the
same run, and checks that both score every chunk identically for every query.

    python bench/bm25_scaling.py [--sizes 1204 10000 100000] [--queries 30] [--baseline 17e683e]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import ROOT, RssSampler, dir_size_mb, summary, table, write_json
from retrieval import base_paragraphs


def texts_of_size(paras: list[dict], size: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    words = [p["text"].split() for p in paras]
    out = [p["text"] for p in paras[:size]]
    copy = 1
    while len(out) < size:
        for i, p in enumerate(paras):
            if len(out) >= size:
                break
            o = (rng.randrange(len(paras) - 1) + i + 1) % len(paras)
            m = rng.randint(8, 20)
            start = rng.randrange(max(1, len(words[o]) - m))
            extra = " ".join(words[o][start : start + m])
            out.append(f"{extra} {p['text']}" if copy % 2 else f"{p['text']} {extra}")
        copy += 1
    return out


def baseline_builder(rev: str) -> Callable[[list[str]], Any]:
    """The keyword build of revision ``rev``: its ``content_terms`` per text, strings to bm25s."""
    src = subprocess.run(
        ["git", "show", f"{rev}:rag/text.py"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    old = types.ModuleType(f"text_{rev}")
    exec(compile(src, f"{rev}:rag/text.py", "exec"), old.__dict__)  # noqa: S102

    def build(texts: list[str]) -> Any:
        from rag.keyword import bm25s_quiet

        model = bm25s_quiet().BM25()
        model.index([old.content_terms(t) for t in texts], show_progress=False)
        return model

    return build


def same_scores(index: Any, model: Any, queries: list[str]) -> bool:
    """Does every query score every document exactly as the baseline model does? (Then the
    rankings are the same: ``ChunkStore.search`` ranks by score, ties by row.)"""
    import numpy as np

    from rag.keyword import query_terms

    return all(
        np.array_equal(
            index.bm25.model.get_scores(query_terms(q)), model.get_scores(query_terms(q))
        )
        for q in queries
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", nargs="*", type=int, default=[1204, 10000, 100000])
    ap.add_argument("--queries", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--baseline", help="also build as git revision REV did, and compare")
    args = ap.parse_args()
    baseline = baseline_builder(args.baseline) if args.baseline else None
    from rag.keyword import bm25s_quiet

    bm25s_quiet()  # imported before any timed build
    from rag.chunk_store import ChunkStore, current, publish

    paras, questions = base_paragraphs()
    qs = [q["question"] for q in random.Random(args.seed).sample(questions, args.queries)]
    results = []
    for size in args.sizes:
        texts = texts_of_size(paras, size, args.seed)
        ids = [f"c{i}" for i in range(size)]
        metas = [{"source": f"doc{i // 100}.md", "paragraph": i % 100 + 1} for i in range(size)]
        base_s, same = float("nan"), None
        if baseline is not None:
            t0 = time.perf_counter()
            old_model = baseline(texts)
            base_s = time.perf_counter() - t0
        with tempfile.TemporaryDirectory(prefix="bench-bm25-") as tmp, RssSampler() as rss:
            root = Path(tmp) / "db.bm25" / "corpus"
            t0 = time.perf_counter()
            index = ChunkStore.build(ids, texts, metas, "fp")
            build = time.perf_counter() - t0
            t0 = time.perf_counter()
            publish(index, root)
            pub = time.perf_counter() - t0
            if baseline is not None:
                same = same_scores(index, old_model, qs)
                del old_model
            del index
            t0 = time.perf_counter()
            loaded, _ = current(root)  # type: ignore[misc]
            load = time.perf_counter() - t0
            times = []
            for q in qs:
                t0 = time.perf_counter()
                loaded.search(q, 30)
                times.append(time.perf_counter() - t0)
            size_mb = dir_size_mb(root)
        ms = {k: v * 1000 for k, v in summary(times).items() if k != "n"}
        results.append(
            {
                "size": size,
                "build_s": build,
                "baseline_build_s": base_s,
                "same_scores": same,
                "publish_s": pub,
                "load_s": load,
                "search_ms": ms,
                "disk_mb": size_mb,
                "peak_rss_mb": rss.peak,
            }
        )
        print(f"done {size}", flush=True)
    print(
        table(
            [
                (
                    r["size"],
                    r["baseline_build_s"],
                    r["build_s"],
                    r["baseline_build_s"] / r["build_s"],
                    {None: "n/a", True: "yes", False: "NO"}[r["same_scores"]],
                    r["publish_s"],
                    r["load_s"],
                    r["search_ms"]["p50"],
                    r["search_ms"]["p95"],
                    r["disk_mb"],
                    r["peak_rss_mb"],
                )
                for r in results
            ],
            [
                "paragraphs",
                f"build s ({args.baseline or 'baseline'})",
                "build s",
                "speed-up",
                "same scores",
                "publish s",
                "load s",
                "search p50 ms",
                "search p95 ms",
                "on disk MB",
                "peak RSS MB",
            ],
        )
    )
    print("wrote", write_json("bm25_scaling", {"baseline": args.baseline, "results": results}))


if __name__ == "__main__":
    main()
