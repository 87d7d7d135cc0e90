"""The bridge's decisions: which model versions to deploy, the event that asks for it, and what
to tell MLflow about the outcome. MLflow and Kafka come in as the seams."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from bentomesh_contracts.codec import encode
from bentomesh_contracts.envelope import CloudEvent, new_chain
from bentomesh_contracts.events import Deployed, ModelRegistered, StageFailed
from services.errors import InvalidRegistration
from services.registry_bridge.describe import describe_version
from services.registry_bridge.ledger import Ledger
from services.registry_bridge.metrics import BridgeMetrics
from services.registry_bridge.mlflow_registry import MlflowRegistry, VersionInfo
from services.registry_bridge.settings import BridgeSettings

logger = logging.getLogger("bentomesh.registry_bridge")

SOURCE = "bentomesh/registry-bridge"
Publish = Callable[[CloudEvent[Any]], Awaitable[None]]


class Bridge:
    def __init__(
        self,
        settings: BridgeSettings,
        registry: MlflowRegistry,
        ledger: Ledger,
        artifact_root: Path,
        publish: Publish,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.ledger = ledger
        self.artifact_root = artifact_root
        self.publish = publish
        self.metrics = BridgeMetrics(CollectorRegistry())  # the service's registry replaces it
        self._serial = asyncio.Lock()  # one registration at a time: downloads are the cost

    async def offer(self, model: str, version: str) -> str:
        outcome = await self._offer(model, version)
        self.metrics.offers.labels(outcome.split(":")[0]).inc()
        return outcome

    async def _offer(self, model: str, version: str) -> str:
        """Publish ``ModelRegistered`` for ``version`` of ``model`` unless it is not followed or
        already published: 'published', 'unchanged', 'ignored' or 'refused: <reason>'."""
        trigger = self.settings.trigger
        if not self.settings.follows(model):
            return "ignored"
        async with self._serial:
            if not self.ledger.due(model, version, trigger):
                return "unchanged"
            try:
                event = await asyncio.to_thread(self.registration, model, version)
            except InvalidRegistration as exc:
                reason = str(exc)
                self.ledger.claim(
                    model,
                    version,
                    trigger,
                    chain_id=None,
                    event=None,
                    status="refused",
                    detail=reason,
                )
                logger.warning("%s version %s refused: %s", model, version, reason)
                await self._tag(
                    model,
                    version,
                    {"bentomesh.reason": reason[:5000], "bentomesh.status": "refused"},
                )
                return f"refused: {reason}"
            raw = encode(event).decode()
            if not self.ledger.claim(model, version, trigger, chain_id=event.chainid, event=raw):
                return "unchanged"
            await self.publish(event)
            self.ledger.mark_sent(event.chainid)
        logger.info(
            "%s version %s: ModelRegistered published (chain %s)", model, version, event.chainid
        )
        await self._tag(
            model, version, {"bentomesh.chain_id": event.chainid, "bentomesh.status": "registered"}
        )
        return "published"

    async def resend_unsent(self, resend: Callable[[str], Awaitable[None]]) -> int:
        """Events claimed but maybe never published (the bridge died in between, or the broker
        refused): again, with the same id."""
        async with self._serial:  # not while an offer is between its claim and its publish
            unsent = self.ledger.unsent()
            for chain_id, raw in unsent:
                await resend(raw)
                self.ledger.mark_sent(chain_id)
        return len(unsent)

    async def poll_once(self) -> list[str]:
        """What the registry wants served now: the alias holder of each followed model, or
        each version created since the bridge first started."""
        outcomes = []
        models = self.settings.models or await asyncio.to_thread(self.registry.models)
        for model in models:
            for info in await asyncio.to_thread(self._targets, model):
                outcomes.append(f"{model}/{info.version}: {await self.offer(model, info.version)}")
        return outcomes

    def _targets(self, model: str) -> list[VersionInfo]:
        if self.settings.alias:
            holder = self.registry.by_alias(model, self.settings.alias)
            return [holder] if holder is not None else []
        since = self.ledger.since
        return [v for v in self.registry.versions(model) if v.created_s >= since]

    def registration(self, model: str, version: str) -> CloudEvent[ModelRegistered]:
        """The event asking to serve ``version`` (blocking: downloads; run in a thread)."""
        data = describe_version(
            self.registry, model, version, self.artifact_root, alias=self.settings.alias
        )
        return new_chain(data, source=SOURCE)

    async def outcome(self, event: CloudEvent[Any]) -> bool:
        """Write a ``Deployed`` or ``StageFailed`` of a chain the bridge started back to MLflow;
        False when the chain is not the bridge's or MLflow already shows it."""
        row = self.ledger.by_chain(event.chainid)
        if row is None:
            return False
        data = event.data
        if isinstance(data, Deployed):
            status, tags = (
                "deployed",
                {
                    "bentomesh.endpoint": data.endpoint_url,
                    "bentomesh.deployment_id": data.deployment_id,
                    "bentomesh.runtime": data.runtime,
                    "bentomesh.status": "deployed",  # last: who sees it sees the rest
                },
            )
        elif isinstance(data, StageFailed) and row.status != "deployed":
            status, tags = (
                "failed",
                {
                    "bentomesh.reason": f"{data.stage}: {data.reason}"[:5000],
                    "bentomesh.status": "failed",
                },
            )
        else:
            return False
        if row.status == status:
            return False
        await self._tag(row.model, row.version, tags)
        self.ledger.set_status(event.chainid, status, tags.get("bentomesh.reason"))
        self.metrics.written.labels(status).inc()
        return True

    async def _tag(self, model: str, version: str, tags: dict[str, str]) -> None:
        for attempt in range(1, self.settings.max_attempts + 1):
            try:
                await asyncio.to_thread(self.registry.set_tags, model, version, tags)
                return
            except Exception as exc:  # MLflow down or refusing: the mesh goes on regardless
                self.metrics.mlflow_errors.inc()
                logger.warning(
                    "tagging %s version %s in MLflow failed (%d of %d): %s",
                    model,
                    version,
                    attempt,
                    self.settings.max_attempts,
                    exc,
                )
                await asyncio.sleep(min(2.0**attempt, 10.0))
