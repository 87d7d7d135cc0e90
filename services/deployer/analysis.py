"""Judging a candidate against the serving version over one window: pass, fail or wait. Pure.

Too few requests is never a pass: the rollout waits for evidence. Errors and latency are judged
as soon as there is enough of it (a bad candidate is caught mid-step); predictions are compared
only on mirrored requests, where both versions answered the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bentomesh_contracts.rollout import RolloutAnalysis, RolloutThresholds
from services.deployer.compare import Differences
from services.deployer.traffic import Window

MESH_THRESHOLDS = RolloutThresholds(
    min_requests=50,
    max_error_increase=0.05,
    max_p99_ratio=2.0,
    p99_slack_ms=25.0,
    min_agreement=0.95,
    max_probability_shift=0.1,
    max_relative_difference=0.1,
)


def resolved(
    asked: RolloutThresholds, mesh: RolloutThresholds = MESH_THRESHOLDS
) -> RolloutThresholds:
    """The registration's thresholds where it set them, the mesh's elsewhere."""
    merged = mesh.model_dump() | asked.model_dump(exclude_none=True)
    return RolloutThresholds.model_validate(merged)


@dataclass(frozen=True)
class Verdict:
    outcome: Literal["pass", "fail", "wait"]
    reason: str
    analysis: RolloutAnalysis


def judge(
    candidate: Window,
    serving: Window,
    limits: RolloutThresholds,
    *,
    window_s: float,
    mirrored: Differences | None = None,
    dropped: int = 0,
) -> Verdict:
    """``mirrored``: differences on identical requests (shadow); ``None`` when traffic is split."""
    means = mirrored.summary() if mirrored is not None else {}
    analysis = RolloutAnalysis(
        window_s=round(window_s, 3),
        requests=candidate.requests,
        serving_requests=serving.requests,
        error_share=candidate.error_share,
        serving_error_share=serving.error_share,
        p99_ms=candidate.p99_ms,
        serving_p99_ms=serving.p99_ms,
        compared=mirrored.pairs if mirrored is not None else 0,
        agreement=means.get("agreement"),
        probability_shift=means.get("probability_shift"),
        relative_difference=means.get("relative_difference"),
        interval_width_difference=means.get("interval_width_difference"),
        mirror_dropped=dropped,
    )
    need = limits.min_requests or 1
    if candidate.requests < need:
        return Verdict("wait", f"{candidate.requests} of {need} requests needed", analysis)
    # what the candidate predicts first (a shadow's main evidence), then how it answers
    failure = _predictions(analysis, limits) if mirrored and mirrored.pairs >= need else None
    failure = failure or _errors_or_latency(candidate, serving, limits, need)
    if failure is not None:
        return Verdict("fail", failure, analysis)
    if mirrored is not None and mirrored.pairs < need:
        return Verdict("wait", f"{mirrored.pairs} of {need} mirrored requests", analysis)
    if min(candidate.timed, serving.timed) < need:
        timed = min(candidate.timed, serving.timed)
        return Verdict("wait", f"{timed} of {need} timed answers for p99", analysis)
    return Verdict("pass", "within every threshold", analysis)


def _errors_or_latency(
    candidate: Window, serving: Window, limits: RolloutThresholds, need: int
) -> str | None:
    served_errors = serving.error_share or 0.0
    errors = candidate.error_share or 0.0
    if limits.max_error_increase is not None and errors - served_errors > limits.max_error_increase:
        return (
            f"5xx share {errors:.1%} against {served_errors:.1%} serving "
            f"(at most +{limits.max_error_increase:.1%})"
        )
    if min(candidate.timed, serving.timed) < need or not candidate.p99_ms or not serving.p99_ms:
        return None  # too few answers for a p99 to mean anything yet
    ratio, gap = candidate.p99_ms / max(serving.p99_ms, 1e-3), candidate.p99_ms - serving.p99_ms
    if (
        limits.max_p99_ratio is not None
        and ratio > limits.max_p99_ratio
        and gap > (limits.p99_slack_ms or 0.0)
    ):
        return (
            f"p99 {candidate.p99_ms:.1f} ms against {serving.p99_ms:.1f} ms serving "
            f"({ratio:.1f}x, at most {limits.max_p99_ratio:g}x)"
        )
    return None


def _predictions(analysis: RolloutAnalysis, limits: RolloutThresholds) -> str | None:
    if (
        analysis.agreement is not None
        and limits.min_agreement is not None
        and analysis.agreement < limits.min_agreement
    ):
        least = limits.min_agreement
        return f"labels agree on {analysis.agreement:.1%} of rows (at least {least:.0%})"
    if (
        analysis.probability_shift is not None
        and limits.max_probability_shift is not None
        and analysis.probability_shift > limits.max_probability_shift
    ):
        return (
            f"probabilities moved {analysis.probability_shift:.3f} on average "
            f"(at most {limits.max_probability_shift:g})"
        )
    cap = limits.max_relative_difference
    for name, value in (
        ("predictions", analysis.relative_difference),
        ("interval widths", analysis.interval_width_difference),
    ):
        if value is not None and cap is not None and value > cap:
            return f"{name} differ by {value:.1%} on average (at most {cap:.0%})"
    return None
