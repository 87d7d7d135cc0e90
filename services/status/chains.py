"""Event chains for the status page: every event of a model version, in order, with stage times.

Pure: fed CloudEvents (from any source), answers plain dicts. Bounded: the oldest chains are
forgotten past ``max_chains``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from bentomesh_contracts.envelope import CloudEvent
from bentomesh_contracts.events import (
    Deployed,
    HealthAlert,
    RolloutProgressed,
    StageFailed,
    Undeployed,
)
from bentomesh_contracts.pipeline import PRODUCER_OF
from services.status.render import summarize


@dataclass
class Chain:
    chainid: str
    model: str = "?"
    version: str = "?"
    events: dict[str, CloudEvent[Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        ordered = sorted(self.events.values(), key=lambda e: e.time)
        first = ordered[0].time
        rows = []
        for event in ordered:
            cause = self.events.get(event.causationid or "")
            took = (event.time - cause.time).total_seconds() if cause else None
            rows.append(
                {
                    "id": event.id,
                    "type": event.type.removeprefix("bentomesh.").removesuffix(".v1"),
                    "stage": (
                        event.data.stage
                        if isinstance(event.data, StageFailed)
                        else PRODUCER_OF.get(event.type, event.type)
                    ),
                    "time": event.time.isoformat(),
                    "offset_s": round((event.time - first).total_seconds(), 3),
                    # How long the stage that emitted this event took: from its cause to it.
                    "took_s": round(took, 3) if took is not None else None,
                    "summary": summarize(event.data),
                    "failure": event.data.reason if isinstance(event.data, StageFailed) else None,
                    "alert": (
                        {"rule": event.data.rule, "state": event.data.state}
                        if isinstance(event.data, HealthAlert)
                        else None
                    ),
                }
            )
        last = ordered[-1]
        return {
            "chainid": self.chainid,
            "model": self.model,
            "version": self.version,
            "started": first.isoformat(),
            "status": _status(ordered),
            "total_s": round((last.time - first).total_seconds(), 3),
            "events": rows,
        }


def _status(events: list[CloudEvent[Any]]) -> str:
    if any(isinstance(e.data, StageFailed) for e in events):
        return "failed"
    if any(isinstance(e.data, Undeployed) for e in events):
        return "undeployed"
    if any(isinstance(e.data, Deployed) for e in events):
        return "deployed"
    if any(isinstance(e.data, RolloutProgressed) for e in events):
        return "rolling out"
    return "in progress"


class ChainBook:
    def __init__(self, max_chains: int = 500) -> None:
        self.max_chains = max_chains
        self.chains: OrderedDict[str, Chain] = OrderedDict()

    def add(self, event: CloudEvent[Any]) -> None:
        chain = self.chains.get(event.chainid)
        if chain is None:
            chain = self.chains[event.chainid] = Chain(event.chainid)
            while len(self.chains) > self.max_chains:
                self.chains.popitem(last=False)
        chain.events[event.id] = event  # a redelivered event replaces itself
        chain.model = getattr(event.data, "model_name", None) or chain.model
        chain.version = getattr(event.data, "model_version", None) or chain.version

    def rollouts(self) -> list[dict[str, Any]]:
        """The last step of every rollout still going: share, decision and figures."""
        going = []
        for chain in self.chains.values():
            ordered = sorted(chain.events.values(), key=lambda e: e.time)
            if _status(ordered) != "rolling out":
                continue
            last = next(e for e in reversed(ordered) if isinstance(e.data, RolloutProgressed))
            going.append({"chainid": chain.chainid, **last.data.model_dump(mode="json")})
        return sorted(going, key=lambda r: r["model_name"])

    def snapshot(self, limit: int = 100) -> list[dict[str, Any]]:
        """Most recently started chains first."""
        chains = sorted(
            self.chains.values(), key=lambda c: min(e.time for e in c.events.values()), reverse=True
        )
        return [c.as_dict() for c in chains[:limit]]
