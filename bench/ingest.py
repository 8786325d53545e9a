"""Ingest throughput per embedding backend: the whole ``rag.ingest`` (fresh index) with torch,
ONNX fp32 and ONNX int8, in one run.

Corpus: the 9 SQuAD-dev development articles, one article one .md, paragraphs separated by
blank lines (written to a temporary folder). Each backend's model is loaded (and exported to
ONNX if needed) before its timed ingest. Order: torch, onnx, onnx-int8, torch again; torch's
rate is the mean of its two runs, which bracket the others, so load drifting during the run
affects the ratios less. The stage split shows where an ingest's time goes.

    python bench/ingest.py [--batch-size 32] [--backends torch onnx onnx-int8 torch]

``--onnx-options`` instead times int8 embedding alone on the same paragraphs (no Chroma) for
several ONNX Runtime thread counts, batch sizes and commit-batch sizes (ingest embeds and
commits ``4 x batch size`` chunks at a time; each call sorts its texts by length before
padding), in two passes in alternating order.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from common import DEV_ARTICLES, MODELS_DIR, RssSampler, Timer, table, write_corpus, write_json


def _timed(embedder, settings, stage: dict[str, float]):  # type: ignore[no-untyped-def]
    """The embedder and store ``rag.ingest`` uses, timing embed and Chroma add into ``stage``."""
    from rag.store import ChromaStore

    class TimedEmbedder:
        model_name = embedder.model_name

        def embed_documents(self, xs: list[str]) -> list[list[float]]:
            t0 = time.perf_counter()
            try:
                return embedder.embed_documents(xs)
            finally:
                stage["embed"] += time.perf_counter() - t0

        def embed_query(self, x: str) -> list[float]:
            return embedder.embed_query(x)

    class TimedStore(ChromaStore):
        def add(self, chunks, embeddings):  # type: ignore[no-untyped-def]
            t0 = time.perf_counter()
            try:
                super().add(chunks, embeddings)
            finally:
                stage["chroma_add"] += time.perf_counter() - t0

    return TimedEmbedder(), TimedStore(settings=settings)


# (intra-op threads (0: ONNX Runtime's default), batch size, chunks per embed call)
ONNX_OPTIONS = [(0, 32, 128), (1, 32, 128), (2, 32, 128), (0, 16, 128), (0, 64, 128), (0, 32, 1000)]


def onnx_options() -> None:
    from rag.embedding import OnnxEmbedder
    from rag.settings import EmbeddingSettings, Settings

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        texts = [t for paras in write_corpus(Path(tmp), DEV_ARTICLES).values() for t in paras]
    cache = Settings(models_dir=MODELS_DIR).model_cache_dir
    embedders = {}
    for threads, batch, _call in ONNX_OPTIONS:
        if (threads, batch) not in embedders:
            emb = OnnxEmbedder(
                EmbeddingSettings(backend="onnx-int8", threads=threads, batch_size=batch),
                cache_dir=cache,
            )
            emb.embed_documents(["warm up"])
            embedders[threads, batch] = emb
    rates: dict[tuple[int, int, int], list[float]] = {o: [] for o in ONNX_OPTIONS}
    for order in (ONNX_OPTIONS, ONNX_OPTIONS[::-1]):
        for threads, batch, call in order:
            emb = embedders[threads, batch]
            with Timer() as t:
                for i in range(0, len(texts), call):
                    emb.embed_documents(texts[i : i + call])
            rates[threads, batch, call].append(len(texts) / t.seconds)
    base = sum(rates[ONNX_OPTIONS[0]]) / 2
    rows = [
        (th or "default", b, c, *(f"{r:.1f}" for r in rs), sum(rs) / 2, sum(rs) / 2 / base)
        for (th, b, c), rs in rates.items()
    ]
    print(f"{len(texts)} paragraphs, load average {os.getloadavg()[0]:.1f}")
    header = ["threads", "batch", "texts per call", "pass 1 /s", "pass 2 /s", "mean /s", "vs first"]
    print(table(rows, header))
    write_json("ingest_onnx_options", {"rates": {str(k): v for k, v in rates.items()}})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--backends", nargs="*", default=["torch", "onnx", "onnx-int8", "torch"])
    ap.add_argument("--onnx-options", action="store_true", help="int8 session options only")
    args = ap.parse_args()
    if args.onnx_options:
        onnx_options()
        return

    from rag.embedding import get_embedder
    from rag.ingest import ingest
    from rag.settings import EmbeddingSettings, Settings

    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        base = Path(tmp)
        corpus = write_corpus(base / "corpus", DEV_ARTICLES)
        n = sum(len(p) for p in corpus.values())
        for i, backend in enumerate(args.backends):
            settings = Settings(
                corpus_dir=base / "corpus",
                data_dir=base / f"data{i}",
                db_dir=base / f"db{i}",
                models_dir=MODELS_DIR,
                embedding=EmbeddingSettings(backend=backend, batch_size=args.batch_size),
            )
            embedder = get_embedder(settings)
            with Timer() as t_load:
                embedder.embed_documents(["warm up"])
            stage = {"embed": 0.0, "chroma_add": 0.0}
            timed_embedder, timed_store = _timed(embedder, settings, stage)
            load = os.getloadavg()[0]
            with RssSampler() as rss, Timer() as t_ingest:
                report = ingest(
                    settings,
                    embedder=timed_embedder,
                    store=timed_store,
                )
            with Timer() as t_again:
                again = ingest(settings, embedder=timed_embedder)
            assert report.paragraphs == n and again.chunks_added == 0
            runs.append(
                {
                    "backend": backend,
                    "paragraphs": n,
                    "chunks": report.chunks,
                    "model_load_s": t_load.seconds,
                    "ingest_s": t_ingest.seconds,
                    "paragraphs_per_s": n / t_ingest.seconds,
                    "embed_s": stage["embed"],
                    "chroma_add_s": stage["chroma_add"],
                    "keyword_index_s": report.keyword_seconds,
                    "rest_s": t_ingest.seconds
                    - stage["embed"]
                    - stage["chroma_add"]
                    - report.keyword_seconds,
                    "second_ingest_s": t_again.seconds,
                    "peak_rss_mb": rss.peak,
                    "load_avg_at_start": load,
                }
            )
            print(f"done {backend}: {n / t_ingest.seconds:.1f} paragraphs/s", flush=True)
    torch_runs = [r["paragraphs_per_s"] for r in runs if r["backend"] == "torch"]
    torch_pps = sum(torch_runs) / len(torch_runs) if torch_runs else float("nan")
    rows = [
        (
            r["backend"],
            r["paragraphs"],
            r["chunks"],
            r["ingest_s"],
            r["paragraphs_per_s"],
            r["paragraphs_per_s"] / torch_pps,
            r["embed_s"],
            r["chroma_add_s"],
            r["keyword_index_s"],
            r["rest_s"],
            r["second_ingest_s"],
            r["load_avg_at_start"],
        )
        for r in runs
    ]
    print(
        table(
            rows,
            [
                "backend",
                "paragraphs",
                "chunks",
                "ingest s",
                "paragraphs/s",
                "vs torch (mean)",
                "embed s",
                "chroma add s",
                "BM25 build+publish s",
                "rest s",
                "re-ingest s",
                "load avg",
            ],
        )
    )
    print("wrote", write_json("ingest", {"runs": runs, "torch_paragraphs_per_s": torch_pps}))


if __name__ == "__main__":
    main()
