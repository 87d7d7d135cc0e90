"""The demo's three example models: a classifier, a regressor with calibration data for
conformal intervals, and a causal model (EconML LinearDML), each with a request to send it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bentomesh_contracts.events import DeploymentPrefs, ModelRegistered
from bentomesh_contracts.publish import build_model_registered

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
    from sklearn.linear_model import LassoCV, LogisticRegression

    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    prefs = DeploymentPrefs(runtime=runtime)

    say("training a churn pipeline on a CRM table (scikit-learn, strings and gaps)")
    table, churned = churn_table(1500)
    joblib.dump(churn_pipeline().fit(table, churned), directory / "churn.joblib")
    churn_rows = json.loads(table.head(2).to_json(orient="records"))

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
            {"rows": churn_rows},
            build_model_registered(  # no features: the packager reads them from the pipeline
                directory / "churn.joblib",
                name="churn",
                version="1",
                task="classification",
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


def churn_table(n: int = 800, seed: int = 0) -> tuple[Any, np.ndarray[Any, Any]]:
    """A churn table as a CRM exports it: spaced and punctuated names, strings, gaps; and who
    churned."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    table = pd.DataFrame(
        {
            "tenure (months)": rng.integers(0, 72, n).astype(float),
            "plan type": rng.choice(["basic", "pro", "max"], n),
            "monthly charges ($)": rng.normal(60, 20, n),
            "payment/method": rng.choice(["card", "bank transfer", "cheque"], n),
            "support calls": rng.poisson(1.5, n).astype(float),
        }
    )
    table.loc[::23, "monthly charges ($)"] = np.nan
    risk = (table["tenure (months)"] < 18) * 1.5 + (table["plan type"] == "basic") * 0.8
    risk = risk + 0.4 * table["support calls"] - 1.2 + rng.normal(0, 0.7, n)
    return table, np.where(risk > 0, "churns", "stays")


def churn_pipeline(handle_unknown: str = "ignore") -> Any:
    """Impute and scale the numbers, one-hot encode the strings, logistic regression."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numbers = ["tenure (months)", "monthly charges ($)", "support calls"]
    prepare = ColumnTransformer(
        [
            ("numbers", make_pipeline(SimpleImputer(), StandardScaler()), numbers),
            (
                "strings",
                OneHotEncoder(handle_unknown=handle_unknown),
                ["plan type", "payment/method"],
            ),
        ]
    )
    return make_pipeline(prepare, LogisticRegression(max_iter=500))


def call(gateway: str, example: Example) -> tuple[str, int, str]:
    """Send the example's request through the gateway: its curl line, status and body."""
    url = f"{gateway}/models/{example.name}/{example.route}"
    body = json.dumps(example.body)
    curl = f"curl -s -X POST {url} -H 'content-type: application/json' -d '{body}'"
    response = httpx.post(
        url, content=body, headers={"content-type": "application/json"}, timeout=60
    )
    return curl, response.status_code, response.text
