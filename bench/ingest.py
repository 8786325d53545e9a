"""Ingest throughput: the whole ``rag.ingest`` (fresh index) vs raw ``SentenceTransformer.encode``.

Corpus: the 9 SQuAD-dev development articles, one article one .md, paragraphs separated by
blank lines (written to a temporary folder). Both measurements use the same loaded model and
the same paragraph texts; the raw encode runs before and after the ingest and the mean of the
two is the baseline (the machine is shared, so load drifts during a run).

    python bench/ingest.py [--batch-size 32]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import DEV_ARTICLES, MODELS_DIR, RssSampler, Timer, table, write_corpus, write_json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()

    from rag.embedding import get_embedder
    from rag.ingest import build_chunks, ingest
    from rag.settings import EmbeddingSettings, Settings
    from rag.store import ChromaStore

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        base = Path(tmp)
        corpus = write_corpus(base / "corpus", DEV_ARTICLES)
        texts = [p for paras in corpus.values() for p in paras]
        settings = Settings(
            corpus_dir=base / "corpus",
            data_dir=base / "data",
            db_dir=base / "db",
            models_dir=MODELS_DIR,
            embedding=EmbeddingSettings(batch_size=args.batch_size),
        )
        embedder = get_embedder(settings)
        with Timer() as t_load:
            model = embedder._load()  # the SentenceTransformer the ingest uses
        model.encode(texts[:8], batch_size=8, normalize_embeddings=True)  # warm-up

        def raw_encode() -> float:
            with Timer() as t:
                model.encode(
                    texts,
                    batch_size=args.batch_size,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                    convert_to_numpy=True,
                )
            return t.seconds

        raw_before = raw_encode()

        # Instrument the ingest: time spent embedding and writing to Chroma.
        stage = {"embed": 0.0, "chroma_add": 0.0}

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

        with Timer() as t_chunk:
            n_docs, n_paras, chunks = build_chunks(settings)
        with RssSampler() as rss, Timer() as t_ingest:
            report = ingest(settings, embedder=TimedEmbedder(), store=TimedStore(settings=settings))  # type: ignore[arg-type]
        with Timer() as t_again:
            again = ingest(settings, embedder=TimedEmbedder(), store=TimedStore(settings=settings))  # type: ignore[arg-type]

        chunk_texts = [c.text for c in chunks]

        def encode_chunks(slice_size: int) -> float:
            with Timer() as t:
                for i in range(0, len(chunk_texts), slice_size):
                    model.encode(
                        chunk_texts[i : i + slice_size],
                        batch_size=args.batch_size,
                        normalize_embeddings=True,
                        show_progress_bar=False,
                        convert_to_numpy=True,
                    )
            return t.seconds

        # What the ingest does (128-text calls, each sorted by length inside encode) vs one call
        # over everything (sentence-transformers sorts the whole list by length: less padding).
        raw_chunks_sliced = encode_chunks(args.batch_size * 4)
        raw_chunks_whole = encode_chunks(len(chunk_texts))
        raw_after = raw_encode()
        raw = (raw_before + raw_after) / 2
        n = len(texts)
        assert report.paragraphs == n, (report.paragraphs, n)
        raw_pps = n / raw
        ingest_pps = n / t_ingest.seconds
        other = t_ingest.seconds - stage["embed"] - stage["chroma_add"]
        result = {
            "articles": len(corpus),
            "paragraphs": n,
            "chunks": report.chunks,
            "batch_size": args.batch_size,
            "model_load_s": t_load.seconds,
            "raw_encode_s": {"before": raw_before, "after": raw_after, "mean": raw},
            "raw_paragraphs_per_s": raw_pps,
            "ingest_s": t_ingest.seconds,
            "ingest_paragraphs_per_s": ingest_pps,
            "ratio_ingest_over_raw": ingest_pps / raw_pps,
            "stages_s": {
                "load_split_chunk (measured separately)": t_chunk.seconds,
                "embed": stage["embed"],
                "chroma_add": stage["chroma_add"],
                "rest (load, split, chunk, diff, fingerprint, lock)": other,
            },
            "raw_encode_chunk_texts_s": {
                f"in {args.batch_size * 4}-text calls (as ingest)": raw_chunks_sliced,
                "one call": raw_chunks_whole,
            },
            "second_ingest_s": t_again.seconds,
            "second_ingest_chunks_added": again.chunks_added,
            "peak_rss_mb_during_ingest": rss.peak,
        }
        rows = [
            (
                "raw SentenceTransformer.encode (mean of before/after)",
                n,
                f"{raw:.1f}",
                f"{raw_pps:.1f}",
                "1.00",
            ),
            (
                "rag.ingest, fresh index",
                n,
                f"{t_ingest.seconds:.1f}",
                f"{ingest_pps:.1f}",
                f"{ingest_pps / raw_pps:.2f}",
            ),
            (
                f"raw encode of the {len(chunk_texts)} chunk texts, "
                f"{args.batch_size * 4}-text calls",
                n,
                f"{raw_chunks_sliced:.1f}",
                f"{n / raw_chunks_sliced:.1f}",
                f"{raw / raw_chunks_sliced:.2f}",
            ),
            (
                f"raw encode of the {len(chunk_texts)} chunk texts, one call",
                n,
                f"{raw_chunks_whole:.1f}",
                f"{n / raw_chunks_whole:.1f}",
                f"{raw / raw_chunks_whole:.2f}",
            ),
            (
                "rag.ingest again (nothing changed)",
                n,
                f"{t_again.seconds:.2f}",
                f"{n / t_again.seconds:.0f}",
                "-",
            ),
        ]
        print(table(rows, ["run", "paragraphs", "seconds", "paragraphs/s", "ratio vs raw"]))
        print()
        print(
            table(
                [(k, f"{v:.2f}") for k, v in result["stages_s"].items()]
                + [("raw encode before / after", f"{raw_before:.1f} / {raw_after:.1f}")],
                ["ingest stage", "seconds"],
            )
        )
        print(
            f"\n{report.chunks} chunks from {n} paragraphs; peak RSS {rss.peak:.0f} MiB; "
            f"model load {t_load.seconds:.1f} s (not counted)"
        )
        print("wrote", write_json("ingest", result))


if __name__ == "__main__":
    main()
