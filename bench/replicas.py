"""Several app processes over one Chroma server (``rag.replicas``): what it costs and what it keeps.

Against a real ``chroma run`` on loopback:

1. recall@5 and search latency on the 9 SQuAD development articles (answerable questions,
   ``--queries`` sampled with a fixed seed): the embedded default, the server as seen by the
   process that ingested, and by a second process whose keyword index was derived from Chroma.
   The same embedder object (vectors cached by text) serves all three, queries interleaved.
2. propagation: a document added (then removed) by an ingest in process A, polled every 50 ms
   by a search in process B (``RAG_CHROMA__SYNC_S``, default 2 s): seconds from the end of the
   ingest until B's results change.
3. keyword-index rebuild from Chroma at 10k and 100k chunks (SQuAD paragraph texts with a
   random 8-20-word prefix; 16-dim random vectors, which Chroma stores but the rebuild never
   reads): reading the pages, then the whole ``KeywordSync.refresh`` (read + BM25 + publish).
4. two ingests at once into one collection (two threads, two data folders, two different
   halves of the 9 articles), with the server-side lock and with the lock disabled.

    python bench/replicas.py [--queries 300] [--sizes 10000 100000] [--skip-rebuild]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from backends import stop, wait_http
from common import (
    DEV_ARTICLES,
    MODELS_DIR,
    Timer,
    article_file_name,
    summary,
    table,
    write_corpus,
    write_json,
)
from load_driver import free_port
from retrieval import base_paragraphs


class CachingEmbedder:
    """The real embedder, each document text embedded once across the runs."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.cache: dict[str, list[float]] = {}

    @property
    def model_name(self) -> str:
        return str(self.inner.model_name)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        todo = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if todo:
            self.cache.update(zip(todo, self.inner.embed_documents(todo), strict=True))
        return [self.cache[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return list(self.inner.embed_query(text))


def settings(tmp: Path, name: str, url: str | None, corpus: Path, **chroma: Any) -> Any:
    from rag.settings import ChromaSettings, Settings

    return Settings(
        corpus_dir=corpus,
        data_dir=tmp / name,
        models_dir=MODELS_DIR,
        chroma_url=url,
        chroma=ChromaSettings(**chroma),
    )


def ms(values: list[float]) -> dict[str, float]:
    return {k: v * 1000 for k, v in summary(values).items() if k != "n"}


def bench_recall(tmp: Path, url: str, emb: Any, n_queries: int) -> dict[str, Any]:
    from rag.ingest import ingest
    from rag.retrieval import HybridRetriever

    corpus = tmp / "squad9"
    write_corpus(corpus, DEV_ARTICLES)
    dev = {article_file_name(t) for t in DEV_ARTICLES}
    paras, questions = base_paragraphs()
    mine = [q for q in questions if paras[q["base"]]["source"] in dev]
    qs = random.Random(0).sample(mine, min(n_queries, len(mine)))
    embedded = settings(tmp, "embedded", None, corpus)
    a = settings(tmp, "server-a", url, corpus)
    b = settings(tmp, "server-b", url, corpus)
    with Timer() as t_e:
        rep = ingest(embedded, embedder=emb)
    with Timer() as t_s:
        ingest(a, embedder=emb)
    rets = {
        "embedded (default)": HybridRetriever(settings=embedded, embedder=emb),
        "server, ingesting process": HybridRetriever(settings=a, embedder=emb),
        "server, other process (index from Chroma)": HybridRetriever(settings=b, embedder=emb),
    }
    with Timer() as t_b:
        rets["server, other process (index from Chroma)"].index()
    for r in rets.values():
        r.search("warm up", k=5)
    times: dict[str, list[float]] = {k: [] for k in rets}
    hits = dict.fromkeys(rets, 0)
    same = 0
    for q in qs:
        gold = paras[q["base"]]
        got = {}
        for name, r in rets.items():
            t0 = time.perf_counter()
            top = r.search(q["question"], k=5)
            times[name].append(time.perf_counter() - t0)
            got[name] = [(p.source, p.paragraph) for p in top]
            hits[name] += (gold["source"], gold["paragraph"]) in got[name]
        same += len({tuple(v) for v in got.values()}) == 1
    return {
        "paragraphs": rep.paragraphs,
        "chunks": rep.chunks,
        "queries": len(qs),
        "ingest_s": {"embedded (embeds)": t_e.seconds, "server (vectors cached)": t_s.seconds},
        "other_process_first_build_s": t_b.seconds,
        "recall_at_5": {k: v / len(qs) for k, v in hits.items()},
        "same_top5_all_three": same / len(qs),
        "search_ms": {k: ms(v) for k, v in times.items()},
        "_settings": (a, b),
    }


def bench_propagation(a: Any, b: Any, emb: Any, rounds: int) -> dict[str, Any]:
    from rag.ingest import ingest
    from rag.retrieval import HybridRetriever

    rb = HybridRetriever(settings=b, embedder=emb)
    rb.index()  # its sync thread runs from here on
    doc = a.corpus_dir / "zz-quokka.md"
    query = "quokka festival Perth Kimberley"

    def seen() -> bool:
        return any(p.source == doc.name for p in rb.search(query, k=3))

    out: dict[str, list[float]] = {"add": [], "remove": [], "ingest_s": []}
    for i in range(rounds):
        for kind in ("add", "remove"):
            if kind == "add":
                doc.write_text(f"The quokka festival {i} is held in Perth, Kimberley.\n")
            else:
                doc.unlink()
            with Timer() as t_ing:
                ingest(a, embedder=emb)
            t0 = time.perf_counter()
            while seen() != (kind == "add"):
                if time.perf_counter() - t0 > 120:
                    raise SystemExit("the change did not reach the other process in 120 s")
                time.sleep(0.05)
            out[kind].append(time.perf_counter() - t0)
            out["ingest_s"].append(t_ing.seconds)
            time.sleep(random.Random(i).uniform(0, 2))  # any phase of the other's timer
    return {k: summary(v) for k, v in out.items()}


def bench_rebuild(tmp: Path, url: str, size: int) -> dict[str, Any]:
    from rag.replicas import KeywordSync
    from rag.store import ChromaStore
    from rag.types import Chunk

    paras, _ = base_paragraphs()
    words = [p["text"].split() for p in paras]
    rng = random.Random(size)
    nrng = np.random.default_rng(size)
    writer = settings(tmp, f"rebuild-w{size}", url, tmp, collection=f"synthetic-{size}")
    store = ChromaStore(settings=writer, embedding_model="synthetic")
    store.collection(create=True)
    ids: list[str] = []
    t0 = time.perf_counter()
    for start in range(0, size, 5000):
        chunks = []
        for j in range(start, min(size, start + 5000)):
            p = paras[j % len(paras)]
            w = words[rng.randrange(len(words))]
            m = rng.randint(8, 20)
            k = rng.randrange(max(1, len(w) - m))
            text = " ".join(w[k : k + m]) + " " + p["text"]
            src = p["source"].removesuffix(".md") + f"-v{j // len(paras)}.md"
            chunks.append(
                Chunk(f"c{j:07d}", f"p{j:07d}", src, p["paragraph"], "", text, 0, 1, text, 0, 0)
            )
        vecs = nrng.normal(size=(len(chunks), 16)).astype(np.float32)
        store.add(chunks, vecs.tolist())
        ids += [c.id for c in chunks]
    store.set_fingerprint(ids)
    insert_s = time.perf_counter() - t0
    reader = settings(tmp, f"rebuild-r{size}", url, tmp, collection=f"synthetic-{size}")
    sync = KeywordSync(reader, ChromaStore(settings=reader, embedding_model="synthetic"))
    col = sync.store.collection()
    with Timer() as t_read:
        for off in range(0, size, 5000):
            col.get(include=["documents", "metadatas"], limit=5000, offset=off)
    with Timer() as t_all:
        assert sync.refresh()
    with Timer() as t_check:
        assert sync.refresh()  # nothing changed: the per-check cost
    return {
        "chunks": size,
        "insert_s": insert_s,
        "read_pages_s": t_read.seconds,
        "rebuild_s": t_all.seconds,
        "check_unchanged_ms": t_check.seconds * 1000,
    }


def bench_concurrent(tmp: Path, url: str, emb: Any, locked: bool) -> dict[str, Any]:
    from rag.ingest import ingest
    from rag.store import ChromaStore, ids_digest

    module = sys.modules["rag.ingest"]  # ``rag.ingest`` the attribute is the function

    halves = [DEV_ARTICLES[:4], DEV_ARTICLES[4:]]
    tag = "locked" if locked else "unlocked"
    runs = []
    for n, half in enumerate(halves):
        corpus = tmp / f"half{n}"
        if not corpus.exists():
            write_corpus(corpus, half)
        runs.append(settings(tmp, f"conc-{tag}-{n}", url, corpus, collection=f"conc-{tag}"))
    saved = module.index_lock
    if not locked:

        class NoLock:
            lock_file = "none"

            def acquire(self, timeout: float = -1) -> None: ...

            def release(self) -> None: ...

        module.index_lock = lambda s: NoLock()  # type: ignore[assignment,return-value]
    took: dict[int, float] = {}
    errors: list[str] = []

    def run(i: int) -> None:
        t0 = time.perf_counter()
        try:
            ingest(runs[i], embedder=emb)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        took[i] = time.perf_counter() - t0

    try:
        threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        module.index_lock = saved
    store = ChromaStore(settings=runs[0], embedding_model=emb.model_name)
    held = store.existing()
    col = store.collection()
    sources = {str(m["source"]) for m in held.values()}
    one_corpus = any(sources == {f.name for f in r.corpus_dir.iterdir()} for r in runs)
    return {
        "lock": locked,
        "seconds": [took[0], took[1]],
        "errors": errors,
        "chunks_in_chroma": len(held),
        "holds_exactly_one_corpus": one_corpus,
        "fingerprint_matches_ids": (col.metadata or {}).get("fingerprint") == ids_digest(held),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sizes", type=int, nargs="*", default=[10000, 100000])
    ap.add_argument("--skip-rebuild", action="store_true")
    args = ap.parse_args()
    from rag.embedding import get_embedder
    from rag.settings import Settings

    with tempfile.TemporaryDirectory(prefix="bench-replicas-") as name:
        tmp = Path(name)
        port = free_port()
        chroma = Path(sys.executable).parent / "chroma"
        cmd = [str(chroma), "run", "--path", str(tmp / "server"), "--port", str(port)]
        proc = subprocess.Popen(
            [*cmd, "--host", "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_http(f"{url}/api/v2/heartbeat", proc, 60)
            emb = CachingEmbedder(get_embedder(Settings(models_dir=MODELS_DIR)))
            rec = bench_recall(tmp, url, emb, args.queries)
            a, b = rec.pop("_settings")
            print(
                f"recall@5 and search ms ({rec['queries']} questions, {rec['paragraphs']} "
                "paragraphs)"
            )
            print(
                table(
                    [
                        (
                            k,
                            rec["recall_at_5"][k],
                            rec["search_ms"][k]["p50"],
                            rec["search_ms"][k]["p95"],
                        )
                        for k in rec["recall_at_5"]
                    ],
                    ["index", "recall@5", "search p50 ms", "p95 ms"],
                )
            )
            print(f"same top 5 in all three: {rec['same_top5_all_three']:.3f}")
            prop = bench_propagation(a, b, emb, args.rounds)
            print(
                "propagation (s after the ingest ended):",
                {k: round(v["p50"], 2) for k, v in prop.items()},
                "max",
                {k: round(v["max"], 2) for k, v in prop.items()},
            )
            conc = [bench_concurrent(tmp, url, emb, lock) for lock in (True, False)]
            for c in conc:
                print("two ingests at once:", c)
            rebuild = [] if args.skip_rebuild else [bench_rebuild(tmp, url, n) for n in args.sizes]
            for r in rebuild:
                print("rebuild:", {k: round(v, 3) for k, v in r.items()})
            path = write_json(
                "replicas",
                {"recall": rec, "propagation": prop, "concurrent": conc, "rebuild": rebuild},
            )
            print(f"wrote {path}")
        finally:
            stop(proc)


if __name__ == "__main__":
    main()
