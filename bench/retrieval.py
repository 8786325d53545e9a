"""Hybrid retrieval latency, recall@5, index size and peak RSS at 1k, 10k and 100k paragraphs.

Corpus: the 1,204 paragraphs of all 35 SQuAD-dev articles (the "1k" point), then variants of
them up to 10,000 and 100,000 paragraphs. A variant of paragraph i is its text with a short
prefix or suffix (8-20 words) taken from another paragraph, so BM25 sees a realistic, growing
vocabulary and document-length distribution.

Embedding 100k texts with MiniLM at ~25 paragraphs/s (less on a shared machine) would take over
an hour, so only the 1,204 unique base paragraphs are embedded (once, cached in bench/out/).
A variant's vector is derived: normalise(v_i + 0.15 * v_other + N(0, 0.01^2)), i.e. mostly its
base paragraph with a little of the paragraph its prefix/suffix came from. Dense recall at 10k
and 100k is therefore an approximation (the near-duplicates are about as hard to tell apart as
real ones would be, but not identical in distribution); latency, index size and memory are
real, since Chroma/HNSW and BM25 do not care where the numbers came from. Chunks go straight in
through ``ChromaStore.add`` (one chunk per paragraph), then the fingerprint is set and the
BM25 index built and published as ``rag.ingest`` does (timed: "BM25 build s" is
``ChunkStore.build``, "publish s" saving it and swapping it in).

HNSW parameters are fixed when a collection is built (Chroma ignores a later
``collection.modify`` of ``ef_search`` for the index already loaded), so each ``--hnsw M:EF``
pair gets a fresh collection of ``--hnsw-size`` paragraphs, and its dense stage alone is timed
with its "ANN recall@30": the share of the exact 30 nearest chunks (numpy over the same
vectors) that HNSW returns. Every size also reports the ANN recall of its default collection.

Queries: 100 answerable SQuAD questions (fixed seed). A hit is the question's own paragraph in
the top 5 ("strict"), or that paragraph or one of its variants ("any copy": the variants carry
the same answer text).

Each size runs in its own subprocess, so peak RSS is per size:

    python bench/retrieval.py                    # seed corpus, 9 SQuAD articles, 1k, 10k, 100k
    python bench/retrieval.py --sizes 1204 10000 --queries 50
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    MODELS_DIR,
    OUT,
    ROOT,
    SEED_CORPUS,
    RssSampler,
    Timer,
    article_file_name,
    clean,
    dir_size_mb,
    load_squad,
    peak_rss_mb,
    summary,
    table,
    write_json,
)

SEED_QUERIES = [
    "Which institution is Dr. Tenzin Wangchuk affiliated with?",
    "Kathmandu Policy Forum",
    "Where was the Joint Communiqué signed?",
    "When did Bhutan become independent?",
    "Who is Dr. Ahmed Al-Thani?",
    "What technical assistance did Qatar provide to Bhutan?",
    "What happened to Qatar in 2017?",
    "Which conference did Bhutan participate in?",
    "What is the population of Bhutan?",
    "What sectors will see increased trade between Bhutan and Qatar?",
]


# -- data ----------------------------------------------------------------------------------


def base_paragraphs() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(paragraphs, questions): every SQuAD-dev paragraph with source/number, and answerable qs."""
    paras: list[dict[str, Any]] = []
    questions: list[dict[str, Any]] = []
    for art in load_squad():
        src = article_file_name(art["title"])
        for n, p in enumerate(art["paragraphs"], start=1):
            idx = len(paras)
            paras.append({"source": src, "paragraph": n, "text": clean(p["context"])})
            for qa in p["qas"]:
                if not qa.get("is_impossible"):
                    questions.append({"question": qa["question"], "base": idx})
    return paras, questions


