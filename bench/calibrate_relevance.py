"""Calibrate the abstention floor ``retrieval.min_relevance`` on the eval questions.

The floor is a coarse gate for off-topic questions: it must sit below the best-passage
similarity of every answerable question and above that of clearly off-topic ones. On-topic
but unanswerable questions are not this gate's job (quote verification handles them).

    .venv/bin/python bench/calibrate_relevance.py [--questions evals/questions.jsonl]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from evals.corpus import assemble, eval_documents
from rag.ingest import ensure_index
from rag.retrieval import get_retriever, relevance, retrieve
from rag.settings import Settings

OFF_TOPIC = [
    "How long should I bake sourdough bread?",
    "What is the boiling point of water at sea level?",
    "Who won the 2018 FIFA World Cup?",
    "How do I install Python on Windows?",
    "What is the speed of light in a vacuum?",
    "Recommend a good pair of running shoes.",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--questions", type=Path, default=Path("evals/questions.jsonl"))
    args = ap.parse_args()
    # The fixed suite's corpus: the corpus folder plus the evaluation documents, indexed apart.
    base = Settings()
    out_dir = Path("bench/out/relevance")
    corpus = assemble(base.corpus_dir, out_dir / "corpus", eval_documents())
    settings = base.model_copy(update={"corpus_dir": corpus, "db_dir": out_dir / "db"})
    ensure_index(settings)
    rows = [json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()]
    answerable = sorted(
        (relevance(retrieve(r["question"], settings=settings)), r["id"])
        for r in rows
        if r.get("answerable") and not r.get("history")  # follow-ups need the rewrite first
    )
    off = sorted((relevance(retrieve(q, settings=settings)), q) for q in OFF_TOPIC)
    floor = settings.retrieval.min_relevance
    print(
        f"answerable (n={len(answerable)}): min {answerable[0][0]:.3f} ({answerable[0][1]}), "
        f"median {answerable[len(answerable) // 2][0]:.3f}"
    )
    print(f"off-topic  (n={len(off)}): max {off[-1][0]:.3f} ({off[-1][1]!r})")
    print(
        f"configured floor: {floor:.3f}; a floor between the two keeps every answerable "
        f"question and stops every off-topic one: {off[-1][0] < floor < answerable[0][0]}"
    )
    # The chain reads a question under the floor too when it names a rare term of the index.
    retriever = get_retriever(settings)
    named = [q for _, q in off if retriever.named_terms(q)]
    print(f"off-topic questions naming a rare term of the index (read despite the floor): {named}")
    out = {"answerable": answerable, "off_topic": off, "floor": floor, "off_topic_named": named}
    Path("bench/out").mkdir(parents=True, exist_ok=True)
    Path("bench/out/calibration.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
