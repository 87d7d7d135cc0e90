"""A one-off health check of a model service (``bentomesh health``)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class HealthReport:
    url: str
    live: bool
    ready: bool
    latency_ms: float
    requests: dict[str, float]

    @property
    def healthy(self) -> bool:
        return self.live and self.ready

    def lines(self) -> list[str]:
        out = [
            f"{self.url}: {'healthy' if self.healthy else 'UNHEALTHY'}",
            f"  live   {'yes' if self.live else 'no'}",
            f"  ready  {'yes' if self.ready else 'no'} ({self.latency_ms:.1f} ms)",
        ]
        for key, count in sorted(self.requests.items()):
            out.append(f"  {key:<40} {count:.0f} requests")
        return out


def check_service(url: str, timeout: float = 5.0) -> HealthReport:
    url = url.rstrip("/")
    with httpx.Client(timeout=timeout) as client:
        live = client.get(f"{url}/livez").status_code == 200
        started = time.perf_counter()
        ready = client.get(f"{url}/readyz").status_code == 200
        latency = (time.perf_counter() - started) * 1000
        requests: dict[str, float] = {}
        metrics = client.get(f"{url}/metrics")
        if metrics.status_code == 200:
            for family in text_string_to_metric_families(metrics.text):
                if family.name != "bentoml_service_request":
                    continue
                for sample in family.samples:
                    if sample.name.endswith("_total"):
                        labels = sample.labels
                        key = (
                            f"{labels.get('endpoint', '?')} {labels.get('http_response_code', '')}"
                        )
                        requests[key] = requests.get(key, 0) + sample.value
    return HealthReport(url, live, ready, latency, requests)
