"""Confidence intervals for evaluation metrics (95 %, scipy).

* ``wilson``: the Wilson score interval of a proportion k/n (``scipy.stats.binomtest``), for
  rates of independent yes/no outcomes (a question answered correctly, a case rejected).
* ``bootstrap``: the percentile bootstrap (``scipy.stats.bootstrap``, 2,000 resamples, fixed
  seed) of any statistic of a list of items, resampling items with replacement; used for
  averages of fractional scores (F1, MRR, partial citation recall), for ratios whose
  denominator varies (abstention F1), and, paired, for the difference of a metric between two
  runs on the same questions (``paired_delta``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

CONFIDENCE = 0.95
N_RESAMPLES = 2000
SEED = 0


def wilson(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Wilson score interval of ``successes / n``; None when ``n == 0``."""
    if n <= 0:
        return None
    from scipy.stats import binomtest

    ci = binomtest(int(successes), int(n)).proportion_ci(
        confidence_level=confidence, method="wilson"
    )
    return (round(float(ci.low), 4), round(float(ci.high), 4))


def bootstrap(
    items: Sequence[T],
    statistic: Callable[[Sequence[T]], float | None],
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> tuple[float, float] | None:
    """Percentile-bootstrap interval of ``statistic(items)``, resampling the items.

    Resamples on which the statistic is undefined (None) are dropped; None when fewer than
    two items or the statistic is undefined on the data itself.
    """
    if len(items) < 2 or statistic(items) is None:
        return None
    import numpy as np
    from scipy.stats import bootstrap as sp_bootstrap

    def stat(idx: Any) -> float:
        v = statistic([items[int(i)] for i in idx])
        return math.nan if v is None else float(v)

    with warnings.catch_warnings():  # constant data: scipy warns, the interval is [v, v]
        warnings.simplefilter("ignore")
        res = sp_bootstrap(
            (np.arange(len(items)),),
            stat,
            vectorized=False,
            n_resamples=n_resamples,
            confidence_level=confidence,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if math.isnan(lo) or math.isnan(hi):
        dist = [x for x in res.bootstrap_distribution if not math.isnan(x)]
        if not dist:
            return None
        alpha = (1 - confidence) / 2
        lo, hi = (float(np.quantile(dist, alpha)), float(np.quantile(dist, 1 - alpha)))
    return (round(lo, 4), round(hi, 4))


def paired_delta(
    pairs: Sequence[tuple[T, T]],
    statistic: Callable[[Sequence[T]], float | None],
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> tuple[float | None, tuple[float, float] | None]:
    """``statistic(B) - statistic(A)`` over paired items (A, B) and its paired-bootstrap
    interval (the same resampled questions for both runs)."""
    a = [p[0] for p in pairs]
    b = [p[1] for p in pairs]
    va, vb = statistic(a), statistic(b)
    if va is None or vb is None:
        return None, None

    def diff(sample: Sequence[tuple[T, T]]) -> float | None:
        x = statistic([p[0] for p in sample])
        y = statistic([p[1] for p in sample])
        return None if x is None or y is None else y - x

    return round(vb - va, 4), bootstrap(
        pairs, diff, confidence=confidence, n_resamples=n_resamples, seed=seed
    )
