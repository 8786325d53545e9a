"""Shared helpers for the benchmark scripts (plain Python: ``python bench/<name>.py``).

Every script prints a table and writes JSON to ``bench/out/``. Timings on the 2-core
development machine are noisy (it is shared with other processes): compare baseline and
candidate from the same run, as ratios, never across runs.
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import statistics
import string
import sys
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

from evals.memory import MIB, PeakRss, rss_bytes  # noqa: E402
from evals.metrics import percentile as _percentile  # noqa: E402
from evals.squad import DEFAULT_ARTICLES as DEV_ARTICLES  # noqa: E402
from evals.squad import clean_paragraph as clean  # noqa: E402
from evals.squad import doc_name as article_file_name  # noqa: E402
from evals.squad import load_squad as _load_squad_file  # noqa: E402
from evals.squad import select_articles  # noqa: E402
from evals.squad import write_corpus as _write_squad_corpus  # noqa: E402


def load_squad() -> list[dict[str, Any]]:
    """The articles of the SQuAD 2.0 dev file."""
    return _load_squad_file(SQUAD_DEV)["data"]


def write_corpus(folder: Path, titles: Sequence[str] | None = DEV_ARTICLES) -> dict[str, list[str]]:
    """Write SQuAD articles as a corpus (``evals.squad.write_corpus`` without the title heading,
    so no section is indexed with the paragraphs).

    Returns {file name: [paragraph texts in order]} (paragraph n is list index n-1).
    """
    arts = [a for a in load_squad() if titles is None or a["title"] in titles]
    _write_squad_corpus(arts, folder, heading=False)
    return {
        article_file_name(a["title"]): [clean(p["context"]) for p in a["paragraphs"]] for a in arts
    }


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb() -> float:
    rss = rss_bytes()
    return float("nan") if rss is None else rss / MIB


class RssSampler:
    """Samples this process's RSS every ``interval`` s; ``peak`` is the max seen (MiB)."""

    def __init__(self, interval: float = 0.05) -> None:
        self._rss = PeakRss(every_s=interval)

    @property
    def peak(self) -> float:
        return self._rss.peak / MIB

    def __enter__(self) -> RssSampler:
        self._rss.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._rss.__exit__(*exc)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100); NaN when there are no values."""
    p = _percentile(values, q)
    return float("nan") if p is None else p


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


def squad_dev_index(work: Path) -> tuple[list[dict[str, Any]], Any]:
    """The development articles of the SQuAD 2.0 dev file (with their title headings) written
    to ``work/corpus`` and indexed in ``work``: (the articles, the shipped settings for that
    index)."""
    from rag.ingest import ingest
    from rag.settings import Settings

    arts = select_articles(_load_squad_file(SQUAD_DEV), DEV_ARTICLES)
    _write_squad_corpus(arts, work / "corpus")
    settings = Settings(
        corpus_dir=work / "corpus",
        data_dir=work / "data",
        db_dir=work / "db",
        models_dir=MODELS_DIR,
    )
    print(ingest(settings).summary(), flush=True)
    return arts, settings


def answer_in(text: str, answers: Sequence[str]) -> bool:
    """Whether one of the SQuAD ``answers`` is in ``text``, both normalised as SQuAD does (lower
    case, no punctuation, no articles, single spaces; written here apart from the library)."""

    def norm(t: str) -> str:
        t = "".join(ch for ch in t.lower().replace("’", "'") if ch not in string.punctuation)
        return " ".join(re.sub(r"\b(a|an|the)\b", " ", t).split())

    s = norm(text)
    return any(norm(a) and norm(a) in s for a in answers)


def fit_logistic(X: Any, y: Any, c: float = 1.0) -> tuple[Any, Any]:
    """A standard scaler fitted on ``X`` and a logistic regression (``C=c``) fitted on the
    scaled ``X`` against the labels ``y``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(X)
    return scaler, LogisticRegression(C=c, max_iter=1000).fit(scaler.transform(X), y)


def write_logistic(
    path: Path, features: Sequence[str], scaler: Any, model: Any, fields: dict[str, Any]
) -> None:
    """Write a model of :func:`fit_logistic` as JSON: its features, the scaler's mean and scale,
    the coefficients, then ``fields``."""
    data = {
        "features": list(features),
        "mean": scaler.mean_.tolist(),
        "scale": scaler.scale_.tolist(),
        "coef": model.coef_[0].tolist(),
        **fields,
    }
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path}")


class Timer:
    def __enter__(self) -> Timer:
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.t0
