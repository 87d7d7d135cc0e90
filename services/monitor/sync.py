"""The watch set kept in line with the deployer, the authority on what serves.

``Deployed`` events are how the monitor learns of a deployment at once; the deployer's API is
how it never misses one: at start and every ``BENTOMESH_MONITOR_SYNC_S`` it asks the deployer
what is active, watches what it was not watching (a broker restarted empty, retention dropped
old events, a rollback's announcement failed), and retires what no longer serves (its firing
alerts resolve). The API rather than a state topic: the deployer's SQLite state is already the
record of what runs, a topic would be one more copy to keep consistent, and the embedded broker
forgets topics on restart.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import httpx

from bentomesh_contracts.envelope import CloudEvent, new_chain
from bentomesh_contracts.events import Deployed
from services.monitor.checker import Target
from services.monitor.service import WatchSet

logger = logging.getLogger("bentomesh.monitor")


def as_cause(row: dict[str, Any]) -> CloudEvent[Deployed]:
    """A deployment the deployer reports, as the ``Deployed`` its alerts follow: same chain,
    dated by its registration so a genuinely newer version still replaces it."""
    data = Deployed(
        deployment_id=row["id"],
        model_name=row["model"],
        model_version=row["version"],
        runtime=row["runtime"],
        endpoint_url=row["endpoint"],
    )
    event = new_chain(data, source="bentomesh/monitor", chainid=row["chain_id"])
    when = row.get("registered_at") or row.get("created_at")
    if when:
        event = event.model_copy(update={"time": datetime.fromtimestamp(float(when), UTC)})
    return event


class DeployerSync:
    def __init__(
        self, watch: WatchSet, deployer_url: str, token: str | None, interval_s: float
    ) -> None:
        self.watch = watch
        self.url = deployer_url.rstrip("/") + "/deployments"
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.interval_s = interval_s
        self.synced = 0
        self.replicas: set[str] = set()  # replica targets being watched

    async def once(self, client: httpx.AsyncClient) -> None:
        response = await client.get(self.url, headers=self.headers)
        response.raise_for_status()
        active = {
            row["id"]: row
            for row in response.json()
            if row["status"] == "active" and row.get("endpoint")
        }
        for deployment_id, row in active.items():
            if deployment_id not in self.watch.causes:
                logger.info("the deployer serves %s, unannounced here: watching it", row["id"])
                self.watch.apply(as_cause(row))
        for deployment_id in list(self.watch.causes):
            if deployment_id not in active and deployment_id not in self.watch.retired:
                logger.info("%s no longer serves at the deployer: retired", deployment_id)
                self.watch.retire(deployment_id)
        self.watch.resolve_orphans(set(active))
        self.follow_replicas(active)
        await self.watch.flush()
        self.synced += 1

    def follow_replicas(self, active: dict[str, dict[str, Any]]) -> None:
        """Every replica of a deployment that has several (swarm runtime) is watched: the
        deployment's own target follows its first replica, each other replica is a target
        ``<id>/<host:port>``. A replica that moved (rescheduled) is retired where it was,
        which resolves what fired there."""
        monitor = self.watch.monitor
        wanted: dict[str, Target] = {}
        for row in active.values():
            urls = (row.get("endpoints") or "").split()
            own = monitor.targets.get(row["id"])
            if len(urls) < 2 or own is None:
                continue
            if own.url != urls[0]:
                monitor.watch(replace(own, url=urls[0]))
            for url in urls[1:]:
                replica = f"{row['id']}/{urlparse(url).netloc}"
                wanted[replica] = replace(own, deployment_id=replica, url=url)
        for replica, target in wanted.items():
            if replica not in monitor.targets:
                logger.info("watching replica %s", replica)
                monitor.watch(target)
        for gone in self.replicas - set(wanted):
            logger.info("replica %s no longer serves there: retired", gone)
            self.watch.pending.extend(monitor.retire(gone))
        self.replicas = set(wanted)

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            while True:
                try:
                    await self.once(client)
                except (httpx.HTTPError, ValueError, KeyError) as exc:
                    logger.debug("deployer sync skipped: %s", exc)
                await asyncio.sleep(self.interval_s)