def base_vectors(texts: list[str]) -> np.ndarray:
    """MiniLM vectors of the base paragraphs, cached in bench/out/ by a hash of the texts."""
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    path = OUT / f"squad_base_minilm_{digest}.npy"
    if path.exists():
        return np.load(path)
    from rag.embedding import get_embedder
    from rag.settings import Settings

    emb = get_embedder(Settings())
    t0 = time.perf_counter()
    vecs = np.asarray(emb.embed_documents(texts), dtype=np.float32)
    print(
        f"embedded {len(texts)} base paragraphs in {time.perf_counter() - t0:.0f} s",
        file=sys.stderr,
    )
    OUT.mkdir(parents=True, exist_ok=True)
    np.save(path, vecs)
    return vecs


def build_corpus(size: int, paras: list[dict[str, Any]], vecs: np.ndarray, seed: int = 0):
    """``size`` paragraphs: the base ones first, then variants. Returns (rows, vectors, base_of)."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    n_base = len(paras)
    rows: list[dict[str, Any]] = []
    base_of: list[int] = []
    out_vecs = np.empty((size, vecs.shape[1]), dtype=np.float32)
    for i in range(min(size, n_base)):
        rows.append(dict(paras[i]))
        base_of.append(i)
        out_vecs[i] = vecs[i]
    words = [p["text"].split() for p in paras]
    j = n_base
    copy = 1
    while j < size:
        for i in range(n_base):
            if j >= size:
                break
            o = rng.randrange(n_base)
            if o == i:
                o = (o + 1) % n_base
            w = words[o]
            m = rng.randint(8, 20)
            start = rng.randrange(max(1, len(w) - m))
            extra = " ".join(w[start : start + m])
            text = f"{extra} {paras[i]['text']}" if copy % 2 else f"{paras[i]['text']} {extra}"
            src = paras[i]["source"].removesuffix(".md") + f"-v{copy}.md"
            rows.append({"source": src, "paragraph": paras[i]["paragraph"], "text": text})
            base_of.append(i)
            v = vecs[i] + 0.15 * vecs[o] + nrng.normal(0, 0.01, vecs.shape[1]).astype(np.float32)
            out_vecs[j] = v / np.linalg.norm(v)
            j += 1
        copy += 1
    return rows, out_vecs, base_of


# -- one size, in this process -------------------------------------------------------------


def insert(settings: Any, rows: list[dict[str, Any]], vecs: np.ndarray) -> dict[str, float]:
    from rag.chunk_store import ChunkStore, chunk_store_dir, publish
    from rag.store import ChromaStore, chunk_metadata
    from rag.types import Chunk

    store = ChromaStore(settings=settings)
    store.collection(create=True)
    batch = min(5000, int(store.client.get_max_batch_size()))
    ids: list[str] = []
    texts: list[str] = []
    metas: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for s in range(0, len(rows), batch):
        chunks = []
        for r in rows[s : s + batch]:
            pid = hashlib.sha1(f"{r['source']}#{r['paragraph']}".encode()).hexdigest()[:16]
            chunks.append(
                Chunk(
                    id=f"{pid}-0",
                    paragraph_id=pid,
                    source=r["source"],
                    paragraph=r["paragraph"],
                    section="",
                    text=r["text"],
                    chunk_index=0,
                    n_chunks=1,
                    paragraph_text=r["text"],
                    start=0,
                    end=len(r["text"]),
                )
            )
        store.add(chunks, vecs[s : s + batch].tolist())
        ids.extend(c.id for c in chunks)
        texts.extend(c.text for c in chunks)
        metas.extend(chunk_metadata(c) for c in chunks)
    fp = store.set_fingerprint(ids)
    insert_s = time.perf_counter() - t0
    with Timer() as t_build:
        index = ChunkStore.build(ids, texts, metas, fp)
    with Timer() as t_pub:
        publish(index, chunk_store_dir(settings))
    return {"insert_s": insert_s, "bm25_build_s": t_build.seconds, "publish_s": t_pub.seconds}


def _settings(tmp: str, **chroma: int) -> Any:
    from rag.settings import ChromaSettings, Settings

    return Settings(
        corpus_dir=Path(tmp) / "corpus",
        data_dir=Path(tmp) / "data",
        db_dir=Path(tmp) / "db",
        models_dir=MODELS_DIR,
        chroma=ChromaSettings(**chroma),
    )


def run_size(size: int, n_queries: int, seed: int, grid: list[tuple[int, int]]) -> dict[str, Any]:
    from rag.chunk_store import chunk_store_dir
    from rag.retrieval import HybridRetriever

    paras, questions = base_paragraphs()
    vecs = base_vectors([p["text"] for p in paras])
    rows, cvecs, base_of = build_corpus(size, paras, vecs, seed)
    qs = random.Random(seed).sample(questions, n_queries)
    with tempfile.TemporaryDirectory(prefix=f"bench-retrieval-{size}-") as tmp:
        settings = _settings(tmp)
        with RssSampler() as rss_build:
            timings = insert(settings, rows, cvecs)
        retriever = HybridRetriever(settings=settings)
        retriever.embedder.embed_query("warm up")
        with Timer() as t_load:
            retriever.index()
        info = {
            "size": size,
            **timings,
            "bm25_load_s": t_load.seconds,
            "rss_after_build_mb": rss_build.peak,
            "chroma_mb": dir_size_mb(settings.index_dir),
            "bm25_mb": dir_size_mb(chunk_store_dir(settings)),
        }
        out = measure(settings, retriever, rows, base_of, qs, paras, info)
        exact = ExactNeighbours(cvecs, retriever, qs)
        out["ann"] = sweep(retriever, qs, key_base(rows, base_of), exact)
    if grid:
        out["hnsw"] = []
        for m, ef in grid:
            with tempfile.TemporaryDirectory(prefix=f"bench-retrieval-m{m}-ef{ef}-") as tmp:
                settings = _settings(tmp, hnsw_max_neighbors=m, hnsw_ef_search=ef)
                with Timer() as t_ins:
                    insert(settings, rows, cvecs)
                retriever = HybridRetriever(settings=settings)
                res = sweep(retriever, qs, key_base(rows, base_of), exact)
                uuid_dirs = [p for p in settings.index_dir.iterdir() if p.is_dir()]
                res.update(
                    max_neighbors=m,
                    ef_search=ef,
                    insert_s=t_ins.seconds,
                    hnsw_mb=sum(dir_size_mb(p) for p in uuid_dirs),
                )
                out["hnsw"].append(res)
    return out


class ExactNeighbours:
    """The exact 30 nearest chunk ids of each query (brute force over the inserted vectors)."""

    def __init__(self, cvecs: np.ndarray, retriever: Any, qs: list[dict[str, Any]]) -> None:
        bm25, _col = retriever.index()
        n = retriever.settings.retrieval.candidates
        self.top: dict[str, set[str]] = {}
        self.row = {cid: i for i, cid in enumerate(bm25.ids)}
        self.sims: dict[str, np.ndarray] = {}  # query -> exact cosine of every chunk
        for q in qs:
            v = np.asarray(retriever.embedder.embed_query(q["question"]), dtype=np.float32)
            sims = cvecs @ v
            best = np.argpartition(-sims, n - 1)[:n]
            self.top[q["question"]] = {bm25.ids[int(i)] for i in best}
            self.sims[q["question"]] = sims


def key_base(rows: list[dict[str, Any]], base_of: list[int]) -> dict[tuple[str, int], int]:
    """(source, paragraph) -> row index (base paragraphs are rows 0..1203)."""
    return {(r["source"], r["paragraph"]): i for i, r in enumerate(rows)}


def sweep(
    retriever: Any, qs: list[dict[str, Any]], base: dict, exact: ExactNeighbours
) -> dict[str, Any]:
    """The dense stage alone on this retriever's collection: latency and recall."""
    n = retriever.settings.retrieval.candidates
    bm25, col = retriever.index()
    vecs = [retriever.embedder.embed_query(q["question"]) for q in qs]
    retriever.store.query_ids(vecs[0], n, None, col=col, total=bm25.count)  # warm
    times, hits, ann, gap = [], 0, 0.0, 0.0
    for q, v in zip(qs, vecs, strict=True):
        t = time.perf_counter()
        dense = retriever.store.query_ids(v, n, None, col=col, total=bm25.count)
        times.append(time.perf_counter() - t)
        rows = [bm25.metadata[bm25.row(cid)] for cid, _ in dense[:5]]
        hits += q["base"] in [base.get((m["source"], m["paragraph"])) for m in rows]
        want = exact.top[q["question"]]
        ann += len(want & {cid for cid, _ in dense}) / len(want)
        sims = exact.sims[q["question"]]
        gap += float(sims.max()) - max(float(sims[exact.row[cid]]) for cid, _ in dense)
    return {
        "chroma_query_ms": _ms(times),
        "dense_recall_at_5": hits / len(qs),
        "ann_recall_at_30": ann / len(qs),
        # how much closer the exact nearest chunk is than the best one HNSW returned
        "best_cosine_gap": gap / len(qs),
    }


