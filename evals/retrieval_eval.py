"""Retrieval quality on SQuAD articles: dense only, BM25 only and hybrid (RRF), per paragraph.

For each answerable question the gold paragraph is (document, paragraph number). Each
retriever's chunk list is collapsed to paragraphs in rank order (a paragraph ranks by its best
chunk), exactly as ``HybridRetriever.fuse`` does for the hybrid list. Metrics: recall@1,
recall@5 (gold paragraph in the top 1 / 5) and MRR@10 (1 / rank of the gold paragraph, 0 when
it is not in the top 10).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from evals.metrics import mean, rank_of
from evals.squad import (
    GoldQuestion,
    all_questions,
    doc_name,
    load_squad,
    select_articles,
    write_corpus,
)
from rag.settings import Settings
from rag.types import IngestReport

METHODS = ("dense", "bm25", "hybrid")


def _paragraph_ranking(chunks: Sequence[tuple[Any, float]]) -> list[tuple[str, int]]:
    seen: list[tuple[str, int]] = []
    for chunk, _score in chunks:
        key = (str(chunk.metadata.get("source", "")), int(chunk.metadata.get("paragraph", 0)))
        if key not in seen:
            seen.append(key)
    return seen


def retrieval_scores(rank: int | None) -> dict[str, float]:
    """recall@1, recall@5 and MRR@10 of one gold rank (None: not retrieved)."""
    return {
        "recall_at_1": float(rank is not None and rank <= 1),
        "recall_at_5": float(rank is not None and rank <= 5),
        "mrr_at_10": (1.0 / rank) if rank is not None and rank <= 10 else 0.0,
    }


def evaluate_retrieval(
    retriever: Any,
    gold: Sequence[GoldQuestion],
    *,
    candidates: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Rank of the gold paragraph for each answerable question under each method.

    ``retriever``: a ``rag.HybridRetriever`` over the ingested articles. Dense uses
    ``retriever.store.query``; BM25 ``rag.chunk_store.get_chunk_store(store).search``; hybrid
    ``retriever.fuse`` of those two lists (what ``retriever.search`` does).
    """
    from rag.chunk_store import get_chunk_store

    n_cand = candidates or int(retriever.settings.retrieval.candidates)
    bm25 = get_chunk_store(retriever.store)
    qs = [g for g in gold if g.question.answerable]
    rows: list[dict[str, Any]] = []
    seconds = {m: 0.0 for m in METHODS}
    for i, g in enumerate(qs, start=1):
        target = (g.source, g.paragraph)
        t = time.perf_counter()
        emb = retriever.embedder.embed_query(g.question.question)
        dense = retriever.store.query(emb, n_cand)
        seconds["dense"] += time.perf_counter() - t
        t = time.perf_counter()
        keyword = bm25.search(g.question.question, n_cand)
        seconds["bm25"] += time.perf_counter() - t
        t = time.perf_counter()
        fused = retriever.fuse(dense, keyword, 10)
        seconds["hybrid"] += time.perf_counter() - t
        ranks = {
            "dense": rank_of(_paragraph_ranking(dense), target),
            "bm25": rank_of(_paragraph_ranking(keyword), target),
            "hybrid": rank_of([(p.source, p.paragraph) for p in fused], target),
        }
        rows.append(
            {"id": g.question.id, "source": g.source, "paragraph": g.paragraph, "ranks": ranks}
        )
        if on_progress:
            on_progress(i, len(qs))
    table: dict[str, dict[str, float | None]] = {}
    for method in METHODS:
        per = [retrieval_scores(r["ranks"][method]) for r in rows]
        table[method] = {
            name: (None if not per else round(mean([p[name] for p in per]) or 0.0, 4))
            for name in ("recall_at_1", "recall_at_5", "mrr_at_10")
        }
    return {
        "n_questions": len(rows),
        "candidates": n_cand,
        "table": table,
        "seconds": {m: round(s, 2) for m, s in seconds.items()},
        "questions": rows,
    }


def render_table(result: dict[str, Any]) -> str:
    """A Markdown table of the retrieval metrics."""
    lines = [
        f"Gold-paragraph retrieval over {result['n_questions']} answerable SQuAD questions "
        f"({result['candidates']} chunk candidates per retriever).",
        "",
        "| method | recall@1 | recall@5 | MRR@10 |",
        "|---|---:|---:|---:|",
    ]
    for m, row in result["table"].items():
        lines.append(
            f"| {m} | {row['recall_at_1']:.3f} | {row['recall_at_5']:.3f} "
            f"| {row['mrr_at_10']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def squad_gold(
    squad_path: Path,
    out_dir: Path,
    *,
    articles: Sequence[str] | None,
    per_article: int | None = None,
    seed: int = 0,
) -> tuple[Path, list[dict[str, Any]], list[GoldQuestion]]:
    """Write the SQuAD articles as ``out_dir/corpus`` and pick their answerable questions: all,
    or ``per_article`` per article drawn with ``random.Random(seed)``.

    Returns (corpus folder, the articles, the gold questions). Unknown articles: ValueError.
    """
    arts = select_articles(load_squad(squad_path), articles)
    corpus = out_dir / "corpus"
    write_corpus(arts, corpus)
    gold = [g for g in all_questions(arts) if g.question.answerable]
    if per_article is not None:
        rng = random.Random(seed)
        picked = []
        for a in arts:
            mine = [g for g in gold if g.source == doc_name(a["title"])]
            picked.extend(rng.sample(mine, min(per_article, len(mine))))
        gold = picked
    return corpus, arts, gold


def run_squad_retrieval(
    settings: Settings,
    articles: Sequence[dict[str, Any]],
    gold: Sequence[GoldQuestion],
    *,
    on_indexed: Callable[[IngestReport], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Index the corpus of ``settings`` (incremental), then :func:`evaluate_retrieval` with the
    real ``HybridRetriever``; the result names the articles."""
    from rag.ingest import ingest
    from rag.retrieval import HybridRetriever

    report = ingest(settings)
    if on_indexed is not None:
        on_indexed(report)
    result = evaluate_retrieval(HybridRetriever(settings=settings), gold, on_progress=on_progress)
    result["articles"] = [a["title"] for a in articles]
    return result


def write_retrieval_report(result: dict[str, Any], out_dir: Path) -> Path:
    """``out_dir/retrieval.json`` (everything) and ``out_dir/retrieval.md`` (the table);
    returns the Markdown file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "retrieval.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    md = out_dir / "retrieval.md"
    md.write_text("# Retrieval on SQuAD articles\n\n" + render_table(result), encoding="utf-8")
    return md
