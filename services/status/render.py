"""Events as text for people: one-line summaries for ``events tail``, the CLI and the status
page."""

from __future__ import annotations

import re
from typing import Any

from bentomesh_contracts.envelope import CloudEvent
from bentomesh_contracts.events import (
    BentoBuilt,
    Deployed,
    HealthAlert,
    ImageReady,
    ModelRegistered,
    PredictionsSampled,
    RolloutProgressed,
    StageFailed,
    Undeployed,
)


def summarize(data: Any) -> str:
    match data:
        case ModelRegistered():
            fw = data.framework or "auto"
            return (
                f"{data.task} {fw} features={len(data.features)} sha256={data.artifact_sha256[:12]}"
            )
        case BentoBuilt():
            compiled = " compiled" if (data.serving or "").startswith("compiled") else ""
            stages = ", ".join(f"{k} {v:.1f}" for k, v in (data.stage_seconds or {}).items())
            return (
                f"bento={data.bento_tag} template={data.template}{compiled} "
                f"{data.build_seconds:.1f}s" + (f" ({stages})" if stages else "")
            )
        case ImageReady():
            what = data.image_ref or data.bento_tag
            return f"{data.backend} {what} {data.size_bytes / 1e6:.0f}MB {data.build_seconds:.1f}s"
        case Deployed():
            replaced = f" replaced={data.replaced_version}" if data.replaced_version else ""
            ready = f" ready in {data.ready_seconds:.1f}s" if data.ready_seconds is not None else ""
            return f"{data.runtime} {data.endpoint_url}{replaced}{ready}"
        case Undeployed():
            return f"{data.runtime} {data.deployment_id}: {data.reason}"
        case HealthAlert():
            return f"{data.severity.upper()} {data.state} {data.rule}: {data.message}"
        case PredictionsSampled():
            cut = " (truncated)" if data.truncated else ""
            return f"{len(data.rows)} of {data.sampled_rows} sampled rows{cut} worker={data.worker}"
        case RolloutProgressed():
            figures = data.analysis
            seen = ""
            if figures is not None:
                parts = [f"{figures.requests} requests"]
                if figures.error_share is not None:
                    parts.append(f"5xx {figures.error_share:.1%}")
                if figures.p99_ms is not None and figures.serving_p99_ms is not None:
                    parts.append(f"p99 {figures.p99_ms:.0f}/{figures.serving_p99_ms:.0f} ms")
                if figures.agreement is not None:
                    parts.append(f"agreement {figures.agreement:.1%}")
                seen = " [" + ", ".join(parts) + "]"
            return (
                f"{data.strategy} step {data.step + 1}/{len(data.steps)} {data.share:.0%} "
                f"{data.decision}: {data.reason}{seen}"
            )
        case StageFailed():
            retry = " (retryable)" if data.retryable else ""
            return f"{data.stage} {data.error_type}{retry}: {data.reason}"
    return ""


def short_type(event: CloudEvent[Any]) -> str:
    """``bento.built`` for ``bentomesh.bento.built.v1``."""
    return event.type.removeprefix("bentomesh.").removesuffix(".v1")


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` safe for a terminal line: control characters (escape sequences, carriage
    returns, newlines) shown as ``\\xNN`` instead of acting on the terminal."""
    return _UNPRINTABLE.sub(lambda m: f"\\x{ord(m[0]):02x}", text)


def event_line(event: CloudEvent[Any]) -> str:
    when = event.time.strftime("%H:%M:%S.%f")[:-3]
    name = getattr(event.data, "model_name", None)
    version = getattr(event.data, "model_version", None)
    subject = event.subject or (f"{name}:{version}" if name and version else "-")
    kind = short_type(event)
    line = f"{when}  {kind:<18} {subject:<24} {summarize(event.data)}  chain={event.chainid[:8]}"
    return printable(line)


def dead_letter_line(when: str, headers: dict[str, str], size: int) -> str:
    origin = (
        f"{headers.get('source-topic', '?')}[{headers.get('source-partition', '?')}]"
        f"@{headers.get('source-offset', '?')}"
    )
    return printable(
        f"{when}  {'dead-letter':<18} {origin:<24} {headers.get('service', '?')}: "
        f"{headers.get('reason', '?')} ({size} bytes)"
    )
