"""``bentomesh demo``: the whole mesh on this machine, three kinds of model, end to end.

Trains a classifier, a regressor with calibration data for conformal intervals, and a causal
model (EconML LinearDML); registers all three; follows each chain stage by stage; calls each
stable endpoint with a real request and shows the response; then crashes one deployment and
shows the monitor's ``HealthAlert`` firing and, once the deployer has restarted it, resolving.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bentomesh_contracts import topics
from bentomesh_contracts.envelope import CloudEvent, new_chain
from bentomesh_contracts.events import DeploymentPrefs, HealthAlert, ModelRegistered, StageFailed
from bentomesh_contracts.kafka import KafkaSettings
from bentomesh_contracts.publish import build_model_registered, send_event, signed
from services.mesh.follow import ChainFollower

Say = Callable[[str], None]


@dataclass(frozen=True)
class Example:
    name: str
    task: str
    route: str
    body: dict[str, Any]
    registration: ModelRegistered


def _rows(x: np.ndarray[Any, Any], names: list[str]) -> list[dict[str, float]]:
    return [dict(zip(names, map(lambda v: round(float(v), 3), r), strict=True)) for r in x]


def train_examples(directory: Path, runtime: str, say: Say) -> list[Example]:
    """Three small models with synthetic data, saved under ``directory``."""
    import joblib
    from econml.dml import LinearDML
    from lightgbm import LGBMRegressor
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LassoCV, LogisticRegression

    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    prefs = DeploymentPrefs(runtime=runtime)

    say("training a churn classifier (scikit-learn HistGradientBoosting)")
    churn_features = ["tenure_months", "monthly_spend", "support_calls", "discount"]
    x = rng.normal(size=(1500, 4))
    y = 0.8 * x[:, 2] - x[:, 0] + 0.3 * x[:, 1] + rng.normal(scale=0.5, size=1500) > 0
    joblib.dump(
        HistGradientBoostingClassifier(max_iter=50).fit(x, y.astype(int)),
        directory / "churn.joblib",
    )

    say("training a demand regressor (LightGBM) with calibration data for intervals")
    demand_features = ["price", "promo", "temperature"]
    xr = rng.normal(size=(3000, 3))
    yr = 10 - 3 * xr[:, 0] + 2 * xr[:, 1] + np.sin(xr[:, 2]) + rng.normal(scale=1.0, size=3000)
    joblib.dump(
        LGBMRegressor(n_estimators=80, verbose=-1).fit(xr[:2000], yr[:2000]),
        directory / "demand.joblib",
    )
    np.savez(directory / "demand-calibration.npz", X=xr[2000:], y=yr[2000:])

    say("fitting an uplift model (EconML LinearDML, randomized treatment)")
    uplift_features = ["age", "visits"]
    xc = rng.normal(size=(2000, 2))
    t = rng.binomial(1, 0.5, size=2000)
    yc = (1 + 0.5 * xc[:, 0]) * t + xc[:, 1] + rng.normal(scale=0.5, size=2000)
    joblib.dump(
        LinearDML(
            model_y=LassoCV(), model_t=LogisticRegression(), discrete_treatment=True, random_state=0
        ).fit(yc, t, X=xc),
        directory / "uplift.joblib",
    )

    return [
        Example(
            "churn",
            "classification",
            "predict_proba",
            {"rows": _rows(x[:2], churn_features)},
            build_model_registered(
                directory / "churn.joblib",
                name="churn",
                version="1",
                task="classification",
                features=churn_features,
                class_labels=["stays", "churns"],
                deployment=prefs,
            ),
        ),
        Example(
            "demand",
            "regression",
            "predict",
            {"rows": _rows(xr[:2], demand_features), "confidence": 0.9},
            build_model_registered(
                directory / "demand.joblib",
                name="demand",
                version="1",
                task="regression",
                features=demand_features,
                calibration_path=directory / "demand-calibration.npz",
                deployment=prefs,
            ),
        ),
        Example(
            "uplift",
            "causal",
            "effect_interval",
            {"rows": _rows(xc[:2], uplift_features), "alpha": 0.1},
            build_model_registered(
                directory / "uplift.joblib",
                name="uplift",
                version="1",
                task="causal",
                features=uplift_features,
                treatment="coupon",
                outcome="spend",
                deployment=prefs,
            ),
        ),
    ]


async def deploy_all(
    kafka: KafkaSettings, examples: list[Example], on_event: Callable[[Any], None]
) -> dict[str, CloudEvent[Any]]:
    """Register every example and wait for each chain's final event, keyed by model name."""
    follower = ChainFollower(kafka)
    await follower.start()
    try:
        events = {
            ex.name: signed(new_chain(ex.registration, source="bentomesh/demo")) for ex in examples
        }
        for event in events.values():
            await send_event(event, kafka)
        done = await follower.until_all_done({e.chainid for e in events.values()}, on_event, 900)
    finally:
        await follower.stop()
    return {name: done[event.chainid] for name, event in events.items()}


def call(gateway: str, example: Example) -> tuple[str, int, str]:
    url = f"{gateway}/models/{example.name}/{example.route}"
    body = json.dumps(example.body)
    curl = f"curl -s -X POST {url} -H 'content-type: application/json' -d '{body}'"
    response = httpx.post(
        url, content=body, headers={"content-type": "application/json"}, timeout=60
    )
    return curl, response.status_code, response.text


def run(kafka: KafkaSettings, examples: list[Example], say: Say) -> dict[str, CloudEvent[Any]]:
    started = time.perf_counter()

    def show(event: CloudEvent[Any]) -> None:
        from services.status.render import summarize

        kind = event.type.removeprefix("bentomesh.").removesuffix(".v1")
        say(
            f"{time.perf_counter() - started:6.1f}s  {event.subject or '?':<10} {kind:<18} "
            f"{summarize(event.data)}"
        )

    results = asyncio.run(deploy_all(kafka, examples, show))
    failed = [e for e in results.values() if isinstance(e.data, StageFailed)]
    if failed:
        raise RuntimeError("; ".join(f"{e.subject}: {e.data.reason}" for e in failed))
    return results


@dataclass(frozen=True)
class Outage:
    model: str
    rule: str
    fired_after_s: float
    resolved_after_s: float


def crash(deployment: dict[str, Any]) -> None:
    """Kill a deployment the hard way: the deployer and the monitor must notice on their own."""
    if deployment["runtime"] == "process":
        os.killpg(int(deployment["handle"]), signal.SIGKILL)  # bentoml serve and its workers
    else:
        from docker.client import DockerClient

        DockerClient.from_env().containers.get(deployment["handle"]).kill()


async def outage(kafka: KafkaSettings, deployment: dict[str, Any], limit_s: float) -> Outage:
    """Crash one deployment and time its ``HealthAlert`` firing, then resolving (after the
    deployer restarts it)."""
    follower = ChainFollower(kafka, (topics.HEALTH_ALERT,))
    await follower.start()
    try:
        started = time.perf_counter()
        crash(deployment)

        def alert(state: str) -> Callable[[Any], bool]:
            return lambda e: (
                isinstance(e.data, HealthAlert)
                and e.data.deployment_id == deployment["id"]
                and e.data.state == state
            )

        fired = await follower.until(alert("firing"), limit_s, "HealthAlert firing")
        fired_after = time.perf_counter() - started
        resolved = await follower.until(
            lambda e: alert("resolved")(e) and e.data.rule == fired.data.rule,
            limit_s,
            "HealthAlert resolved",
        )
        return Outage(
            deployment["model"],
            resolved.data.rule,
            fired_after,
            time.perf_counter() - started,
        )
    finally:
        await follower.stop()