def measure(settings, retriever, rows, base_of, qs, paras, info) -> dict[str, Any]:
    from rag.store import StoredChunk

    rs = settings.retrieval
    key_of = {(r["source"], r["paragraph"]): i for i, r in enumerate(rows)}
    # Stage timings, the same calls HybridRetriever.search makes, in its order.
    stages: dict[str, list[float]] = {
        k: []
        for k in (
            "total",
            "index_check",
            "embed_query",
            "chroma_query",
            "bm25_search",
            "fuse+texts",
        )
    }
    strict = anycopy = 0
    for q in qs:
        t0 = time.perf_counter()
        got = retriever.search(q["question"], k=5)
        stages["total"].append(time.perf_counter() - t0)
        gold = q["base"]
        idxs = [key_of.get((p.source, p.paragraph)) for p in got]
        strict += any(i == gold for i in idxs)
        anycopy += any(i is not None and base_of[i] == gold for i in idxs)

        t = time.perf_counter()
        idx, col = retriever.index()
        stages["index_check"].append(time.perf_counter() - t)
        t = time.perf_counter()
        v = retriever.embedder.embed_query(q["question"])
        stages["embed_query"].append(time.perf_counter() - t)
        t = time.perf_counter()
        dense = retriever.store.query_ids(v, rs.candidates, None, col=col, total=idx.count)
        stages["chroma_query"].append(time.perf_counter() - t)
        t = time.perf_counter()
        kw = idx.search(q["question"], rs.candidates, None)
        stages["bm25_search"].append(time.perf_counter() - t)
        t = time.perf_counter()
        retriever.fuse([(StoredChunk(c, "", {}), s) for c, s in dense], kw, 5, index=idx)
        stages["fuse+texts"].append(time.perf_counter() - t)

    n = len(qs)
    from rag.chunk_store import chunk_store_dir

    db = settings.index_dir
    out = {
        **info,
        "queries": n,
        "recall_at_5_strict": strict / n,
        "recall_at_5_any_copy": anycopy / n,
        "latency_ms": {k: _ms(vals) for k, vals in stages.items()},
        "index_on_disk_mb": dir_size_mb(db) + dir_size_mb(chunk_store_dir(settings)),
        "peak_rss_mb": peak_rss_mb(),
    }
    return out


