from __future__ import annotations

import pytest

from services.monitor.window import parse_scrape, window_stats


def metrics(ok: int, errors: int, fast: int, slow: int) -> str:
    """BentoML-shaped metrics: ``fast`` requests under 10 ms, ``slow`` ones around 0.8 s."""
    total = fast + slow
    labels = 'endpoint="/predict",service_name="m"'
    return f"""
# TYPE bentoml_service_request counter
bentoml_service_request_total{{{labels},http_response_code="200"}} {ok}
bentoml_service_request_total{{{labels},http_response_code="500"}} {errors}
bentoml_service_request_total{{endpoint="/readyz",http_response_code="200",service_name="m"}} 999
# TYPE bentoml_service_request_duration_seconds histogram
bentoml_service_request_duration_seconds_bucket{{endpoint="/predict",le="0.01"}} {fast}
bentoml_service_request_duration_seconds_bucket{{endpoint="/predict",le="0.5"}} {fast}
bentoml_service_request_duration_seconds_bucket{{endpoint="/predict",le="1.0"}} {total}
bentoml_service_request_duration_seconds_bucket{{endpoint="/predict",le="+Inf"}} {total}
bentoml_service_request_duration_seconds_count{{endpoint="/predict"}} {total}
bentoml_service_request_duration_seconds_sum{{endpoint="/predict"}} 1.0
"""


def test_rates_and_error_share_over_the_window_ignore_health_checks() -> None:
    old = parse_scrape(metrics(ok=100, errors=0, fast=100, slow=0), at=0.0)
    new = parse_scrape(metrics(ok=190, errors=10, fast=200, slow=0), at=10.0)
    stats = window_stats(old, new)
    assert stats["request_rate"] == pytest.approx(10.0)
    assert stats["error_rate_5xx"] == pytest.approx(0.1)
    assert stats["p99_latency_ms"] is not None
    assert stats["p99_latency_ms"] <= 10.0


def test_p99_follows_slow_requests_in_the_window_only() -> None:
    old = parse_scrape(metrics(ok=1000, errors=0, fast=1000, slow=0), at=0.0)
    new = parse_scrape(metrics(ok=1100, errors=0, fast=1050, slow=50), at=5.0)
    p99 = window_stats(old, new)["p99_latency_ms"]
    assert p99 is not None
    assert 500 < p99 <= 1000


def test_no_traffic_means_nothing_to_judge() -> None:
    old = parse_scrape(metrics(ok=5, errors=0, fast=5, slow=0), at=0.0)
    stats = window_stats(old, parse_scrape(metrics(ok=5, errors=0, fast=5, slow=0), at=5.0))
    assert stats["request_rate"] == 0.0
    assert stats["error_rate_5xx"] is None
    assert stats["p99_latency_ms"] is None


def test_counter_reset_after_restart_counts_from_zero() -> None:
    old = parse_scrape(metrics(ok=500, errors=0, fast=500, slow=0), at=0.0)
    new = parse_scrape(metrics(ok=8, errors=2, fast=10, slow=0), at=5.0)
    assert window_stats(old, new)["error_rate_5xx"] == pytest.approx(0.2)
