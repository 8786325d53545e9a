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
        support=float(data["support"]["threshold"]),
        answer=float(data["answer"]["threshold"]),
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
    scores: Sequence[float],
    labels: Sequence[bool],
    *,
    max_fpr: float | None = None,
    min_recall: float | None = None,
) -> dict[str, float]:
    """A threshold from the precision/recall curve: with ``max_fpr``, the lowest one whose
    false-positive rate stays within it (most recall for a bounded share of wrong "yes");
    with ``min_recall``, the highest one that keeps that recall (fewest wrong "yes" for a
    bounded share of missed "yes")."""
    curve = pr_curve(scores, labels)  # thresholds descending, recall and fpr ascending
    best: dict[str, float] | None = None
    for row in curve:
        if max_fpr is not None and row["fpr"] <= max_fpr:
            best = row
        if min_recall is not None and row["recall"] >= min_recall:
            best = row
            break
    if best is None:
        return {"threshold": 1.0, "precision": 1.0, "recall": 0.0, "fpr": 0.0}
    return best
