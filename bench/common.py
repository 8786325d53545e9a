"""Shared helpers for the benchmark scripts (plain Python: ``python bench/<name>.py``).

Every script prints a table and writes JSON to ``bench/out/``. Timings on the 2-core
development machine are noisy (it is shared with other processes): compare baseline and
candidate from the same run, as ratios, never across runs.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

OUT = ROOT / "bench" / "out"
SHARED = ROOT.parent / "shared"
SQUAD_DEV = SHARED / "data" / "squad-v2-dev" / "dev-v2.0.json"
SEED_CORPUS = ROOT / "corpus"
MODELS_DIR = ROOT / "data" / "models"

from evals.squad import DEFAULT_ARTICLES as DEV_ARTICLES  # noqa: E402


def load_squad() -> list[dict[str, Any]]:
    return json.loads(SQUAD_DEV.read_text(encoding="utf-8"))["data"]


def clean(text: str) -> str:
    """One paragraph on one line (a few SQuAD contexts contain newlines)."""
    return " ".join(text.split())


def article_file_name(title: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in title) + ".md"


def write_corpus(folder: Path, titles: Sequence[str] | None = DEV_ARTICLES) -> dict[str, list[str]]:
    """Write SQuAD articles as a corpus: one article one .md, paragraphs split by blank lines.

    Returns {file name: [paragraph texts in order]} (paragraph n is list index n-1).
    """
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, list[str]] = {}
    for art in load_squad():
        if titles is not None and art["title"] not in titles:
            continue
        paras = [clean(p["context"]) for p in art["paragraphs"]]
        name = article_file_name(art["title"])
        (folder / name).write_text("\n\n".join(paras) + "\n", encoding="utf-8")
        out[name] = paras
    return out


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


class RssSampler:
    """Samples this process's RSS every ``interval`` s; ``peak`` is the max seen in the window."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, current_rss_mb())
            time.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self.peak = current_rss_mb()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, current_rss_mb())


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100)."""
    if not values:
        return float("nan")
    xs = sorted(values)
    if len(xs) == 1:
        return xs[0]
    pos = (len(xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "mean": statistics.fmean(values) if values else float("nan"),
        "min": min(values) if values else float("nan"),
        "max": max(values) if values else float("nan"),
    }


def dir_size_mb(path: Path) -> float:
    total = 0
    for p in path.rglob("*"):
        if p.is_file():
            total += p.stat().st_size
    return total / (1024 * 1024)


def machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (None, None, None)
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_at_end": [round(x, 2) for x in load if x is not None],
        "note": "2-core development machine shared with other processes during the run: "
        "absolute timings are noisy, compare ratios within one run",
    }


def table(rows: Iterable[Sequence[Any]], header: Sequence[str]) -> str:
    """A GitHub-flavoured markdown table."""

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            if v != v:
                return "n/a"
            return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(fmt(v) for v in r) + " |")
    return "\n".join(lines)


def write_json(name: str, data: dict[str, Any]) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    data = {**data, "machine": machine(), "command": "python " + " ".join(sys.argv)}
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    return path


class Timer:
    def __enter__(self) -> Timer:
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.t0
