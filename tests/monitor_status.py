"""Waiting on what a monitor says on its status API, instead of sleeping and hoping."""

from __future__ import annotations

import time
from typing import Any

import httpx


def wait_until_checked_healthy(
    monitor_url: str, deployment_id: str, limit: float = 120, token: str | None = None
) -> None:
    """Until the monitor at ``monitor_url`` leads, watches ``deployment_id`` and has checked it
    healthy, plus a moment for a second check: a failure after this is a transition it sees.
    ``token``: the control plane's, for a monitor beyond loopback."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"{monitor_url}/api/status"
    deadline = time.monotonic() + limit
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = httpx.get(url, headers=headers, timeout=10).json()
        rows = [r for r in status["deployments"] if r["deployment_id"] == deployment_id]
        if status["leading"] and rows and rows[0]["healthy"]:
            time.sleep(1.5)
            return
        time.sleep(0.3)
    raise AssertionError(f"the monitor never checked {deployment_id} healthy: {status}")
