"""The gateway's client balances over a version's replicas (real HTTP servers) and answers from
another replica when one is gone."""

from __future__ import annotations

import pytest

from services.deployer.upstream import Upstream, UpstreamError
from tests.model_server import ModelServer

pytestmark = pytest.mark.integration


async def test_requests_take_turns_and_a_gone_replica_is_passed_over() -> None:
    a, b = ModelServer().start(), ModelServer().start()
    upstream = Upstream(timeout=10)
    try:
        for _ in range(10):
            status, _, _ = await upstream.call("POST", [a.url, b.url], "predict", b"{}", [])
            assert status == 200
        labels = {"endpoint": "/predict", "http_response_code": "200"}
        served = [
            s.registry.get_sample_value("bentoml_service_request_total", labels) for s in (a, b)
        ]
        assert served == [5, 5]  # in turn
        b.stop()  # refused from now on
        for _ in range(6):
            status, _, _ = await upstream.call("POST", [a.url, b.url], "predict", b"{}", [])
            assert status == 200
        a.stop()
        with pytest.raises(UpstreamError, match="none of the 2 replicas"):
            await upstream.call("POST", [a.url, b.url], "predict", b"{}", [])
    finally:
        await upstream.aclose()
        a.stop()
        b.stop()
