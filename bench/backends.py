"""What the two servers cost: embedded Chroma vs a Chroma server (``RAG_CHROMA_URL``), and the
in-process llama.cpp model vs the same GGUF behind an OpenAI-compatible server
(``RAG_LLM__BACKEND=openai``, here ``python -m llama_cpp.server``).

Chroma: the 1,204 SQuAD-dev paragraphs (vectors cached by bench/retrieval.py, or embedded
once) are inserted into an embedded index and into a ``chroma run`` server; then the same
queries go through ``HybridRetriever.search`` against each, interleaved, and the bare
``store.query`` / ``store.count`` calls are timed too.

LLM: the answer chain over the seed corpus, in-process model vs server, interleaved per
question: TTFT, total, and the server's RSS.

    python bench/backends.py [--queries 50] [--llm-questions 3] [--skip-llm]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from common import MODELS_DIR, SEED_CORPUS, Timer, peak_rss_mb, summary, table, write_json
from load_driver import free_port

LLM_QUESTIONS = [
    "Which institution is Dr. Tenzin Wangchuk affiliated with?",
    "In what year did Bhutan gain its independence?",
    "Which organization is Dr. Ahmed Al-Thani an analyst at?",
    "Where was the Joint Communiqué between Bhutan and Qatar signed?",
]


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):  # peak RSS of that process
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def wait_http(url: str, proc: subprocess.Popen, timeout: float) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return time.perf_counter() - t0
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer in {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def bench_chroma(n_queries: int, tmp: Path) -> dict[str, Any]:
    from retrieval import base_paragraphs, base_vectors, insert

    from rag.retrieval import HybridRetriever
    from rag.settings import Settings

    paras, questions = base_paragraphs()
    vecs = base_vectors([p["text"] for p in paras])
    qs = random.Random(1).sample(questions, n_queries)
    port = free_port()
    chroma = Path(sys.executable).parent / "chroma"
    proc = subprocess.Popen(
        [
            str(chroma),
            "run",
            "--path",
            str(tmp / "server-db"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        startup = wait_http(f"http://127.0.0.1:{port}/api/v2/heartbeat", proc, 60)
        embedded = Settings(
            corpus_dir=tmp / "c",
            data_dir=tmp / "data-e",
            db_dir=tmp / "db-e",
            models_dir=MODELS_DIR,
        )
        server = Settings(
            corpus_dir=tmp / "c",
            data_dir=tmp / "data-s",
            db_dir=tmp / "db-s",
            models_dir=MODELS_DIR,
            chroma_url=f"http://127.0.0.1:{port}",
        )
        ins = {"embedded": insert(embedded, paras, vecs), "server": insert(server, paras, vecs)}
        rets = {
            "embedded": HybridRetriever(settings=embedded),
            "server": HybridRetriever(settings=server),
        }
        for r in rets.values():
            r.search("warm up", k=5)
        t: dict[str, dict[str, list[float]]] = {
            k: {"search": [], "query": [], "count": []} for k in rets
        }
        for q in qs:
            v = rets["embedded"].embedder.embed_query(q["question"])
            for name, r in rets.items():
                with Timer() as a:
                    r.search(q["question"], k=5)
                with Timer() as b:
                    r.store.query(v, 30)
                with Timer() as c:
                    r.store.count()
                t[name]["search"].append(a.seconds)
                t[name]["query"].append(b.seconds)
                t[name]["count"].append(c.seconds)
        return {
            "server_startup_s": startup,
            "server_peak_rss_mb": rss_mb(proc.pid),
            "insert_1204_s": ins,
            "ms": {
                n: {
                    k: {m: x * 1000 for m, x in summary(v).items() if m != "n"}
                    for k, v in d.items()
                }
                for n, d in t.items()
            },
        }
    finally:
        stop(proc)


def bench_llm(n_questions: int, tmp: Path, threads: int) -> dict[str, Any]:
    from rag.chain import AnswerChain
    from rag.ingest import ingest
    from rag.llm import llama_server_command, packaged_model_path
    from rag.settings import LLMSettings, Settings

    local = Settings(
        corpus_dir=SEED_CORPUS,
        data_dir=tmp / "d",
        db_dir=tmp / "seed-db",
        models_dir=MODELS_DIR,
        llm=LLMSettings(timeout_s=900, n_threads=threads),
    )
    ingest(local)
    port = free_port()
    proc = subprocess.Popen(
        llama_server_command(packaged_model_path(local), port, alias="qwen", threads=threads),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        startup = wait_http(f"http://127.0.0.1:{port}/v1/models", proc, 300)
        remote = local.model_copy(
            update={
                "llm": LLMSettings(
                    backend="openai",
                    base_url=f"http://127.0.0.1:{port}/v1",
                    model="qwen",
                    timeout_s=900,
                    n_threads=threads,
                )
            }
        )
        chains = {
            "in-process llama.cpp": AnswerChain(settings=local),
            "llama_cpp.server (openai backend)": AnswerChain(settings=remote),
        }
        with Timer() as load:
            _ = chains["in-process llama.cpp"].llm
        for c in chains.values():  # warm up: first prompt fills the prompt cache on both
            c.invoke(LLM_QUESTIONS[-1])
        res: dict[str, dict[str, list[float]]] = {k: {"ttft": [], "total": []} for k in chains}
        answers: dict[str, list[str]] = {k: [] for k in chains}
        for q in LLM_QUESTIONS[:n_questions]:
            for name, c in chains.items():
                t_start = time.perf_counter()
                first = None
                final = None
                for ev in c.stream(q):
                    if ev.kind == "draft" and first is None:
                        first = time.perf_counter() - t_start
                    if ev.kind == "final":
                        final = ev.answer
                res[name]["total"].append(time.perf_counter() - t_start)
                if first is not None:
                    res[name]["ttft"].append(first)
                answers[name].append(final.text if final else "")
        return {
            "server_startup_s": startup,
            "server_peak_rss_mb": rss_mb(proc.pid),
            "in_process_model_load_s": load.seconds,
            "s": {n: {k: summary(v) for k, v in d.items()} for n, d in res.items()},
            "same_answers": answers["in-process llama.cpp"]
            == answers["llama_cpp.server (openai backend)"],
            "answers": answers,
        }
    finally:
        stop(proc)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--llm-questions", type=int, default=3)
    ap.add_argument("--skip-llm", action="store_true")
    ap.add_argument(
        "--threads", type=int, default=2, help="llama.cpp threads, in-process and server"
    )
    args = ap.parse_args()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-backends-") as tmp:
        out["chroma"] = ch = bench_chroma(args.queries, Path(tmp))
        rows = []
        for name, d in ch["ms"].items():
            rows.append(
                (
                    name,
                    ch["insert_1204_s"][name],
                    d["search"]["p50"],
                    d["search"]["p95"],
                    d["query"]["p50"],
                    d["count"]["p50"],
                )
            )
        print(
            table(
                rows,
                [
                    "Chroma",
                    "insert 1,204 s",
                    "search p50 ms",
                    "search p95 ms",
                    "store.query p50 ms",
                    "store.count p50 ms",
                ],
            )
        )
        print(
            f"chroma server: startup {ch['server_startup_s']:.1f} s, "
            f"peak RSS {ch['server_peak_rss_mb']:.0f} MiB"
        )
        if not args.skip_llm:
            out["llm"] = llm = bench_llm(args.llm_questions, Path(tmp), args.threads)
            rows = [
                (n, d["ttft"]["p50"], d["total"]["p50"], d["total"]["max"])
                for n, d in llm["s"].items()
            ]
            print()
            print(table(rows, ["LLM", "TTFT p50 s", "total p50 s", "total max s"]))
            print(
                f"llama_cpp.server: startup {llm['server_startup_s']:.1f} s, "
                f"peak RSS {llm['server_peak_rss_mb']:.0f} MiB; "
                f"same answers: {llm['same_answers']}; llama.cpp threads {args.threads}"
            )
    out["client_peak_rss_mb"] = peak_rss_mb()
    print("wrote", write_json("backends", out))


if __name__ == "__main__":
    main()
