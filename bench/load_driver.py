"""What the two load benchmarks (``api_load.py``, ``ui_load.py``) share: start a ``rag``
server on a free port and wait for its ready line, read its memory, run waves of concurrent
clients that start together, and summarise latencies."""

from __future__ import annotations

import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from evals.memory import MIB, PeakRss, rss_bytes  # noqa: E402
from evals.metrics import percentile  # noqa: E402


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int | None) -> float | None:
    """RSS of the process and its children, MiB (None: no process)."""
    rss = None if pid is None else rss_bytes(pid, children=True)
    return None if rss is None else round(rss / MIB, 1)


def server_peak(pid: int | None) -> PeakRss:
    """The server's peak RSS (with its children), sampled every 0.5 s in a ``with`` block."""
    return PeakRss(every_s=0.5, pid=pid, children=True)


def start_server(
    command: list[str], log_path: Path, ready: str, timeout_s: float, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], re.Match[str]]:
    """``python -m rag_cli COMMAND`` from the repository root, its output in ``log_path``;
    returns once a log line matches the regex ``ready`` (with that match)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rag_cli", *command],
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        match = re.search(ready, log_path.read_text(errors="replace"))
        if match:
            return proc, match
        if proc.poll() is not None:
            break
        time.sleep(0.3)
    proc.kill()
    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
    raise SystemExit(f"`rag {command[0]}` did not start:\n{tail}")


def stop_server(proc: subprocess.Popen[bytes] | None, timeout_s: float) -> None:
    """Terminate a server this benchmark started (kill it if it does not stop in time)."""
    if proc is None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()


def run_wave(
    n: int, client: Callable[[int, threading.Barrier, list[dict[str, Any]]], None]
) -> list[dict[str, Any]]:
    """``n`` client threads that start together (``client(i, barrier, results)`` waits on the
    barrier, then appends its record); returns their records."""
    results: list[dict[str, Any]] = []
    barrier = threading.Barrier(n)
    threads = [threading.Thread(target=client, args=(i, barrier, results)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return results


def latency_summary(latencies: list[float]) -> dict[str, float | None]:
    """p50, p95, max and mean of the latencies, seconds rounded to ms (None when empty)."""
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    return {
        "p50": None if p50 is None else round(p50, 3),
        "p95": None if p95 is None else round(p95, 3),
        "max": max(latencies) if latencies else None,
        "mean": round(statistics.fmean(latencies), 3) if latencies else None,
    }