def _ms(seconds: list[float]) -> dict[str, float]:
    """p50/p95/... of a list of durations, in milliseconds."""
    return {m: v * 1000 for m, v in summary(seconds).items() if m != "n"}


@contextmanager
def _ingested(corpus_dir: Path, tmp: str) -> Iterator[tuple[Any, Any, Any]]:
    """(settings, ingest report, warm retriever) for ``corpus_dir`` through the real
    ``rag.ingest`` into a temporary index; the embedder and BM25 are built before any timing."""
    from rag.ingest import ingest
    from rag.retrieval import HybridRetriever
    from rag.settings import Settings

    settings = Settings(
        corpus_dir=corpus_dir,
        data_dir=Path(tmp) / "data",
        db_dir=Path(tmp) / "db",
        models_dir=MODELS_DIR,
    )
    rep = ingest(settings)
    retriever = HybridRetriever(settings=settings)
    retriever.search("warm up", k=5)  # loads the embedder and the BM25 index
    yield settings, rep, retriever


def run_squad9(n_queries: int, seed: int) -> dict[str, Any]:
    """The 9 SQuAD development articles through the real ``rag.ingest`` (real embeddings),
    queried with their own answerable questions: the latency a user of a small real corpus sees."""
    from common import DEV_ARTICLES, write_corpus

    dev_files = {article_file_name(t) for t in DEV_ARTICLES}
    paras, questions = base_paragraphs()
    mine = [q for q in questions if paras[q["base"]]["source"] in dev_files]
    qs = random.Random(seed).sample(mine, min(n_queries, len(mine)))
    with tempfile.TemporaryDirectory(prefix="bench-retrieval-squad9-") as tmp:
        corpus = write_corpus(Path(tmp) / "corpus", DEV_ARTICLES)
        with _ingested(Path(tmp) / "corpus", tmp) as (settings, rep, retriever):
            times = []
            hits = 0
            for q in qs:
                gold = paras[q["base"]]
                t = time.perf_counter()
                got = retriever.search(q["question"], k=5)
                times.append(time.perf_counter() - t)
                hits += any(
                    (p.source, p.paragraph) == (gold["source"], gold["paragraph"]) for p in got
                )
            return {
                "size": f"9 SQuAD articles ({rep.paragraphs} paragraphs, {len(corpus)} documents)",
                "queries": len(times),
                "recall_at_5_strict": hits / len(times),
                "recall_at_5_any_copy": hits / len(times),
                "latency_ms": {"total": _ms(times)},
                "index_on_disk_mb": _index_mb(settings),
                "peak_rss_mb": peak_rss_mb(),
            }


