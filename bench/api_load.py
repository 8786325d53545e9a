"""Load benchmark for the HTTP API (not a test): N concurrent clients x R requests each.

By default it starts `rag serve` itself (a free port, the project's ./corpus and index, the
real chain: hybrid retrieval + the local LLM), sends one warm-up question, then starts N
client threads at once. Even-numbered clients call ``POST /v1/answer`` with httpx; odd ones
call ``/v1/chat/completions`` with ``stream=True`` through the official ``openai`` client.
Client i asks seed question (i + round) in round ``round``, so neighbours ask different
questions at the same moment.

Per request it records latency, the HTTP status, and whether the answer matches *its own*
question: it names that question's expected answer (or abstains for the unanswerable one)
and names no other seed question's expected answer (cross-talk). A 429 is counted apart from
errors, and the client retries after ``Retry-After`` (``--retries``, default 3). Server memory
(RSS of the server process and its children, via psutil) is read at start, after warm-up,
at its peak (sampled every 0.5 s) and after each round; the load average at start and end.

    .venv/bin/python bench/api_load.py                          # 20 clients x 2 requests
    RAG_API__CONCURRENCY=2 RAG_API__QUEUE_SIZE=4 .venv/bin/python bench/api_load.py  # 429s
    .venv/bin/python bench/api_load.py --url http://127.0.0.1:7861 --pid 1234 --token T

Writes bench/out/api_load.json (and bench/out/api_server.log when it started the server).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import load_driver as driver
import psutil

OUT = driver.ROOT / "bench" / "out" / "api_load.json"
SERVER_LOG = driver.ROOT / "bench" / "out" / "api_server.log"

# (question, expected substring of the answer, or None: the right answer is an abstention)
SEEDS: list[tuple[str, str | None]] = [
    ("Which institution is Dr. Tenzin Wangchuk affiliated with?", "Kathmandu Policy Forum"),
    ("In what year did Bhutan gain its independence?", "1949"),
    ("Which organization is Dr. Ahmed Al-Thani an analyst at?", "Brookings Doha Center"),
    ("What is the population of Bhutan?", None),
]


def judge(answer: str, abstained: bool, q: int) -> tuple[bool, bool]:
    """(correct, cross_talk) of one answer to seed question ``q``."""
    expected = SEEDS[q][1]
    others = [e for i, (_, e) in enumerate(SEEDS) if i != q and e]
    cross = any(e.lower() in answer.lower() for e in others)
    if expected is None:
        return abstained and not cross, cross
    return (not abstained) and expected.lower() in answer.lower() and not cross, cross


def ask_rest(url: str, headers: dict[str, str], question: str, timeout: float) -> dict[str, Any]:
    r = httpx.post(
        f"{url}/v1/answer", json={"question": question}, headers=headers, timeout=timeout
    )
    out: dict[str, Any] = {"status": r.status_code, "retry_after": r.headers.get("retry-after")}
    if r.status_code == 200:
        body = r.json()
        out.update(answer=body["answer"], abstained=body["abstained"])
        # the server says which question it answered: a mix-up would show here too
        out["echo_ok"] = body["standalone_question"] == question
    else:
        out["error"] = r.text[:300]
    return out


def ask_openai_stream(url: str, token: str, question: str, timeout: float) -> dict[str, Any]:
    import openai

    client = openai.OpenAI(base_url=f"{url}/v1", api_key=token, max_retries=0, timeout=timeout)
    try:
        stream = client.chat.completions.create(
            model="groundedchat", messages=[{"role": "user", "content": question}], stream=True
        )
        parts: list[str] = []
        abstained = None
        for chunk in stream:
            if chunk.choices:
                parts.append(chunk.choices[0].delta.content or "")
            abstained = (chunk.model_extra or {}).get("abstained", abstained)
        return {"status": 200, "answer": "".join(parts), "abstained": bool(abstained)}
    except openai.RateLimitError as exc:
        return {"status": 429, "retry_after": exc.response.headers.get("retry-after")}
    except openai.APIStatusError as exc:
        return {"status": exc.status_code, "error": str(exc)[:300]}


def one_client(
    url: str,
    token: str,
    i: int,
    rnd: int,
    barrier: threading.Barrier,
    results: list[dict[str, Any]],
    retries: int,
    timeout: float,
) -> None:
    q = (i + rnd) % len(SEEDS)
    question = SEEDS[q][0]
    kind = "rest" if i % 2 == 0 else "openai-stream"
    rec: dict[str, Any] = {"client": i, "round": rnd + 1, "kind": kind, "question": question}
    rec["throttled"] = 0
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        barrier.wait(timeout=120)
        t0 = time.perf_counter()
        for _ in range(retries + 1):
            if kind == "rest":
                out = ask_rest(url, headers, question, timeout)
            else:
                out = ask_openai_stream(url, token or "none", question, timeout)
            if out["status"] != 429:
                break
            rec["throttled"] += 1
            time.sleep(float(out.get("retry_after") or 5))
        rec["latency_s"] = round(time.perf_counter() - t0, 3)
        rec["status"] = out["status"]
        if out["status"] == 200:
            rec["answer"] = out["answer"]
            rec["abstained"] = out["abstained"]
            rec["correct"], rec["cross_talk"] = judge(out["answer"], out["abstained"], q)
            if out.get("echo_ok") is False:
                rec["cross_talk"] = True
            rec["error"] = None
        else:
            rec["correct"], rec["cross_talk"] = False, False
            rec["error"] = f"HTTP {out['status']}: {out.get('error', '')}"
    except Exception as exc:  # noqa: BLE001 - counted and reported
        rec.setdefault("latency_s", None)
        rec["correct"], rec["cross_talk"] = False, False
        rec["error"] = f"{type(exc).__name__}: {exc}"[:300]
    results.append(rec)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=20, help="concurrent clients (default 20)")
    ap.add_argument("--rounds", type=int, default=2, help="requests per client (default 2)")
    ap.add_argument("--url", help="a running server (default: start `rag serve` here)")
    ap.add_argument("--pid", type=int, help="with --url: the server's pid, for its memory")
    ap.add_argument("--token", default=os.environ.get("RAG_API__TOKEN", ""), help="bearer token")
    ap.add_argument("--retries", type=int, default=3, help="retries after a 429 (default 3)")
    ap.add_argument("--timeout", type=float, default=900, help="per-request limit, seconds")
    ap.add_argument("--out", type=Path, default=OUT, help=f"JSON report (default {OUT})")
    args = ap.parse_args(argv)

    load_start = os.getloadavg()
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    proc = None
    pid = args.pid
    if args.url:
        url = args.url.rstrip("/")
    else:
        port = driver.free_port()
        t = time.perf_counter()
        proc, _ = driver.start_server(
            ["serve", "--port", str(port)], SERVER_LOG, r"API running on", 900, {}
        )
        pid = proc.pid
        url = f"http://127.0.0.1:{port}"
        print(f"started `rag serve` (pid {pid}) at {url} in {time.perf_counter() - t:.1f} s")
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/healthz", headers=headers, timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} is not answering")
            time.sleep(0.3)
        rss_start = driver.rss_mb(pid)
        t = time.perf_counter()
        warm = ask_rest(url, headers, SEEDS[0][0], args.timeout)
        warmup_s = round(time.perf_counter() - t, 2)
        if warm["status"] != 200:
            raise SystemExit(f"warm-up failed: {warm}")
        print(f"warm-up answer (loads the models): {warmup_s:.1f} s")
        rss_warm = driver.rss_mb(pid)
        status = httpx.get(f"{url}/v1/status", headers=headers, timeout=30).json()

        results: list[dict[str, Any]] = []
        rss_rounds: list[float | None] = []
        t0 = time.perf_counter()
        with driver.server_peak(pid) as peak:
            for rnd in range(args.rounds):

                def client(
                    i: int, barrier: threading.Barrier, out: list[Any], rnd: int = rnd
                ) -> None:
                    one_client(url, args.token, i, rnd, barrier, out, args.retries, args.timeout)

                mine = driver.run_wave(args.clients, client)
                results.extend(mine)
                rss_rounds.append(driver.rss_mb(pid))
                print(
                    f"round {rnd + 1}/{args.rounds}: {sum(r['correct'] for r in mine)}/"
                    f"{len(mine)} correct, {sum(1 for r in mine if r['error'])} errors, "
                    f"{sum(r['throttled'] for r in mine)} x 429, server RSS {rss_rounds[-1]} MiB, "
                    f"{time.perf_counter() - t0:.0f} s"
                )
        peak_mb = round(peak.peak / driver.MIB, 1) if pid else 0.0
        wall = time.perf_counter() - t0
        server_exit = None if proc is None else proc.poll()
    finally:
        driver.stop_server(proc, 30)
    load_end = os.getloadavg()

    results.sort(key=lambda r: (r["round"], r["client"]))
    ok = [r for r in results if not r["error"]]
    lat = [r["latency_s"] for r in ok]
    n = len(results)
    report = {
        "command": "python bench/api_load.py " + " ".join(argv or sys.argv[1:]),
        "date": started,
        "clients": args.clients,
        "rounds": args.rounds,
        "requests": n,
        "url": url,
        "server_settings": {
            k: v for k, v in os.environ.items() if k.startswith("RAG_") and "TOKEN" not in k
        },
        "queue": status.get("queue"),
        "wall_s": round(wall, 2),
        "warmup_s": warmup_s,
        "latency_s": driver.latency_summary(lat),
        "by_kind_p50_s": {
            kind: driver.latency_summary([r["latency_s"] for r in ok if r["kind"] == kind])["p50"]
            for kind in ("rest", "openai-stream")
        },
        "errors": sum(1 for r in results if r["error"]),
        "responses_429": sum(r["throttled"] for r in results),
        "correct": sum(1 for r in results if r["correct"]),
        "cross_talk": sum(1 for r in results if r["cross_talk"]),
        "server_exit_code": server_exit,
        "rss_mb": {"start": rss_start, "warm": rss_warm, "peak": peak_mb, "after_each": rss_rounds},
        "loadavg": {
            "start": [round(x, 2) for x in load_start],
            "end": [round(x, 2) for x in load_end],
        },
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / (1 << 30), 1),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")

    print()
    print(f"{'rnd':>3} {'#':>3} {'kind':<13} {'s':>6} {'429':>3} {'ok':>3}  question -> answer")
    for r in results:
        lat_s = f"{r['latency_s']:.1f}" if r.get("latency_s") is not None else "-"
        shown = " ".join((r["error"] or r.get("answer") or "").split())
        print(
            f"{r['round']:>3} {r['client']:>3} {r['kind']:<13} {lat_s:>6} {r['throttled']:>3} "
            f"{'yes' if r['correct'] else 'NO':>3}  {r['question'][:40]} -> "
            f"{shown[:60]}"
        )
    print()
    ls, rs = report["latency_s"], report["rss_mb"]
    print(
        f"{args.clients} clients x {args.rounds}: errors {report['errors']}, "
        f"429s {report['responses_429']}, correct {report['correct']}/{n}, "
        f"cross-talk {report['cross_talk']}, wall {wall:.1f} s"
    )
    print(f"latency p50 {ls['p50']} s, p95 {ls['p95']} s, max {ls['max']} s")
    print(
        f"server RSS MiB: start {rs['start']}, warm {rs['warm']}, peak {rs['peak']}, "
        f"after each round {rs['after_each']}"
    )
    print(f"load average: start {report['loadavg']['start']}, end {report['loadavg']['end']}")
    print(f"wrote {args.out}")
    return 0 if report["errors"] == 0 and report["cross_talk"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
