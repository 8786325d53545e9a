"""Load benchmark for the web UI (not a test): N concurrent gradio_client sessions.

Each session is its own ``gradio_client.Client`` (its own Gradio session and history) and asks
one seed question per wave through the UI's ``/ask`` endpoint, the same handler the browser
uses; neighbouring sessions ask different questions, so an answer that leaked from another
session is counted wrong. ``--rounds`` repeats the wave (each session moves on to the next
question). The script reports p50/p95/max latency, errors, correctness (the answer mentions
the expected string, or abstains for the unanswerable question), and the server's RSS at the
start, after warm-up, at its peak and after every wave (flat across waves = no leak).

By default it starts the real app itself (``python -m rag_cli ui`` on a free port, the real
chain: hybrid retrieval + the local LLM) so it can read the server's RSS; ``--url`` targets an
app that is already running instead (add ``--pid`` to get its RSS).

    .venv/bin/python bench/ui_load.py                  # 10 sessions
    .venv/bin/python bench/ui_load.py --sessions 20 --rounds 2   # the soak of issue 8
    .venv/bin/python bench/ui_load.py --url http://127.0.0.1:7860/ --pid 12345
    .venv/bin/python bench/ui_load.py --sessions 6 --rounds 2 --interrupt 3   # interrupted

With ``--interrupt N`` every Nth session (from session 1) gives up on its question instead of
waiting, alternating two ways: it cancels its job and closes its client as soon as the first
partial answer has streamed (``disconnect``), or after ``--interrupt-after`` seconds
(default 3) whatever it got (``deadline``); a cancel request that times out on a busy server
is recorded (``cancel_error``), the client closes all the same. Those count as interrupted,
not as errors; the other sessions' answers must still be correct and the app must still
answer afterwards.

Writes bench/out/ui_load.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import load_driver as driver

OUT = driver.ROOT / "bench" / "out" / "ui_load.json"
SERVER_LOG = driver.ROOT / "bench" / "out" / "ui_server.log"

# (question, expected substring in the answer, or None: the expected result is an abstention)
SEEDS: list[tuple[str, str | None]] = [
    ("Which institution is Dr. Tenzin Wangchuk affiliated with?", "Kathmandu Policy Forum"),
    ("In what year did Bhutan gain its independence?", "1949"),
    ("What is the population of Bhutan?", None),
]


def wait_ready(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "gradio_api/info", timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{url} is not answering")


def judge(summary: dict[str, Any] | None, expected: str | None) -> bool:
    if not summary:
        return False
    if expected is None:
        return bool(summary.get("abstained"))
    return (not summary.get("abstained")) and expected.lower() in summary.get("answer", "").lower()


def one_session(
    url: str,
    i: int,
    auth: tuple[str, str] | None,
    start: threading.Barrier,
    results: list[dict[str, Any]],
    alive: Any = None,
    timeout_s: float = 1800,
    q: int | None = None,
    interrupt: str | None = None,
    interrupt_after: float = 3.0,
) -> None:
    from gradio_client import Client

    question, expected = SEEDS[(i if q is None else q) % len(SEEDS)]
    rec: dict[str, Any] = {"session": i, "question": question, "expected": expected}
    rec["kind"] = interrupt or "answer"
    try:
        client = Client(url, auth=auth, verbose=False)
        start.wait(timeout=120)
        t0 = time.perf_counter()
        job = client.submit(question, api_name="/ask")
        if interrupt:
            while not job.done() and time.perf_counter() - t0 < timeout_s:
                if interrupt == "disconnect" and job.outputs():
                    break  # the first partial answer is here: go away mid-stream
                if interrupt == "deadline" and time.perf_counter() - t0 >= interrupt_after:
                    break
                time.sleep(0.05)
            rec["finished_first"] = job.done()
            rec["latency_s"] = round(time.perf_counter() - t0, 3)
            try:  # asks the server to drop the job (an HTTP call that may time out when busy)
                job.cancel()
            except Exception as exc:  # noqa: BLE001 - the client goes away all the same
                rec["cancel_error"] = f"{type(exc).__name__}: {exc}"[:200]
            client.close()
            rec["interrupted"], rec["correct"], rec["error"] = True, False, None
            results.append(rec)
            return
        while not job.done():
            if alive is not None and not alive():
                raise RuntimeError("the server process died")
            if time.perf_counter() - t0 > timeout_s:
                raise TimeoutError(f"no answer within {timeout_s:.0f} s")
            time.sleep(0.1)
        out = job.result()
        rec["latency_s"] = round(time.perf_counter() - t0, 3)
        summary = out[-1] if isinstance(out, (list, tuple)) else None
        if not isinstance(summary, dict):
            raise RuntimeError("no answer (the UI showed an error message)")
        rec["answer"] = summary.get("answer")
        rec["abstained"] = summary.get("abstained")
        rec["reason"] = summary.get("reason")
        rec["server_total_s"] = (summary.get("timings") or {}).get("total")
        rec["correct"] = judge(summary, expected)
        rec["error"] = None
    except Exception as exc:  # noqa: BLE001 - counted and reported
        rec.setdefault("latency_s", None)
        rec["correct"] = False
        rec["error"] = f"{type(exc).__name__}: {exc}"[:300]
    results.append(rec)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=10, help="concurrent sessions (default 10)")
    ap.add_argument("--url", help="an already running app (default: start `rag ui` here)")
    ap.add_argument("--pid", type=int, help="with --url: the server's pid, for RSS")
    ap.add_argument("--user", default="user", help="login user when the app has a password")
    ap.add_argument("--password", help="login password (or RAG_UI__PASSWORD)")
    ap.add_argument("--corpus", help="passed to `rag ui --corpus`")
    ap.add_argument("--db", help="passed to `rag ui --db`")
    ap.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="waves of concurrent questions (server RSS is read after each; default 1)",
    )
    ap.add_argument("--timeout", type=float, default=1800, help="per-session limit, seconds")
    ap.add_argument("--no-warmup", action="store_true", help="skip the warm-up question")
    ap.add_argument("--out", type=Path, default=OUT, help=f"JSON report (default {OUT})")
    ap.add_argument("--interrupt", type=int, default=0, help="interrupt every Nth session")
    ap.add_argument(
        "--interrupt-after", type=float, default=3.0, help="the deadline sessions' limit, s"
    )
    args = ap.parse_args(argv)

    password = args.password or os.environ.get("RAG_UI__PASSWORD")
    auth = (args.user, password) if password else None
    proc = None
    pid = args.pid
    if args.url:
        url = args.url if args.url.endswith("/") else args.url + "/"
    else:
        extra: list[str] = []
        if args.corpus:
            extra += ["--corpus", args.corpus]
        if args.db:
            extra += ["--db", args.db]
        t = time.perf_counter()
        proc, ready = driver.start_server(
            ["ui", "--port", str(driver.free_port()), *extra],
            SERVER_LOG,
            r"running on (http://\S+)",
            900,
            {"GRADIO_ANALYTICS_ENABLED": "False"},
        )
        url = ready.group(1)
        url = url if url.endswith("/") else url + "/"
        pid = proc.pid
        print(f"started `rag ui` (pid {pid}) at {url} in {time.perf_counter() - t:.1f} s")
    try:
        wait_ready(url)
        rss_start = driver.rss_mb(pid)
        warmup_s = None
        if not args.no_warmup:
            from gradio_client import Client

            t = time.perf_counter()
            Client(url, auth=auth, verbose=False).predict(SEEDS[0][0], api_name="/ask")
            warmup_s = round(time.perf_counter() - t, 2)
            print(f"warm-up answer (loads the models): {warmup_s:.1f} s")
        rss_before = driver.rss_mb(pid)

        def alive() -> bool:
            return proc is None or proc.poll() is None

        results: list[dict[str, Any]] = []
        rss_waves: list[float | None] = []
        t0 = time.perf_counter()
        with driver.server_peak(pid) as peak:
            for wave in range(args.rounds):

                def session(
                    i: int, barrier: threading.Barrier, out: list[Any], wave: int = wave
                ) -> None:
                    # session i asks question i + wave: each wave, each session a new question
                    how = None
                    if args.interrupt and i % args.interrupt == 1 % args.interrupt:
                        how = "disconnect" if (i // args.interrupt + wave) % 2 == 0 else "deadline"
                    one_session(
                        url,
                        i,
                        auth,
                        barrier,
                        out,
                        alive,
                        args.timeout,
                        i + wave,
                        how,
                        args.interrupt_after,
                    )

                mine = driver.run_wave(args.sessions, session)
                for r in mine:
                    r["wave"] = wave + 1
                results.extend(mine)
                rss_waves.append(driver.rss_mb(pid))
                print(
                    f"wave {wave + 1}/{args.rounds}: {sum(r['correct'] for r in mine)}/"
                    f"{len(mine)} correct, {sum(1 for r in mine if r['error'])} errors, "
                    f"server RSS {rss_waves[-1]} MiB, {time.perf_counter() - t0:.0f} s"
                )
        peak_mb = round(peak.peak / driver.MIB, 1) if pid else None
        wall = time.perf_counter() - t0
        rss_after = driver.rss_mb(pid)
        server_exit = None if proc is None else proc.poll()
        # the app still answers after the interrupted sessions
        after: list[dict[str, Any]] = []
        one_session(url, 0, auth, threading.Barrier(1), after, alive, args.timeout, 0)
        answers_after = bool(after and after[0]["correct"])
    finally:
        driver.stop_server(proc, 20)

    results.sort(key=lambda r: (r["wave"], r["session"]))
    answered = [r for r in results if not r.get("interrupted")]
    lat = [r["latency_s"] for r in answered if r.get("latency_s") is not None and not r["error"]]
    errors = sum(1 for r in results if r["error"])
    correct = sum(1 for r in results if r["correct"])
    n = len(answered)
    report = {
        "sessions": args.sessions,
        "rounds": args.rounds,
        "questions": n,
        "url": url,
        "wall_s": round(wall, 2),
        "warmup_s": warmup_s,
        "latency_s": driver.latency_summary(lat),
        "errors": errors,
        "correct": correct,
        "correct_rate": round(correct / n, 3) if n else None,
        "interrupted": {
            how: sum(1 for r in results if r.get("interrupted") and r["kind"] == how)
            for how in ("disconnect", "deadline")
        },
        "answers_after_interrupts": answers_after,
        "cancel_errors": sum(1 for r in results if r.get("cancel_error")),
        "throughput_answers_per_min": round(60 * len(lat) / wall, 2) if wall else None,
        "server_exit_code": server_exit,
        "rss_mb": {
            "start": rss_start,
            "before": rss_before,
            "peak": peak_mb or None,
            "after": rss_after,
            "after_each_wave": rss_waves,
        },
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")

    print()
    print(f"{'wave':>4} {'#':>3}  {'latency s':>9}  {'ok':>3}  question -> answer")
    for r in results:
        lat_s = f"{r['latency_s']:.1f}" if r.get("latency_s") is not None else "-"
        shown = r["error"] or (r.get("answer") or "")
        shown = f"(interrupted: {r['kind']})" if r.get("interrupted") else shown
        print(
            f"{r['wave']:>4} {r['session']:>3}  {lat_s:>9}  "
            f"{'yes' if r['correct'] else '-' if r.get('interrupted') else 'NO':>3}  "
            f"{r['question'][:45]} -> {shown[:70]}"
        )
    print()
    print(
        f"sessions {args.sessions} x {args.rounds} waves   wall {wall:.1f} s   "
        f"errors {errors}   correct {correct}/{n} answered   interrupted "
        f"{report['interrupted']}   server exit {server_exit}   answers after: {answers_after}"
    )
    ls = report["latency_s"]
    print(f"latency  p50 {ls['p50']} s   p95 {ls['p95']} s   max {ls['max']} s")
    rs = report["rss_mb"]
    print(
        f"server RSS MiB  start {rs['start']}   before {rs['before']}   peak {rs['peak']}   "
        f"after {rs['after']}   after each wave {rs['after_each_wave']}"
    )
    root = driver.ROOT
    print(f"wrote {args.out.relative_to(root) if args.out.is_relative_to(root) else args.out}")
    return 0 if errors == 0 and answers_after and correct == n else 1


if __name__ == "__main__":
    sys.exit(main())
