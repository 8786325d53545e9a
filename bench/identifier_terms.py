"""Does indexing whole identifiers (``rag.text.identifiers``) change BM25 retrieval?

BM25 alone (no embedder), recall@1 and recall@5 of the evidence paragraph, with and without
the whole-identifier terms, on the seed suite (``evals/questions.jsonl``, single-turn
answerable) and on the real-document fixture questions (``tests/data/real_docs``), plus
queries that name an identifier exactly.

    python bench/identifier_terms.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import rag.keyword as keyword  # noqa: E402
from rag import text  # noqa: E402
from rag.chunk_store import ChunkStore  # noqa: E402
from rag.loading import load_corpus  # noqa: E402
from rag.paragraphs import split_paragraphs  # noqa: E402

SUITES = {
    "seed (evals/questions.jsonl)": (ROOT / "corpus", ROOT / "evals" / "questions.jsonl"),
    "real documents": (
        ROOT / "tests" / "data" / "real_docs" / "corpus",
        ROOT / "tests" / "data" / "real_docs" / "questions.jsonl",
    ),
}
EXACT = [  # queries naming an identifier: the first hit must contain it, on the real documents
    "--document-private-items",
    "--document-hidden-items",
    "#[doc(hidden)]",
    "ffi_prep_cif_var",
    "what does --document-hidden-items do",
    "when is ffi_prep_cif_var needed",
]


def no_identifiers(folded: str) -> list[str]:
    return []


def main() -> None:
    # the whole-identifier terms of chunks and queries (rag.keyword), or none
    original = text.folded_identifiers
    variants = {"with identifiers": original, "words only": no_identifiers}
    for name, (corpus, qfile) in SUITES.items():
        paras = [p for d in load_corpus(corpus) for p in split_paragraphs(d)]
        ids = [p.id for p in paras]
        texts = [p.text for p in paras]
        metas = [{"source": p.source, "section": p.section} for p in paras]
        qs = [json.loads(line) for line in qfile.read_text().splitlines() if line.strip()]
        qs = [q for q in qs if q["answerable"] and not q.get("history")]
        for label, fn in variants.items():
            # chunks' terms (rag.keyword._corpus_term_ids), queries' (content_terms, query_terms)
            keyword.folded_identifiers = text.folded_identifiers = fn
            keyword.identifiers = lambda t, fn=fn: fn(text.fold(t))
            index = ChunkStore.build(ids, texts, metas)

            def search(query: str, n: int, index: ChunkStore = index) -> list[str]:
                return [index.texts[index.row(c.id) or 0] for c, _ in index.search(query, n)]

            r1 = r5 = 0
            for q in qs:
                top = search(q["question"], 5)
                hits = [any(e in t for e in q["evidence"]) for t in top]
                r1 += bool(hits and hits[0])
                r5 += any(hits)
            line = f"{name}, {label}: recall@1 {r1}/{len(qs)}, recall@5 {r5}/{len(qs)}"
            if name == "real documents":
                ident = [next(w for w in qy.split() if not w.isalpha()) for qy in EXACT]
                first = sum(
                    1 for qy, want in zip(EXACT, ident, strict=True) if want in search(qy, 1)[0]
                )
                line += f"; exact identifier queries first: {first}/{len(EXACT)}"
            print(line)
    keyword.folded_identifiers = text.folded_identifiers = original
    keyword.identifiers = text.identifiers


if __name__ == "__main__":
    main()
