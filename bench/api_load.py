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
    .venv/bin/python bench/api_load.py --clients 8 --rounds 2 --interrupt 3   # interrupted
    .venv/bin/python bench/api_load.py --soak-minutes 30 --soak-interval 25  # soak

With ``--interrupt N`` every Nth client (from client 1) is interrupted instead of waiting
for its answer, alternating two ways: a streaming client that closes the connection at the
first line it receives ``--interrupt-after`` seconds (default 2) or more after its request,
a progress comment while its answer is being made (``disconnect``), and a ``/v1/answer``
client whose own deadline (``--interrupt-after``) passes before the answer (``deadline``).
Their records count as interrupted, not as errors; the other clients' answers must still be
correct, and the server must still be up at the end. With ``--interrupt``, a 504 (the
server's own deadline, ``RAG_API__REQUEST_TIMEOUT_S``, passed; its job is cancelled) counts as
interrupted too.

``--soak-minutes M`` replaces the waves: one question at a time, one every
``--soak-interval`` seconds (REST and streaming in turn, the seed questions in turn), with the
server's RSS sampled every ``--rss-every`` seconds (default 60); the report says whether the
RSS stayed within 10 % of its first sample (bench/out/api_soak.json).

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
SOAK_OUT = driver.ROOT / "bench" / "out" / "api_soak.json"
SERVER_LOG = driver.ROOT / "bench" / "out" / "api_server.log"

# (question, expected substring of the answer, or None: the right answer is an abstention)
SEEDS: list[tuple[str, str | None]] = [
    ("Which institution is Dr. Tenzin Wangchuk affiliated with?", "Kathmandu Policy Forum"),
    ("In what year did Bhutan gain its independence?", "1949"),
    ("Which organization is Dr. Ahmed Al-Thani an analyst at?", "Brookings Doha Center"),
    ("What is the population of Bhutan?", None),
]


def _machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / (1 << 30), 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _write_report(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")


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


def interrupt_stream(
    url: str, token: str, question: str, timeout: float, after_s: float = 0.0
) -> dict[str, Any]:
    """Open a streamed chat completion and close the connection at the first line that arrives
    ``after_s`` seconds or more after the request (a progress comment while the answer is
    being made, or the role chunk with ``after_s`` 0): a client that goes away mid-stream."""
    body = {
        "model": "groundedchat",
        "messages": [{"role": "user", "content": question}],
        "stream": True,
    }
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    t0 = time.monotonic()
    with httpx.stream(
        "POST", f"{url}/v1/chat/completions", json=body, headers=headers, timeout=timeout
    ) as r:
        if r.status_code != 200:
            r.read()
            return {"status": r.status_code, "error": r.text[:300]}
        for line in r.iter_lines():
            if line.strip() and time.monotonic() - t0 >= after_s:
                # leaving the block closes the connection
                return {"status": "disconnected", "last_line": line[:120]}
    return {"status": 200, "error": None}


def interrupt_deadline(
    url: str, headers: dict[str, str], question: str, after_s: float
) -> dict[str, Any]:
    """A ``/v1/answer`` request whose client gives up after ``after_s`` seconds."""
    try:
        r = httpx.post(
            f"{url}/v1/answer", json={"question": question}, headers=headers, timeout=after_s
        )
    except httpx.TimeoutException:
        return {"status": "deadline"}
    return {"status": r.status_code, "error": None if r.status_code == 200 else r.text[:300]}


def one_client(
    url: str,
    token: str,
    i: int,
    rnd: int,
    barrier: threading.Barrier,
    results: list[dict[str, Any]],
    retries: int,
    timeout: float,
    interrupt: int = 0,
    interrupt_after: float = 2.0,
) -> None:
    q = (i + rnd) % len(SEEDS)
    question = SEEDS[q][0]
    kind = "rest" if i % 2 == 0 else "openai-stream"
    if interrupt and i % interrupt == 1 % interrupt:
        kind = "disconnect" if (i // interrupt + rnd) % 2 == 0 else "deadline"
    rec: dict[str, Any] = {"client": i, "round": rnd + 1, "kind": kind, "question": question}
    rec["throttled"] = 0
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        barrier.wait(timeout=120)
        t0 = time.perf_counter()
        if kind in ("disconnect", "deadline"):
            if kind == "disconnect":
                out = interrupt_stream(url, token, question, timeout, interrupt_after)
            else:
                out = interrupt_deadline(url, headers, question, interrupt_after)
            rec["latency_s"] = round(time.perf_counter() - t0, 3)
            rec["status"] = out["status"]
            rec["last_line"] = out.get("last_line")
            rec["interrupted"] = out["status"] in ("disconnected", "deadline")
            # an interrupted request has no answer to judge; one that finished anyway is fine
            rec["correct"], rec["cross_talk"] = False, False
            rec["error"] = None if rec["interrupted"] or out["status"] == 200 else out["error"]
            results.append(rec)
            return
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
        if interrupt and out["status"] == 504:
            # the server's own deadline (RAG_API__REQUEST_TIMEOUT_S) passed: interrupted too
            rec["interrupted"], rec["correct"], rec["cross_talk"] = True, False, False
            rec["error"] = None
        elif out["status"] == 200:
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
    ap.add_argument("--out", type=Path, help=f"JSON report (default {OUT}, or {SOAK_OUT})")
    ap.add_argument("--interrupt", type=int, default=0, help="interrupt every Nth client")
    ap.add_argument(
        "--interrupt-after", type=float, default=2.0, help="interrupted clients leave after, s"
    )
    ap.add_argument("--soak-minutes", type=float, default=0, help="soak instead of waves")
    ap.add_argument("--soak-interval", type=float, default=25, help="soak: s between questions")
    ap.add_argument("--rss-every", type=float, default=60, help="soak: s between RSS samples")
    args = ap.parse_args(argv)
    args.out = args.out or (SOAK_OUT if args.soak_minutes else OUT)

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
        if args.soak_minutes:
            return soak(args, url, pid, proc, headers, started, load_start, rss_start, rss_warm)

        results: list[dict[str, Any]] = []
        rss_rounds: list[float | None] = []
        t0 = time.perf_counter()
        with driver.server_peak(pid) as peak:
            for rnd in range(args.rounds):

                def client(
                    i: int, barrier: threading.Barrier, out: list[Any], rnd: int = rnd
                ) -> None:
                    one_client(
                        url,
                        args.token,
                        i,
                        rnd,
                        barrier,
                        out,
                        args.retries,
                        args.timeout,
                        args.interrupt,
                        args.interrupt_after,
                    )

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
        alive_after = _alive(url, headers)
    finally:
        driver.stop_server(proc, 30)
    load_end = os.getloadavg()

    results.sort(key=lambda r: (r["round"], r["client"]))
    ok = [r for r in results if not r["error"] and not r.get("interrupted")]
    ok = [r for r in ok if r["kind"] in ("rest", "openai-stream")]
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
        "answered": len(ok),
        "interrupted": {
            kind: sum(1 for r in results if r["kind"] == kind and r.get("interrupted"))
            for kind in ("disconnect", "deadline")
        }
        | {
            "server_deadline_504": sum(
                1 for r in results if r.get("interrupted") and r["status"] == 504
            )
        },
        "cross_talk": sum(1 for r in results if r["cross_talk"]),
        "server_exit_code": server_exit,
        "server_up_after": alive_after,
        "rss_mb": {"start": rss_start, "warm": rss_warm, "peak": peak_mb, "after_each": rss_rounds},
        "loadavg": {
            "start": [round(x, 2) for x in load_start],
            "end": [round(x, 2) for x in load_end],
        },
        "machine": _machine(),
        "results": results,
    }
    _write_report(args.out, report)

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
        f"429s {report['responses_429']}, correct {report['correct']}/{len(ok)} answered "
        f"({n} requests, interrupted {report['interrupted']}), "
        f"cross-talk {report['cross_talk']}, server up after: {alive_after}, wall {wall:.1f} s"
    )
    print(f"latency p50 {ls['p50']} s, p95 {ls['p95']} s, max {ls['max']} s")
    print(
        f"server RSS MiB: start {rs['start']}, warm {rs['warm']}, peak {rs['peak']}, "
        f"after each round {rs['after_each']}"
    )
    print(f"load average: start {report['loadavg']['start']}, end {report['loadavg']['end']}")
    print(f"wrote {args.out}")
    return 0 if report["errors"] == 0 and report["cross_talk"] == 0 and alive_after else 1


def _alive(url: str, headers: dict[str, str]) -> bool:
    try:
        return httpx.get(f"{url}/healthz", headers=headers, timeout=10).status_code == 200
    except httpx.TransportError:
        return False


def soak(
    args: argparse.Namespace,
    url: str,
    pid: int | None,
    proc: Any,
    headers: dict[str, str],
    started: str,
    load_start: tuple[float, float, float],
    rss_start: float | None,
    rss_warm: float | None,
) -> int:
    """One question every ``args.soak_interval`` s for ``args.soak_minutes``, RSS sampled."""
    t0 = time.monotonic()
    end = t0 + args.soak_minutes * 60
    samples: list[tuple[float, float | None]] = [(0.0, driver.rss_mb(pid))]
    next_rss = t0 + args.rss_every
    results: list[dict[str, Any]] = []
    n = 0
    while time.monotonic() < end:
        q = n % len(SEEDS)
        kind = "rest" if n % 2 == 0 else "openai-stream"
        t = time.monotonic()
        try:
            if kind == "rest":
                out = ask_rest(url, headers, SEEDS[q][0], args.timeout)
            else:
                out = ask_openai_stream(url, args.token or "none", SEEDS[q][0], args.timeout)
        except Exception as exc:  # noqa: BLE001 - counted and reported
            out = {"status": None, "error": f"{type(exc).__name__}: {exc}"[:300]}
        rec: dict[str, Any] = {
            "n": n,
            "at_s": round(t - t0, 1),
            "kind": kind,
            "latency_s": round(time.monotonic() - t, 2),
            "status": out["status"],
        }
        if out["status"] == 200:
            rec["correct"], rec["cross_talk"] = judge(out["answer"], out["abstained"], q)
            rec["error"] = None
        else:
            rec["correct"], rec["cross_talk"] = False, False
            rec["error"] = out.get("error") or f"HTTP {out['status']}"
        results.append(rec)
        print(
            f"{rec['at_s']:>7.0f} s #{n} {kind:<13} {rec['latency_s']:>5.1f} s "
            f"{'ok' if rec['correct'] else 'WRONG ' + str(rec['error'] or '')[:80]}",
            flush=True,
        )
        n += 1
        while True:  # sample RSS on schedule while waiting for the next question
            now = time.monotonic()
            if now >= next_rss:
                samples.append((round(now - t0, 1), driver.rss_mb(pid)))
                print(f"{now - t0:>7.0f} s server RSS {samples[-1][1]} MiB", flush=True)
                next_rss += args.rss_every
            wait = min(t + args.soak_interval, next_rss, end) - now
            if wait <= 0 or now >= end:
                break
            time.sleep(wait)
            if time.monotonic() >= t + args.soak_interval:
                break
    samples.append((round(time.monotonic() - t0, 1), driver.rss_mb(pid)))
    server_exit = None if proc is None else proc.poll()
    alive = _alive(url, headers)
    driver.stop_server(proc, 30)
    rss = [v for _, v in samples if v is not None]
    first = rss[0] if rss else None
    spread = round(100 * max(abs(v - first) for v in rss) / first, 1) if rss and first else None
    lat = [r["latency_s"] for r in results if not r["error"]]
    report = {
        "command": "python bench/api_load.py " + " ".join(sys.argv[1:]),
        "date": started,
        "minutes": args.soak_minutes,
        "interval_s": args.soak_interval,
        "requests": len(results),
        "errors": sum(1 for r in results if r["error"]),
        "correct": sum(1 for r in results if r["correct"]),
        "cross_talk": sum(1 for r in results if r["cross_talk"]),
        "latency_s": driver.latency_summary(lat),
        "server_exit_code": server_exit,
        "server_up_after": alive,
        "rss_mb": {"start": rss_start, "warm": rss_warm, "samples": samples},
        "rss_max_deviation_pct": spread,
        "rss_flat_within_10pct": spread is not None and spread <= 10,
        "loadavg": {
            "start": [round(x, 2) for x in load_start],
            "end": [round(x, 2) for x in os.getloadavg()],
        },
        "machine": _machine(),
        "results": results,
    }
    _write_report(args.out, report)
    print(
        f"soak {args.soak_minutes} min: {len(results)} requests, errors {report['errors']}, "
        f"correct {report['correct']}, cross-talk {report['cross_talk']}, server up: {alive}; "
        f"RSS MiB first {first}, min {min(rss) if rss else None}, max {max(rss) if rss else None}, "
        f"max deviation {spread} % (flat within 10 %: {report['rss_flat_within_10pct']})"
    )
    print(f"wrote {args.out}")
    return 0 if report["errors"] == 0 and alive and report["rss_flat_within_10pct"] else 1


if __name__ == "__main__":
    sys.exit(main())
