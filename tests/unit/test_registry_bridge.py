"""The bridge's pure parts: MLflow's webhook signature, the MLmodel file, the ledger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from services.errors import InvalidRegistration
from services.registry_bridge.describe import slug
from services.registry_bridge.ledger import Ledger
from services.registry_bridge.mlflow_model import features_of, pins, read_model_folder, task_of
from services.registry_bridge.webhook import Refused, sign, verify

BODY = json.dumps(
    {
        "entity": "model_version_alias",
        "action": "created",
        "timestamp": "2026-11-30T10:00:00+00:00",
        "data": {"name": "churn", "alias": "champion", "version": "2"},
    }
).encode()


def headers(secret: str = "s", stamp: float = 1000.0, delivery: str = "d-1") -> dict[str, str]:
    return {
        "x-mlflow-delivery-id": delivery,
        "x-mlflow-timestamp": str(int(stamp)),
        "x-mlflow-signature": sign(secret, delivery, str(int(stamp)), BODY),
    }


def test_a_signed_delivery_says_what_happened_to_which_version() -> None:
    delivery = verify("s", headers(), BODY, now=1010, max_skew_s=300)
    assert (delivery.event, delivery.model, delivery.version, delivery.alias) == (
        "model_version_alias.created",
        "churn",
        "2",
        "champion",
    )


def test_the_signature_matches_mlflows_scheme() -> None:
    # v1,<base64 of HMAC-SHA256 over "<id>.<timestamp>.<body>">, as mlflow.webhooks.delivery
    import base64
    import hashlib
    import hmac

    digest = hmac.new(b"s", b"d-1.1000." + BODY, hashlib.sha256).digest()
    assert headers()["x-mlflow-signature"] == "v1," + base64.b64encode(digest).decode()


@pytest.mark.parametrize(
    ("given", "now", "words"),
    [
        (headers(secret="other"), 1000, "signature does not match"),
        (headers(stamp=0), 1000, "1000 s old"),
        ({"x-mlflow-timestamp": "1000"}, 1000, "needs the"),
        ({**headers(), "x-mlflow-timestamp": "soon"}, 1000, "not a Unix time"),
    ],
)
def test_a_forged_stale_or_incomplete_delivery_is_refused(
    given: dict[str, str], now: float, words: str
) -> None:
    with pytest.raises(Refused, match=words):
        verify("s", given, BODY, now=now, max_skew_s=300)


def test_the_signature_covers_the_body() -> None:
    with pytest.raises(Refused, match="signature"):
        verify("s", headers(), BODY.replace(b'"2"', b'"3"'), now=1000, max_skew_s=300)


def write_model(folder: Path, flavors: dict[str, object], **extra: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "MLmodel").write_text(yaml.safe_dump({"flavors": flavors, **extra}))
    return folder


def test_an_mlflow_sklearn_model_folder_is_read_without_unpickling(tmp_path: Path) -> None:
    inputs = [
        {"type": "double", "name": "monthly charges ($)", "required": True},
        {"type": "string", "name": "contract type", "required": True},
        {"type": "long", "name": "tenure", "required": True},
    ]
    folder = write_model(
        tmp_path,
        {"sklearn": {"pickled_model": "model.skops", "serialization_format": "skops"}},
        signature={"inputs": json.dumps(inputs), "outputs": '[{"type": "long"}]'},
        saved_input_example_info={"type": "dataframe", "artifact_path": "input_example.json"},
        run_id="r1",
    )
    (folder / "input_example.json").write_text(
        json.dumps({"columns": ["monthly charges ($)", "contract type", "tenure"], "data": []})
    )
    (folder / "requirements.txt").write_text("mlflow==3.17.2\nscikit-learn==1.9.1\nnumpy==2.4.6\n")
    found = read_model_folder(folder)
    assert (found.framework, found.model_file, found.task, found.run_id) == (
        "sklearn",
        "model.skops",
        "classification",
        "r1",
    )
    assert [(f.name, f.dtype) for f in found.features] == [
        ("monthly charges ($)", "float"),
        ("contract type", "string"),
        ("tenure", "int"),
    ]
    assert found.library_versions == {"scikit-learn": "1.9.1", "numpy": "2.4.6"}
    assert found.example is not None


def test_a_flavor_the_mesh_does_not_serve_is_named_in_the_refusal(tmp_path: Path) -> None:
    folder = write_model(tmp_path, {"python_function": {"loader_module": "my.module"}})
    with pytest.raises(InvalidRegistration, match="flavors python_function"):
        read_model_folder(folder)


def test_no_mlmodel_file_is_a_sentence(tmp_path: Path) -> None:
    with pytest.raises(InvalidRegistration, match="no readable MLmodel"):
        read_model_folder(tmp_path)


def test_the_task_comes_from_what_predict_returns() -> None:
    assert task_of('[{"type": "double"}]') == "regression"
    assert task_of('[{"type": "string"}]') == "classification"
    assert task_of(None) is None
    assert task_of('[{"type": "double"}, {"type": "double"}]') is None


def test_a_tensor_signature_leaves_the_features_to_the_model() -> None:
    assert features_of('[{"type": "tensor", "tensor-spec": {"dtype": "float64"}}]') == ()


def test_only_the_model_libraries_are_pinned(tmp_path: Path) -> None:
    (tmp_path / "r.txt").write_text("mlflow==3\nxgboost==3.1.0\ncloudpickle==3.1\nscipy>=1\n")
    assert pins(tmp_path / "r.txt") == {"xgboost": "3.1.0"}
    assert pins(tmp_path / "missing.txt") == {}


def test_a_new_version_is_published_once_an_alias_each_time_it_moves(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.db")
    assert ledger.claim("churn", "1", "version", chain_id="c1", event="{}")
    assert not ledger.due("churn", "1", "version")
    assert not ledger.claim("churn", "1", "version", chain_id="c1b", event="{}")
    assert ledger.due("churn", "2", "version")
    alias = "alias:champion"
    assert ledger.claim("churn", "2", alias, chain_id="c2", event="{}")
    assert not ledger.due("churn", "2", alias)
    assert ledger.claim("churn", "1", alias, chain_id="c3", event="{}")  # moved back
    assert ledger.due("churn", "2", alias)


def test_claimed_but_unsent_events_survive_a_restart(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.db")
    ledger.claim("churn", "1", "version", chain_id="c1", event='{"id": 1}')
    ledger.claim("churn", "2", "version", chain_id="c2", event='{"id": 2}')
    ledger.mark_sent("c1")
    since = ledger.since
    ledger.close()
    again = Ledger(tmp_path / "ledger.db")
    assert again.unsent() == [("c2", '{"id": 2}')]
    assert again.since == since
    row = again.by_chain("c1")
    assert row is not None
    assert (row.model, row.version, row.status) == ("churn", "1", "registered")


def test_a_refusal_is_recorded_and_not_tried_again(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.db")
    ledger.claim("x", "1", "version", chain_id=None, event=None, status="refused", detail="no")
    assert not ledger.due("x", "1", "version")
    assert ledger.unsent() == []


def test_mlflow_names_become_mesh_model_names() -> None:
    assert slug("Churn Model (EU)") == "churn-model-eu"
    assert slug("fraud_v2") == "fraud_v2"
    assert slug("***") == "model"


def test_an_empty_variable_configures_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compose passes unset variables as '': an empty webhook secret must not be a secret."""
    from services.registry_bridge.settings import BridgeSettings

    monkeypatch.setenv("BENTOMESH_MLFLOW_WEBHOOK_SECRET", "")
    monkeypatch.setenv("BENTOMESH_MLFLOW_ALIAS", "")
    monkeypatch.setenv("BENTOMESH_MLFLOW_MODELS", "churn, fraud")
    settings = BridgeSettings()
    assert settings.webhook_secret is None
    assert settings.trigger == "version"
    assert settings.poll_interval_s == 10.0  # no webhooks: polling is how it hears
    assert settings.follows("fraud")
    assert not settings.follows("other")


