"""Request rate, error rates and latency percentiles of a BentoML service over a sliding window.

BentoML exposes cumulative counters and a latency histogram on ``/metrics``; the window is the
difference between two scrapes. Health endpoints (``/livez``, ``/readyz``, ``/metrics``) are left
out so the monitor's own checks do not count as traffic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

REQUESTS = "bentoml_service_request"
DURATION = "bentoml_service_request_duration_seconds"
_IGNORED = {"/livez", "/readyz", "/healthz", "/metrics", "/docs.json", "/"}


@dataclass
class Scrape:
    """Cumulative figures of one ``/metrics`` read."""

    at: float
    requests: dict[str, float] = field(default_factory=dict)  # status class -> count
    buckets: dict[float, float] = field(default_factory=dict)  # le -> cumulative count


def parse_scrape(text: str, at: float) -> Scrape:
    scrape = Scrape(at=at)
    for family in text_string_to_metric_families(text):
        # counters appear as "x" or "x_total" depending on the exposition's TYPE line
        name = family.name.removesuffix("_total")
        if name not in (REQUESTS, DURATION):
            continue
        for sample in family.samples:
            if sample.labels.get("endpoint") in _IGNORED:
                continue
            if name == REQUESTS and sample.name.endswith("_total"):
                code = str(sample.labels.get("http_response_code", "0"))
                key = f"{code[:1]}xx"
                scrape.requests[key] = scrape.requests.get(key, 0.0) + sample.value
            elif name == DURATION and sample.name.endswith("_bucket"):
                le = float(sample.labels["le"])
                scrape.buckets[le] = scrape.buckets.get(le, 0.0) + sample.value
    return scrape


def _quantile(buckets: dict[float, float], q: float) -> float | None:
    """Prometheus-style histogram_quantile over cumulative bucket counts."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    total = buckets[bounds[-1]]
    rank = q * total
    previous_bound, previous_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return previous_bound
            in_bucket = count - previous_count
            fraction = (rank - previous_count) / in_bucket if in_bucket > 0 else 1.0
            return previous_bound + (bound - previous_bound) * fraction
        previous_bound, previous_count = bound, count
    return previous_bound


def window_stats(old: Scrape, new: Scrape) -> dict[str, float | None]:
    """Rates and p99 between two scrapes; None where there was no traffic to judge."""
    seconds = max(new.at - old.at, 1e-9)
    delta = {k: new.requests.get(k, 0.0) - old.requests.get(k, 0.0) for k in new.requests}
    if any(v < 0 for v in delta.values()):  # the service restarted: counters reset
        delta = dict(new.requests)
    total = sum(delta.values())
    buckets = {le: new.buckets[le] - old.buckets.get(le, 0.0) for le in new.buckets}
    if any(v < 0 for v in buckets.values()):
        buckets = dict(new.buckets)
    p99 = _quantile(buckets, 0.99)
    p50 = _quantile(buckets, 0.5)
    p95 = _quantile(buckets, 0.95)
    return {
        "p50_latency_ms": p50 * 1000 if p50 is not None and total else None,
        "p95_latency_ms": p95 * 1000 if p95 is not None and total else None,
        "request_rate": total / seconds,
        "requests": total,
        "error_rate_5xx": delta.get("5xx", 0.0) / total if total else None,
        "error_rate_4xx": delta.get("4xx", 0.0) / total if total else None,
        "p99_latency_ms": p99 * 1000 if p99 is not None and total else None,
    }
