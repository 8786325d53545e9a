"""The thresholds on the model's P(yes), fitted on labelled data and kept in calibration.json."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")


@dataclass(frozen=True)
class Thresholds:
    """P(yes) at or above which the model's answer counts as yes, per check."""

    support: float
    answer: float


def load_thresholds(path: Path | None = None) -> Thresholds:
    """The fitted thresholds (``rag/verification/calibration.json``)."""
    data = json.loads((path or CALIBRATION_FILE).read_text(encoding="utf-8"))
    return Thresholds(
        support=float(data["support"]["threshold"]), answer=float(data["answer"]["threshold"])
    )


def pr_curve(scores: Sequence[float], labels: Sequence[bool]) -> list[dict[str, float]]:
    """Precision and recall of "yes" at every distinct score used as the threshold.

    Precision is over the predicted yes; ``fpr`` is the share of the negatives let through.
    """
    pairs = sorted(zip(scores, labels, strict=True), key=lambda x: -x[0])
    pos = sum(labels)
    neg = len(labels) - pos
    rows: list[dict[str, float]] = []
    tp = fp = 0
    for i, (s, y) in enumerate(pairs):
        tp += int(y)
        fp += int(not y)
        if i + 1 < len(pairs) and pairs[i + 1][0] == s:
            continue
        rows.append(
            {
                "threshold": round(float(s), 6),
                "precision": tp / (tp + fp),
                "recall": tp / pos if pos else 0.0,
                "fpr": fp / neg if neg else 0.0,
            }
        )
    return rows


def fit_threshold(
    scores: Sequence[float], labels: Sequence[bool], *, max_fpr: float
) -> dict[str, float]:
    """The lowest threshold whose false-positive rate stays within ``max_fpr``: the most
    recall for a bounded share of wrong "yes"."""
    best: dict[str, float] | None = None
    for row in pr_curve(scores, labels):
        if row["fpr"] <= max_fpr:
            best = row
    if best is None:
        return {"threshold": 1.0, "precision": 1.0, "recall": 0.0, "fpr": 0.0}
    return best
