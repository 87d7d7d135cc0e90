"""How a new version takes over from the serving one, and the evidence that decided it.

``replace`` switches all traffic once the candidate is ready (blue/green). ``canary`` sends it a
growing share of requests, ``shadow`` a copy of a share (users are answered by the serving version
only); each step is analysed against the serving version before the next one.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Strategy = Literal["replace", "canary", "shadow"]
Decision = Literal["started", "advanced", "waiting", "promoted", "aborted"]


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RolloutThresholds(_Part):
    """Limits a candidate must stay within at every step; unset ones take the mesh's."""

    min_requests: int | None = Field(
        default=None, ge=1, description="Requests each side needs in a window before judging."
    )
    max_error_increase: float | None = Field(
        default=None, ge=0, le=1, description="Largest rise of the 5xx share over the serving one."
    )
    max_p99_ratio: float | None = Field(
        default=None, ge=1, description="Largest candidate p99 / serving p99."
    )
    p99_slack_ms: float | None = Field(
        default=None, ge=0, description="A p99 gap under this many ms never fails (noise)."
    )
    min_agreement: float | None = Field(
        default=None, ge=0, le=1, description="Classification: least share of identical labels."
    )
    max_probability_shift: float | None = Field(
        default=None, ge=0, le=1, description="Classification: largest mean probability change."
    )
    max_relative_difference: float | None = Field(
        default=None,
        ge=0,
        description="Regression and causal: largest mean relative difference of predictions "
        "(effects), and of interval widths.",
    )


class RolloutPrefs(_Part):
    """Steps, bake time and thresholds of a canary or shadow rollout; unset: the mesh's."""

    steps: list[float] | None = Field(
        default=None,
        min_length=1,
        max_length=10,
        description="Canary: traffic shares in order, ending at 1. Shadow: the share mirrored.",
        examples=[[0.1, 0.5, 1.0]],
    )
    bake_s: float | None = Field(
        default=None, gt=0, le=86_400, description="Seconds each step lasts once judged healthy."
    )
    thresholds: RolloutThresholds = Field(default_factory=RolloutThresholds)

    @field_validator("steps")
    @classmethod
    def _increasing_shares(cls, steps: list[float] | None) -> list[float] | None:
        if steps is None:
            return None
        if any(not 0 < s <= 1 for s in steps) or steps != sorted(set(steps)):
            raise ValueError("steps are increasing traffic shares in (0, 1]")
        return steps


class RolloutAnalysis(_Part):
    """Candidate against serving version over one window: the figures a decision rests on."""

    window_s: float = Field(ge=0, description="Length of the window analysed.")
    requests: int = Field(ge=0, description="Requests the candidate answered in the window.")
    serving_requests: int = Field(ge=0, description="Requests the serving version answered.")
    error_share: float | None = Field(default=None, description="Candidate's 5xx share.")
    serving_error_share: float | None = Field(default=None, description="Serving 5xx share.")
    p99_ms: float | None = Field(default=None, description="Candidate's p99 latency.")
    serving_p99_ms: float | None = Field(default=None, description="Serving version's p99.")
    compared: int = Field(default=0, ge=0, description="Mirrored requests compared pairwise.")
    agreement: float | None = Field(default=None, description="Share of identical labels.")
    probability_shift: float | None = Field(default=None, description="Mean |p - p'| per class.")
    relative_difference: float | None = Field(
        default=None, description="Mean relative difference of predictions or effects."
    )
    interval_width_difference: float | None = Field(
        default=None, description="Mean relative difference of interval widths."
    )
    mirror_dropped: int = Field(default=0, ge=0, description="Copies dropped: shadow too slow.")
