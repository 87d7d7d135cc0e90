"""The gateway's HTTP client to model servers, balancing over a version's replicas."""

from __future__ import annotations

import itertools

import aiohttp
from multidict import CIMultiDict

HOP_HEADERS = {b"host", b"connection", b"keep-alive", b"transfer-encoding", b"content-length"}
Headers = list[tuple[bytes, bytes]]


class UpstreamError(Exception):
    pass


class _ReplicaGone(UpstreamError):
    """The replica refused the connection or dropped it: another one can answer."""


class Upstream:
    """The proxy's HTTP client. aiohttp: at concurrency 32 on one core, httpx's pool capped the
    gateway near 500 req/s (benchmarks/gateway_overhead.py); bodies pass through undecoded.

    A version with replicas is called in turn at each of them. A replica that refuses the
    connection or drops it (its node lost, its task stopped and being rescheduled) gets the
    request replaced by the next replica's answer: clients see no error while the deployer
    catches up with the move. Safe because a model's routes are predictions, pure functions of
    the request: at worst one is computed twice."""

    def __init__(self, timeout: float, connections: int = 256, connect_s: float = 3.0) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_s)
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None
        self._turn = itertools.count()

    async def call(
        self, method: str, bases: list[str], rest: str, body: bytes, headers: Headers
    ) -> tuple[int, Headers, bytes]:
        """``method`` on ``rest`` of one of ``bases`` (the replicas' URLs)."""
        if len(bases) == 1:
            return await self._call(method, f"{bases[0]}/{rest}", body, headers)
        first = next(self._turn)
        for attempt in range(len(bases)):
            base = bases[(first + attempt) % len(bases)]
            try:
                return await self._call(method, f"{base}/{rest}", body, headers)
            except _ReplicaGone:
                continue
        raise UpstreamError(f"none of the {len(bases)} replicas accepted a connection")

    async def _call(
        self, method: str, url: str, body: bytes, headers: Headers
    ) -> tuple[int, Headers, bytes]:
        if self._session is None:  # needs the running loop
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections),
                timeout=self._timeout,
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
            )
        sent = CIMultiDict((k.decode("latin-1"), v.decode("latin-1")) for k, v in headers)
        try:
            async with self._session.request(method, url, data=body, headers=sent) as answer:
                content = await answer.read()
                kept = [(k, v) for k, v in answer.raw_headers if k.lower() not in HOP_HEADERS]
                return answer.status, kept, content
        except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as exc:
            raise _ReplicaGone(repr(exc)) from exc  # refused, reset, or closed under us
        except aiohttp.ConnectionTimeoutError as exc:
            raise _ReplicaGone(repr(exc)) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamError(repr(exc)) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
