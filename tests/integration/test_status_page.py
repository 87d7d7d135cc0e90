"""The status page in a real browser (headless Chromium): a registered model appears with its
event chain, and its alert shows when the deployment goes down, without a reload."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bentomesh_contracts.kafka import KafkaSettings
from services.mesh.local import LocalMesh
from tests.conftest import require
from tests.integration.conftest import registered_and_deployed
from tests.kafka_helpers import send_signed
from tests.model_server import ModelServer

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require(
        bool(CHROMIUM and CHROMEDRIVER),
        "Chromium and its driver",
        "apt-get install chromium chromium-driver (.ci/run does)",
    )
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


def _text(driver: Any, selector: str) -> str:
    """The text of every match, read in one script run.

    The page re-renders its tables on every poll; element handles fetched first and read later
    can go stale in between, while one script runs between two renders (the page's JavaScript
    is single-threaded)."""
    script = (
        "return Array.from(document.querySelectorAll(arguments[0]))"
        ".map(e => e.innerText).join(' ');"
    )
    return str(driver.execute_script(script, selector))


async def test_page_shows_the_deployment_its_chain_and_its_alert_live(
    monitor: LocalMesh, kafka: KafkaSettings, browser: Any
) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    server = ModelServer().start()
    registered, deployed = registered_and_deployed(server, "page-model", "7")
    await send_signed(registered, kafka)  # as a training job sends it
    await send_signed(deployed, kafka)
    url = next(p.url for p in monitor.processes if p.info.name == "monitor")
    assert httpx.get(f"{url}/ui").headers["content-type"].startswith("text/html")

    browser.get(f"{url}/ui")
    wait = WebDriverWait(browser, 30, poll_frequency=0.2)
    wait.until(lambda d: "healthy" in _text(d, 'td[data-health="page-model"]'))
    row = _text(browser, 'tr[data-model="page-model"]')
    assert "7" in row
    assert server.url.removeprefix("http://") in row
    chain = _text(browser, 'details[data-model="page-model"] summary')
    assert "page-model:7" in chain
    assert "deployed" in chain
    stages = browser.execute_script(
        "return Array.from(document.querySelectorAll('[data-timeline=\"page-model\"] span'))"
        ".map(s => s.dataset.stage);"
    )
    assert stages == ["deployer"]  # the one stage this chain went through, as a timeline bar

    for _ in range(40):  # traffic for the last-hour charts
        httpx.post(f"{server.url}/predict", json={"rows": [[1]]}, timeout=5)
    drawn = "return document.querySelectorAll('[data-history=\"page-model\"] svg polyline').length;"
    # request rate, p99 and 5xx share (0) drawn from the windows that saw the traffic
    wait.until(lambda d: d.execute_script(drawn) == 3)
    rows = httpx.get(f"{url}/api/status").json()["deployments"]
    history = next(r["history"] for r in rows if r["model"] == "page-model")
    assert max(r for r in history["request_rate"] if r is not None) > 0
    assert any(p is not None for p in history["p99_latency_ms"])

    server.stop()  # the deployment goes down; the page must show it without a reload
    wait.until(lambda d: "endpoint_down" in _text(d, 'td[data-alerts="page-model"]'))
    assert "down" in _text(browser, 'td[data-health="page-model"]')
    browser.find_element("css selector", 'details[data-model="page-model"] summary').click()
    wait.until(lambda d: "health.alert" in _text(d, 'details[data-model="page-model"] tbody'))
    events = _text(browser, 'details[data-model="page-model"] tbody')
    assert "model.registered" in events
    assert "deployment.ready" in events
    assert "endpoint_down" in events