async def test_a_registration_the_broker_refused_is_sent_later_with_the_same_id(
    tmp_path: Path,
) -> None:
    """Claimed, then the publish fails: the webhook is answered 'unchanged' on MLflow's retry,
    and the next round sends the very event (same id) — nothing forgotten, nothing twice."""
    from typing import Any

    from bentomesh_contracts.codec import decode
    from bentomesh_contracts.envelope import new_chain
    from bentomesh_contracts.events import ModelRegistered
    from services.registry_bridge.bridge import Bridge
    from services.registry_bridge.settings import BridgeSettings

    event = new_chain(
        ModelRegistered(
            model_name="churn",
            model_version="1",
            task="classification",
            artifact_uri="/a/model.joblib",
            artifact_sha256="a" * 64,
        ),
        source="test",
    )
    sent: list[Any] = []
    broker_up = False

    async def publish(e: Any) -> None:
        if not broker_up:
            raise ConnectionError("broker unreachable")
        sent.append(e)

    async def resend(raw: str) -> None:
        await publish(decode(raw.encode()))

    class Untagged(Bridge):
        def registration(self, model: str, version: str) -> Any:
            return event

        async def _tag(self, model: str, version: str, tags: dict[str, str]) -> None:
            return None

    bridge = Untagged(BridgeSettings(), None, Ledger(tmp_path / "l.db"), tmp_path, publish)  # type: ignore[arg-type]
    with pytest.raises(ConnectionError):
        await bridge.offer("churn", "1")
    assert await bridge.offer("churn", "1") == "unchanged"  # MLflow delivering it again
    with pytest.raises(ConnectionError):
        await bridge.resend_unsent(resend)  # still down: stays claimed
    broker_up = True
    assert await bridge.resend_unsent(resend) == 1
    assert [e.id for e in sent] == [event.id]
    assert await bridge.resend_unsent(resend) == 0
