"""The stable endpoint of every model: ``/models/<name>/<route>`` proxies to its active version.

Clients keep one URL per model across versions; the switch to a new version is the store's atomic
``activate``. The routing table is kept in memory and rebuilt when the store changes (a cheap
check per request). During a rollout a canary candidate gets its share of requests (sticky per
``x-bentomesh-key`` when a client sends one), and a shadow candidate a copy of its share, sent
after the user was answered, through a bounded queue: a slow shadow loses copies (counted), never
delays anyone. ``GET /models`` lists what is served where.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import time
from dataclasses import dataclass
from typing import Any

from services.deployer.compare import compare
from services.deployer.state import Deployment, DeploymentStore
from services.deployer.traffic import TrafficLog
from services.deployer.upstream import HOP_HEADERS, Upstream, UpstreamError

Scope = dict[str, Any]


class BodyTooLarge(Exception):
    pass


async def _read_body(receive: Any, limit: int, declared: int | None) -> bytes:
    """The request body in linear time (chunks joined once), refused past ``limit`` bytes
    before it is read when Content-Length says so, else as soon as it grows past it."""
    if declared is not None and declared > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_json(send: Any, status: int, payload: Any) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


STICKY_HEADER = b"x-bentomesh-key"


@dataclass(frozen=True)
class Route:
    active: Deployment
    candidate: Deployment | None = None

    def pick(self, bucket: float) -> tuple[Deployment, Deployment | None]:
        """The version that answers, and the shadow that gets a copy (or ``None``)."""
        candidate = self.candidate
        if candidate is None or not candidate.endpoint or bucket >= candidate.share:
            return self.active, None
        if candidate.strategy == "canary":
            return candidate, None
        return self.active, candidate


def bucket_of(scope: Scope) -> float:
    """Where in [0, 1) a request falls: from its sticky key when it has one (so a client stays
    on one version while shares grow), else at random."""
    for key, value in scope["headers"]:
        if key.lower() == STICKY_HEADER:
            digest = hashlib.blake2b(value, digest_size=8).digest()
            return int.from_bytes(digest) / 2**64
    return random.random()  # noqa: S311 - traffic split, not security


@dataclass(frozen=True)
class _Copy:
    shadow: Deployment
    method: str
    rest: str
    body: bytes
    headers: list[tuple[bytes, bytes]]
    status: int
    answer: bytes


class Gateway:
    """An ASGI app; mount it at ``/models``."""

    def __init__(
        self,
        store: DeploymentStore,
        traffic: TrafficLog | None = None,
        *,
        timeout: float = 60.0,
        max_body_bytes: int = 10 << 20,
        mirror_queue: int = 256,
        mirror_workers: int = 4,
    ) -> None:
        self.store = store
        self.traffic = traffic or TrafficLog()
        self.max_body_bytes = max_body_bytes
        self.client = Upstream(timeout)
        self._generation: tuple[int, int] | None = None
        self._routes: dict[str, Route] = {}
        self._copies: asyncio.Queue[_Copy] = asyncio.Queue(maxsize=mirror_queue)
        self._mirror_workers = mirror_workers
        self._mirrors: list[asyncio.Task[None]] = []

    def routes(self) -> dict[str, Route]:
        generation = self.store.generation()
        if generation != self._generation:
            rows = self.store.routes()
            candidates = {d.model: d for d in rows if d.status == "candidate"}
            self._routes = {
                d.model: Route(d, candidates.get(d.model)) for d in rows if d.status == "active"
            }
            self._generation = generation
        return self._routes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"].split("/models", 1)[-1].strip("/")
        if not path:
            await _send_json(send, 200, [_listed(r) for r in self.routes().values()])
            return
        model, _, rest = path.partition("/")
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await self._too_large(send)  # before anything else: nothing of it is read
            return
        route = self.routes().get(model)
        if route is None or not route.active.endpoint:
            await _send_json(send, 404, {"error": f"no active deployment of model {model!r}"})
            return
        if not rest:
            await _send_json(send, 200, {"model": model, **_listed(route)})
            return
        try:
            body = await _read_body(receive, self.max_body_bytes, declared)
        except BodyTooLarge:
            await self._too_large(send)
            return
        target, shadow = route.pick(bucket_of(scope)) if route.candidate else (route.active, None)
        query = scope.get("query_string", b"")
        rest = rest + (f"?{query.decode()}" if query else "")
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in HOP_HEADERS]
        started = time.perf_counter()
        try:
            status, out_headers, content = await self.client.call(
                scope["method"], target.targets, rest, body, headers
            )
        except UpstreamError as exc:
            if route.candidate is not None:
                self.traffic.answered(target.id, 502, (time.perf_counter() - started) * 1e3)
            await _send_json(send, 502, {"error": f"{model} {target.version}: {exc}"})
            return
        if route.candidate is not None:
            self.traffic.answered(target.id, status, (time.perf_counter() - started) * 1e3)
        out_headers.append((b"x-bentomesh-version", target.version.encode()))
        await send({"type": "http.response.start", "status": status, "headers": out_headers})
        await send({"type": "http.response.body", "body": content})
        if shadow is not None:  # after the user has the answer
            self._mirror(_Copy(shadow, scope["method"], rest, body, headers, status, content))

    def _mirror(self, copy: _Copy) -> None:
        if len(self._mirrors) < self._mirror_workers:
            self._mirrors.append(asyncio.create_task(self._send_copies()))
        try:
            self._copies.put_nowait(copy)
        except asyncio.QueueFull:
            self.traffic.dropped(copy.shadow.id)

    async def _send_copies(self) -> None:
        while True:
            copy = await self._copies.get()
            started = time.perf_counter()
            try:
                status, _, content = await self.client.call(
                    copy.method, copy.shadow.targets, copy.rest, copy.body, copy.headers
                )
            except UpstreamError:
                self.traffic.answered(copy.shadow.id, 502, (time.perf_counter() - started) * 1e3)
                continue
            latency = (time.perf_counter() - started) * 1e3
            self.traffic.answered(copy.shadow.id, status, latency)
            if copy.status == 200 and status == 200:
                self.traffic.compared(copy.shadow.id, compare(copy.answer, content))

    async def _too_large(self, send: Any) -> None:
        message = f"request body over {self.max_body_bytes} bytes (BENTOMESH_MAX_BODY_BYTES)"
        await _send_json(send, 413, {"error": message})

    async def aclose(self) -> None:
        for task in self._mirrors:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.client.aclose()


def _listed(route: Route) -> dict[str, Any]:
    active = route.active
    listed: dict[str, Any] = {
        "model": active.model,
        "version": active.version,
        "runtime": active.runtime,
        "endpoint": active.endpoint,
        "deployment_id": active.id,
    }
    if route.candidate is not None:
        candidate = route.candidate
        listed["candidate"] = {
            "version": candidate.version,
            "strategy": candidate.strategy,
            "share": candidate.share,
            "deployment_id": candidate.id,
        }
    return listed
