"""The deployer's rollout rules against an in-memory runtime (a fake behind the Runtime seam):
order of registrations, a start that fails, a runtime that appears after start-up."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from bentomesh_contracts.events import DeploymentPrefs, ImageReady
from services.deployer.rollout import Deployer, RolloutSettings
from services.deployer.runtimes import Runtime, Started
from services.deployer.state import Deployment, DeploymentStore
from services.errors import (
    NotDeployed,
    NothingToRollBack,
    RuntimeUnavailable,
    Superseded,
    UnsupportedPreference,
)
from tests.fakes import MemoryRuntime


def image(version: str, model: str = "m") -> ImageReady:
    return ImageReady(
        model_name=model,
        model_version=version,
        bento_tag=f"{model}:{version}",
        backend="process",
        size_bytes=1,
        build_seconds=0.0,
        deployment=DeploymentPrefs(),
    )


def deployer(tmp_path: Path, runtime: Runtime | None = None, **kwargs: object) -> Deployer:
    runtimes = {"process": runtime} if runtime is not None else {}
    return Deployer(
        DeploymentStore(tmp_path / "state.db"),
        runtimes,
        RolloutSettings(ready_timeout_s=1, drain_s=0),
        **kwargs,  # type: ignore[arg-type]
    )


def test_an_older_registration_never_replaces_a_newer_one(tmp_path: Path) -> None:
    runtime = MemoryRuntime()
    d = deployer(tmp_path, runtime)
    d.deploy(image("3"), cause_id="c3", chain_id="k3", registered_at=300.0)
    with pytest.raises(Superseded, match="registered before the serving version 3"):
        d.deploy(image("2"), cause_id="c2", chain_id="k2", registered_at=200.0)
    active = d.store.active("m")
    assert active is not None
    assert active.version == "3"
    assert len(runtime.running) == 1
    # a newer one does, and so does an event from a producer that sets no chain time
    assert d.deploy(image("4"), cause_id="c4", chain_id="k4", registered_at=400.0).model_version
    assert d.deploy(image("5"), cause_id="c5", chain_id="k5").model_version == "5"


def test_a_start_that_fails_leaves_no_starting_row(tmp_path: Path) -> None:
    d = deployer(tmp_path, MemoryRuntime(fail_start=True))
    with pytest.raises(ConnectionError):
        d.deploy(image("1"), cause_id="c1", chain_id="k1")
    assert [r.status for r in d.store.history("m")] == ["failed"]
    assert d.store.in_status("starting") == []


def test_a_runtime_missing_at_start_up_is_created_when_first_needed(tmp_path: Path) -> None:
    attempts: list[int] = []
    runtime = MemoryRuntime()

    def create() -> Runtime:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("engine not up yet")
        return runtime

    d = deployer(tmp_path, late_runtimes={"process": create})
    with pytest.raises(RuntimeUnavailable, match="unreachable"):
        d.deploy(image("1"), cause_id="c1", chain_id="k1")
    deployed = d.deploy(image("1"), cause_id="c1", chain_id="k1")
    assert deployed.model_version == "1"
    assert len(attempts) == 2
    assert d.runtime("process") is runtime


def test_rollback_to_a_named_version_serves_it_again(tmp_path: Path) -> None:
    runtime = MemoryRuntime()
    d = deployer(tmp_path, runtime)
    for v in ("1", "2", "3"):
        d.deploy(image(v), cause_id=f"c{v}", chain_id=f"k{v}", registered_at=float(v))
    back = d.rollback("m", to_version="1")
    assert back.version == "1"
    active = d.store.active("m")
    assert active is not None
    assert active.version == "1"
    assert len(runtime.running) == 1
    with pytest.raises(
        NothingToRollBack, match="never served version 9; earlier versions it served: 1, 2, 3"
    ):
        d.rollback("m", to_version="9")
    with pytest.raises(NothingToRollBack, match="already serves version 1"):
        d.rollback("m", to_version="1")
    assert d.rollback("m").version == "3"  # without a version: the one it replaced


def test_more_replicas_than_the_runtime_serves_are_refused_not_ignored(tmp_path: Path) -> None:
    runtime = MemoryRuntime()
    d = deployer(tmp_path, runtime)
    three = image("1").model_copy(update={"deployment": DeploymentPrefs(replicas=3)})
    with pytest.raises(UnsupportedPreference, match="replicas=3"):
        d.deploy(three, cause_id="c1", chain_id="k1")
    assert runtime.running == set()


def test_undeploy_stops_the_active_version_and_keeps_the_history(tmp_path: Path) -> None:
    runtime = MemoryRuntime()
    d = deployer(tmp_path, runtime)
    d.deploy(image("1"), cause_id="c1", chain_id="k1", registered_at=1.0)
    stopped = d.undeploy("m")
    assert (stopped.version, stopped.status) == ("1", "stopped")
    assert runtime.running == set()
    assert d.store.active("m") is None
    with pytest.raises(NotDeployed, match="m has no active deployment"):
        d.undeploy("m")
    d.reconcile()  # a restart serves nothing undeployed again
    assert runtime.running == set()


class FlakyRuntime(MemoryRuntime):
    """Fails to start one model; starts every other."""

    def __init__(self, broken: str) -> None:
        super().__init__()
        self.broken = broken

    def start(self, deployment: Deployment) -> Started:
        if deployment.model == self.broken and self.count >= 2:
            raise ConnectionError("409 Conflict: the container name is already in use")
        return super().start(deployment)


def test_one_deployment_that_cannot_restart_never_stops_the_supervision_of_others(
    tmp_path: Path,
) -> None:
    runtime = FlakyRuntime(broken="a")
    d = deployer(tmp_path, runtime)
    for model in ("a", "b"):
        d.deploy(
            image("1").model_copy(update={"model_name": model}), cause_id=model, chain_id=model
        )
    runtime.running.clear()  # both died
    restarted = d.supervise()
    assert [r.model for r in restarted] == ["b"]
    failed = d.store.active("a")
    assert failed is not None
    assert "restart failed: 409 Conflict" in (failed.detail or "")


def test_the_database_refuses_a_second_active_deployment_of_a_model(tmp_path: Path) -> None:
    import sqlite3

    d = deployer(tmp_path, MemoryRuntime())
    d.deploy(image("1"), cause_id="c1", chain_id="k1", registered_at=1.0)
    d.deploy(image("2"), cause_id="c2", chain_id="k2", registered_at=2.0)
    replaced = next(x for x in d.store.history("m") if x.status == "replaced")
    with pytest.raises(sqlite3.IntegrityError):
        d.store.activate(replaced.id, None)  # a bug that forgets to replace the active one
    active = d.store.active("m")
    assert active is not None
    assert active.version == "2"


def test_models_roll_out_side_by_side_and_one_models_versions_one_at_a_time(
    tmp_path: Path,
) -> None:
    runtime = MemoryRuntime(ready_after_s=0.5)
    d = deployer(tmp_path, runtime)

    def deploy(model: str, version: str) -> None:
        d.deploy(image(version, model), cause_id=f"{model}{version}", chain_id=model)

    other_models = [threading.Thread(target=deploy, args=(m, "1")) for m in ("a", "b", "c")]
    started = time.monotonic()
    for thread in other_models:
        thread.start()
    for thread in other_models:
        thread.join()
    assert runtime.most_getting_ready == 3  # the three waited for readiness together
    assert time.monotonic() - started < 1.2  # not 3 x 0.5 s

    runtime.most_getting_ready = 0
    versions = [threading.Thread(target=deploy, args=("a", v)) for v in ("2", "3")]
    for thread in versions:
        thread.start()
    for thread in versions:
        thread.join()
    assert runtime.most_getting_ready == 1  # one model: one version at a time
    assert [r.status for r in d.store.history("a")].count("active") == 1
    assert len(runtime.running) == 3  # a's newest, b, c: every replaced one stopped


def test_a_rollout_abandoned_mid_way_is_removed_only_once_its_model_is_free(
    tmp_path: Path,
) -> None:
    runtime = MemoryRuntime()
    d = deployer(tmp_path, runtime)
    with d.models.hold("m"):  # a rollout in progress (another replica, say)
        d.store.insert(
            Deployment(
                "m-1-x", "m", "1", "process", "m:1", "starting", "http://x", "h9", "k", "c",
                None, None, 1.0, 512, 0.0, 0.0,
            )
        )  # fmt: skip
        runtime.running.add("h9")
        d.supervise()
        assert [r.status for r in d.store.history("m")] == ["starting"]
    d.supervise()  # nobody holds the model now: its deployer is gone
    assert [r.status for r in d.store.history("m")] == ["failed"]
    assert "h9" not in runtime.running


def test_a_replaced_version_drains_until_its_rollout_stops_it(tmp_path: Path) -> None:
    """Supervision runs beside rollouts: its sweep must not cut a replaced version's drain
    short (in-flight requests), nor race the rollout to stop it."""
    runtime = MemoryRuntime()
    d = Deployer(
        DeploymentStore(tmp_path / "state.db"),
        {"process": runtime},
        RolloutSettings(ready_timeout_s=1, drain_s=1.0),
    )
    d.deploy(image("1"), cause_id="c1", chain_id="k1")
    rollout = threading.Thread(
        target=d.deploy, args=(image("2"),), kwargs={"cause_id": "c2", "chain_id": "k2"}
    )
    rollout.start()
    deadline = time.monotonic() + 5
    while [r.status for r in d.store.history("m")] != ["replaced", "active"]:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    d.supervise()  # during the drain
    assert "h1" in runtime.running  # still draining
    rollout.join()
    assert runtime.running == {"h2"}