def _index_mb(settings: Any) -> float:
    from rag.chunk_store import chunk_store_dir

    return dir_size_mb(settings.index_dir) + dir_size_mb(chunk_store_dir(settings))


def run_seed(seed: int) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="bench-retrieval-seed-") as tmp,
        _ingested(SEED_CORPUS, tmp) as (settings, rep, retriever),
    ):
        times = []
        for _ in range(3):
            for q in SEED_QUERIES:
                t = time.perf_counter()
                got = retriever.search(q, k=5)
                times.append(time.perf_counter() - t)
        top = retriever.search("Kathmandu Policy Forum", k=5)[0]
        return {
            "size": f"seed ({rep.paragraphs} paragraphs)",
            "queries": len(times),
            "latency_ms": {"total": _ms(times)},
            "kathmandu_top1": f"{top.source}#{top.paragraph}",
            "index_on_disk_mb": _index_mb(settings),
            "peak_rss_mb": peak_rss_mb(),
            "last_top": [(p.source, p.paragraph) for p in got],
        }


# -- driver --------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", nargs="*", type=int, default=[1204, 10000, 100000])
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--no-seed-corpus",
        action="store_true",
        help="skip the two real-ingest corpora (seed article, 9 SQuAD articles)",
    )
    ap.add_argument(
        "--hnsw",
        nargs="*",
        default=["16:100", "16:30", "16:400", "8:100", "32:100"],
        help="M:EF (max_neighbors:ef_search) pairs, each on a fresh collection at --hnsw-size",
    )
    ap.add_argument("--hnsw-size", type=int, default=10000, help="paragraphs for --hnsw")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one size, print JSON
    args = ap.parse_args()

    if args.one:
        if args.one == "seed":
            res = run_seed(args.seed)
        elif args.one == "squad9":
            res = run_squad9(args.queries, args.seed)
        else:
            grid = [tuple(map(int, p.split(":"))) for p in args.hnsw]
            res = run_size(
                int(args.one),
                args.queries,
                args.seed,
                grid if int(args.one) == args.hnsw_size else [],  # type: ignore[misc]
            )
        OUT.mkdir(parents=True, exist_ok=True)  # kept per size, in case a later size is interrupted
        (OUT / f"retrieval_{args.one}.json").write_text(
            json.dumps(res, indent=2) + "\n", encoding="utf-8"
        )
        print("RESULT " + json.dumps(res))
        return

    paras, _ = base_paragraphs()
    base_vectors([p["text"] for p in paras])  # embed once, before the timed subprocesses
    results = []
    jobs = ([] if args.no_seed_corpus else ["seed", "squad9"]) + [str(s) for s in args.sizes]
    for job in jobs:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                str(Path(__file__)),
                "--one",
                job,
                "--queries",
                str(args.queries),
                "--seed",
                str(args.seed),
                "--hnsw-size",
                str(args.hnsw_size),
                "--hnsw",
                *args.hnsw,
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if line is None:
            print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
            raise SystemExit(f"size {job} failed")
        res = json.loads(line[len("RESULT ") :])
        res["wall_s"] = time.perf_counter() - t0
        results.append(res)
        print(f"done {job} in {res['wall_s']:.0f} s", file=sys.stderr)

    rows = []
    for r in results:
        lat = r["latency_ms"]
        rows.append(
            (
                r["size"],
                r["queries"],
                lat["total"]["p50"],
                lat["total"]["p95"],
                r.get("recall_at_5_any_copy", float("nan")),
                r.get("recall_at_5_strict", float("nan")),
                r["index_on_disk_mb"],
                r["peak_rss_mb"],
            )
        )
    print(
        table(
            rows,
            [
                "paragraphs",
                "queries",
                "p50 ms",
                "p95 ms",
                "recall@5 (any copy)",
                "recall@5 (strict)",
                "index MB",
                "peak RSS MB",
            ],
        )
    )
    print()
    stage_rows = []
    for r in results:
        if "bm25_search" not in r["latency_ms"]:
            continue
        lat = r["latency_ms"]
        stage_rows.append(
            (
                r["size"],
                *(
                    lat[k]["p50"]
                    for k in (
                        "index_check",
                        "embed_query",
                        "chroma_query",
                        "bm25_search",
                        "fuse+texts",
                    )
                ),
                r["insert_s"],
                r["bm25_build_s"],
                r["publish_s"],
                r["bm25_load_s"],
                r["chroma_mb"],
                r["bm25_mb"],
            )
        )
    print(
        table(
            stage_rows,
            [
                "paragraphs",
                "index check ms",
                "embed_query ms",
                "chroma query ms",
                "BM25 search ms",
                "fuse + texts ms",
                "insert s",
                "BM25 build s",
                "publish s",
                "BM25 load s",
                "Chroma MB",
                "chunk index MB (BM25 + texts)",
            ],
        )
    )
    print(
        "(stage columns are p50s of the same calls HybridRetriever.search makes, timed one by one)"
    )
    print(
        table(
            [
                (
                    r["size"],
                    r["ann"]["ann_recall_at_30"],
                    r["ann"]["best_cosine_gap"],
                    r["ann"]["chroma_query_ms"]["p50"],
                )
                for r in results
                if "ann" in r
            ],
            [
                "paragraphs",
                "ANN recall@30 (default HNSW)",
                "best cosine gap",
                "dense stage p50 ms",
            ],
        )
    )
    for r in results:
        if r.get("hnsw"):
            print(f"\nHNSW parameters at {r['size']} paragraphs, a fresh collection each:")
            print(
                table(
                    [
                        (
                            e["max_neighbors"],
                            e["ef_search"],
                            e["chroma_query_ms"]["p50"],
                            e["chroma_query_ms"]["p95"],
                            e["ann_recall_at_30"],
                            e["best_cosine_gap"],
                            e["dense_recall_at_5"],
                            e["insert_s"],
                            e["hnsw_mb"],
                        )
                        for e in r["hnsw"]
                    ],
                    [
                        "M",
                        "ef_search",
                        "dense stage p50 ms",
                        "p95 ms",
                        "ANN recall@30",
                        "best cosine gap",
                        "dense recall@5 (strict)",
                        "insert s",
                        "HNSW MB",
                    ],
                )
            )
    print("wrote", write_json("retrieval", {"results": results}))


if __name__ == "__main__":
    main()
