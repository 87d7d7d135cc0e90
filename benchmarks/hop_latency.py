"""Per-hop latency on the embedded broker: publish -> consumed by a FastStream subscriber.

Run: ``uv run python -m benchmarks.hop_latency [--messages 300]``. Compares the mesh's consumer
setting (fetch_max_wait_ms=20) with Kafka's default (500) side by side, one message in flight.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from faststream.kafka import KafkaBroker

from bentomesh_contracts.kafka import KafkaSettings
from services.runtime.broker import create_broker
from services.runtime.embedded_broker import EmbeddedBroker
from services.runtime.topics import ensure_topics


async def measure(bootstrap: str, fetch_max_wait_ms: int, messages: int) -> list[float]:
    topic = f"bench-hop-{fetch_max_wait_ms}"
    settings = KafkaSettings(bootstrap_servers=bootstrap)
    await ensure_topics(settings, partitions=1, topics=(topic,))
    broker: KafkaBroker = create_broker(settings, service="bench")
    received: asyncio.Queue[float] = asyncio.Queue()

    @broker.subscriber(
        topic,
        group_id=f"bench-{fetch_max_wait_ms}",
        auto_offset_reset="latest",
        fetch_max_wait_ms=fetch_max_wait_ms,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    async def on_message(body: dict[str, int]) -> None:
        received.put_nowait(time.perf_counter())

    async with broker:
        await broker.start()
        await asyncio.sleep(4)  # let the consumer group form
        latencies = []
        for i in range(messages + 10):
            sent = time.perf_counter()
            await broker.publish(b'{"n": %d}' % i, topic)
            arrived = await asyncio.wait_for(received.get(), 10)
            if i >= 10:  # warm-up
                latencies.append((arrived - sent) * 1000)
    return latencies


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=300)
    args = parser.parse_args()
    with EmbeddedBroker() as broker:
        print(f"embedded Tansu on {broker.bootstrap_servers}; {args.messages} hops per setting")
        rows = []
        for wait in (20, 500):
            print(f"  measuring fetch_max_wait_ms={wait} ...", flush=True)
            lat = asyncio.run(measure(broker.bootstrap_servers, wait, args.messages))
            rows.append((wait, pct(lat, 50), pct(lat, 99), max(lat)))
    print(f"\n{'fetch_max_wait_ms':>18} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for wait, p50, p99, worst in rows:
        print(f"{wait:>18} {p50:>8.1f} {p99:>8.1f} {worst:>8.1f}")
    print(f"\np99 ratio (500 / 20): {rows[1][2] / rows[0][2]:.1f}x")


if __name__ == "__main__":
    main()
