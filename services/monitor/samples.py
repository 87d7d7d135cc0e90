"""Sampled predictions: read from each model that logs them, handed on, acknowledged after.

A model registered with ``deployment.log_predictions`` keeps a sample of what it serves
(``templates/sampled.py``). At each check the monitor asks for the samples after the last one
it published from that worker (``after=PID:SEQ,...``: any worker may answer), publishes them,
and only then counts them as done; the worker forgets them at the next read. A model that
logs nothing answers 404 once and is not asked again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from bentomesh_contracts import topics
from bentomesh_contracts.codec import CONTENT_TYPE, encode, partition_key
from bentomesh_contracts.envelope import follow_up
from bentomesh_contracts.events import PredictionsSampled
from services.monitor.checker import LIVE_ROUTE, Target
from services.runtime.trust import Trust

logger = logging.getLogger("bentomesh.monitor")

Publish = Callable[[Target, PredictionsSampled], Awaitable[None]]


def sample_event(target: Target, pid: int, sample: dict[str, Any]) -> PredictionsSampled:
    return PredictionsSampled(
        deployment_id=target.deployment_id,
        model_name=target.model_name,
        model_version=target.model_version,
        worker=pid,
        seq=sample["seq"],
        served_at=sample["served_at"],
        rows=sample["rows"],
        predictions=sample["predictions"],
        sampled_rows=sample["sampled_rows"],
        truncated=sample["truncated"],
    )


class SampleReader:
    def __init__(self, publish: Publish) -> None:
        self.publish = publish
        self.silent: set[str] = set()  # deployments that log nothing
        self.done: dict[str, dict[int, int]] = {}  # deployment -> worker pid -> last published
        self.published = 0
        self.dropped: dict[str, dict[int, int]] = {}  # what workers dropped, unread

    async def read(self, client: aiohttp.ClientSession, target: Target) -> None:
        deployment = target.deployment_id
        if deployment in self.silent:
            return
        done = self.done.setdefault(deployment, {})
        after = ",".join(f"{pid}:{seq}" for pid, seq in done.items())
        url = f"{target.url.rstrip('/')}{LIVE_ROUTE}/rows?after={after}"
        try:
            async with client.get(url) as response:
                if response.status == 404:
                    self.silent.add(deployment)
                    return
                if response.status != 200:
                    return
                body: dict[str, Any] = await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return
        pid = int(body["pid"])
        self.dropped.setdefault(deployment, {})[pid] = int(body["dropped"])
        for sample in body["samples"]:
            if sample["seq"] <= done.get(pid, 0):
                continue  # published already; the worker forgets it at the next read
            try:
                await self.publish(target, sample_event(target, pid, sample))
            except Exception:
                logger.warning("could not publish sampled predictions of %s", deployment)
                return  # not done: the same sample comes again at the next read
            done[pid] = sample["seq"]
            self.published += 1
        while len(done) > 16:  # workers restarted long ago
            done.pop(next(iter(done)))

    def forget(self, deployment_id: str) -> None:
        self.silent.discard(deployment_id)
        self.done.pop(deployment_id, None)
        self.dropped.pop(deployment_id, None)


def kafka_sample_publisher(causes: dict[str, Any], trust: Trust, broker_ref: Any) -> Publish:
    """Each sample as a signed follow-up of its deployment's ``Deployed`` (its id from the
    worker and seq, so a sample published twice is one event to a reader that drops repeats)."""

    async def publish(target: Target, data: PredictionsSampled) -> None:
        cause = causes.get(target.deployment_id)
        if cause is None:
            return  # no longer watched
        key = f"sample/{data.worker}/{data.seq}"
        event = trust.sign(follow_up(cause, data, source="bentomesh/monitor", key=key))
        await broker_ref().publish(
            encode(event),
            topics.PREDICTIONS,
            key=partition_key(event),
            headers={"content-type": CONTENT_TYPE},
        )

    return publish
