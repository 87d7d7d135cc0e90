"""The reference profile: quantile bins and category shares, raw-row free."""

from __future__ import annotations

import numpy as np
import pytest

from bentomesh_contracts.features import Feature
from services.packager.profile import categorical_profile, numeric_profile, reference_profile


def test_numbers_fall_in_ten_bins_of_about_a_tenth_each() -> None:
    x = np.random.default_rng(0).normal(size=10_000)
    profile = numeric_profile(x)
    assert len(profile["edges"]) == 9
    assert len(profile["shares"]) == 10
    assert sum(profile["shares"]) == pytest.approx(1.0)
    assert all(abs(s - 0.1) < 0.01 for s in profile["shares"])
    assert profile["missing"] == 0.0
    assert profile["range"][0] == pytest.approx(x.min())


def test_a_column_of_few_values_gets_distinct_edges_only() -> None:
    profile = numeric_profile([0, 0, 0, 1, 1, 2, np.nan, np.nan])
    assert profile["edges"] == sorted(set(profile["edges"]))
    assert len(profile["shares"]) == len(profile["edges"]) + 1
    assert sum(profile["shares"]) == pytest.approx(1.0)
    assert profile["missing"] == pytest.approx(0.25)


def test_an_all_missing_column_says_so() -> None:
    assert numeric_profile([np.nan, np.nan])["missing"] == 1.0
    assert categorical_profile([None, None])["missing"] == 1.0


def test_categories_keep_the_most_frequent_and_count_the_rest_as_other() -> None:
    values = ["a"] * 50 + ["b"] * 30 + ["c"] * 15 + ["d"] * 5 + [None] * 100
    profile = categorical_profile(values, max_categories=2)
    assert profile["shares"] == {"a": 0.5, "b": 0.3}
    assert profile["other"] == pytest.approx(0.2)
    assert profile["missing"] == 0.5


def test_a_reference_profile_covers_every_feature_and_the_predictions() -> None:
    rng = np.random.default_rng(1)
    columns = {
        "monthly charges ($)": rng.uniform(10, 100, 200).tolist(),
        "plan": rng.choice(["basic", "pro"], 200).tolist(),
        "tenure": [None, *rng.integers(0, 70, 199).tolist()],
    }
    features = (
        Feature(name="monthly charges ($)"),
        Feature(name="plan", dtype="string"),
        Feature(name="tenure", dtype="int"),
    )
    profile = reference_profile(
        columns, features, rng.choice(["stays", "churns"], 200), "classification"
    )
    assert profile["rows"] == 200
    assert profile["features"]["plan"]["kind"] == "categorical"
    assert profile["features"]["tenure"]["missing"] == pytest.approx(1 / 200)
    assert set(profile["prediction"]["shares"]) == {"stays", "churns"}
    regression = reference_profile(columns, features, rng.normal(size=200), "regression")
    assert regression["prediction"]["kind"] == "numeric"
