"""The monitor's watch set follows Deployed and Undeployed events, in whatever order the two
topics' consumers read them."""

from __future__ import annotations

from bentomesh_contracts import Deployed, Undeployed, follow_up, new_chain
from services.monitor.monitor import HealthMonitor
from services.monitor.service import WatchSet


def deployed(deployment_id: str, version: str) -> Deployed:
    return Deployed(
        deployment_id=deployment_id,
        model_name="churn",
        model_version=version,
        runtime="process",
        endpoint_url="http://127.0.0.1:9",
    )


def removed(deployment_id: str) -> Undeployed:
    return Undeployed(
        deployment_id=deployment_id,
        model_name="churn",
        model_version="1",
        runtime="process",
        reason="undeployed on request",
    )


def test_undeployed_stops_watching_and_a_late_deployed_of_it_is_ignored() -> None:
    monitor = HealthMonitor()
    watch = WatchSet(monitor)
    start = new_chain(deployed("d1", "1"), source="test")
    watch.apply(start)
    assert set(monitor.targets) == {"d1"}
    watch.remove(follow_up(start, removed("d1"), source="test"))
    assert monitor.targets == {}
    watch.apply(start)  # read again (another consumer, a restart): stays unwatched
    assert monitor.targets == {}
    watch.apply(new_chain(deployed("d2", "2"), source="test"))  # a new deployment is watched
    assert set(monitor.targets) == {"d2"}


def test_an_undeployed_read_before_its_deployed_still_wins() -> None:
    monitor = HealthMonitor()
    watch = WatchSet(monitor)
    start = new_chain(deployed("d1", "1"), source="test")
    watch.remove(follow_up(start, removed("d1"), source="test"))
    watch.apply(start)
    assert monitor.targets == {}
