"""Model-aware comparison of two answers to one request: the serving version's and a shadow's.

Pure: JSON bodies in, sums out. Classification answers carry ``labels`` (and ``probabilities``),
regression ``predictions``, causal models ``effects``; either may carry ``lower``/``upper``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass
class Differences:
    """Sums over compared pairs; :meth:`summary` turns them into means."""

    pairs: int = 0
    labelled_rows: int = 0
    agreeing_rows: int = 0
    probability_rows: int = 0
    probability_shift: float = 0.0  # sum over rows of the mean |p - p'| over classes
    valued_pairs: int = 0
    relative_difference: float = 0.0  # sum over pairs of sum|a - b| / sum|b|
    interval_pairs: int = 0
    width_difference: float = 0.0
    unparsed: int = 0

    def add(self, other: Differences) -> None:
        for name in (
            "pairs",
            "labelled_rows",
            "agreeing_rows",
            "probability_rows",
            "probability_shift",
            "valued_pairs",
            "relative_difference",
            "interval_pairs",
            "width_difference",
            "unparsed",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def summary(self) -> dict[str, float | None]:
        def mean(total: float, count: int) -> float | None:
            return total / count if count else None

        return {
            "agreement": mean(self.agreeing_rows, self.labelled_rows),
            "probability_shift": mean(self.probability_shift, self.probability_rows),
            "relative_difference": mean(self.relative_difference, self.valued_pairs),
            "interval_width_difference": mean(self.width_difference, self.interval_pairs),
        }


def _relative(candidate: list[float], serving: list[float]) -> float | None:
    if len(candidate) != len(serving) or not serving:
        return None
    scale = sum(abs(b) for b in serving)
    gap = sum(abs(a - b) for a, b in zip(candidate, serving, strict=True))
    if scale == 0:
        return 0.0 if gap == 0 else 1.0
    return gap / scale


def _numbers(answer: dict[str, Any], key: str) -> list[float] | None:
    values = answer.get(key)
    if isinstance(values, list) and all(isinstance(v, int | float) for v in values):
        return [float(v) for v in values]
    return None


def compare(serving: bytes, candidate: bytes) -> Differences:
    """How the candidate's answer differs from the serving version's to the same request."""
    diff = Differences(pairs=1)
    try:
        a, b = json.loads(candidate), json.loads(serving)
    except ValueError:
        diff.unparsed = 1
        return diff
    if not isinstance(a, dict) or not isinstance(b, dict):
        diff.unparsed = 1
        return diff
    labels_a, labels_b = a.get("labels"), b.get("labels")
    if isinstance(labels_a, list) and isinstance(labels_b, list) and len(labels_a) == len(labels_b):
        diff.labelled_rows = len(labels_b)
        diff.agreeing_rows = sum(x == y for x, y in zip(labels_a, labels_b, strict=True))
    probs_a, probs_b = a.get("probabilities"), b.get("probabilities")
    if isinstance(probs_a, list) and isinstance(probs_b, list) and len(probs_a) == len(probs_b):
        for pa, pb in zip(probs_a, probs_b, strict=True):
            classes = set(pa) | set(pb)
            if classes:
                shift = sum(abs(pa.get(c, 0.0) - pb.get(c, 0.0)) for c in classes)
                diff.probability_shift += shift / len(classes)
                diff.probability_rows += 1
    for key in ("predictions", "effects"):
        values_a, values_b = _numbers(a, key), _numbers(b, key)
        if values_a is not None and values_b is not None:
            relative = _relative(values_a, values_b)
            if relative is not None:
                diff.valued_pairs, diff.relative_difference = 1, relative
    lower_a, upper_a, lower_b, upper_b = (
        _numbers(x, k) for x in (a, b) for k in ("lower", "upper")
    )
    if lower_a is not None and upper_a is not None and lower_b is not None and upper_b is not None:
        widths_a = [u - lo for lo, u in zip(lower_a, upper_a, strict=False)]
        widths_b = [u - lo for lo, u in zip(lower_b, upper_b, strict=False)]
        relative = _relative(widths_a, widths_b)
        if relative is not None:
            diff.interval_pairs, diff.width_difference = 1, relative
    return diff
