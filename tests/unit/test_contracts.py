from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from bentomesh_contracts import (
    BentoBuilt,
    CloudEvent,
    DeploymentPrefs,
    EventDecodeError,
    Feature,
    ModelRegistered,
    StageFailed,
    decode,
    decode_as,
    encode,
    follow_up,
    new_chain,
    partition_key,
    topics,
)
from bentomesh_contracts.envelope import chain_time
from bentomesh_contracts.events import EVENT_DATA_TYPES
from bentomesh_contracts.publish import build_model_registered, sha256_file
from bentomesh_contracts.schema import event_json_schema, export_json_schemas


def registered(**overrides: object) -> ModelRegistered:
    fields: dict[str, object] = {
        "model_name": "churn",
        "model_version": "3",
        "task": "classification",
        "artifact_uri": "file:///models/churn.joblib",
        "artifact_sha256": "ab" * 32,
        "features": [Feature(name="age"), Feature(name="plan", dtype="int")],
    }
    fields.update(overrides)
    return ModelRegistered.model_validate(fields)


def test_event_round_trips_through_bytes() -> None:
    event = new_chain(registered(), source="training/churn")
    assert decode(encode(event)) == event
    assert decode_as(encode(event), ModelRegistered) == event


def test_new_chain_starts_lineage_with_its_own_id() -> None:
    event = new_chain(registered(), source="t")
    assert event.chainid == event.id
    assert event.causationid is None
    assert event.subject == "churn:3"
    assert event.type == "bentomesh.model.registered.v1"


def test_follow_up_keeps_chain_and_derives_a_stable_id() -> None:
    cause = new_chain(registered(), source="t")
    failed = StageFailed(
        stage="packager",
        reason="r",
        error_type="X",
        failed_event_id=cause.id,
        failed_event_type=cause.type,
        retryable=False,
    )
    first = follow_up(cause, failed, source="bentomesh/packager")
    again = follow_up(cause, failed, source="bentomesh/packager")
    assert first.id == again.id != cause.id
    assert first.chainid == cause.chainid
    assert first.causationid == cause.id
    other = follow_up(cause, failed, source="bentomesh/packager", key="second")
    assert other.id != first.id


def test_chain_time_is_the_registrations_time_all_along_the_chain() -> None:
    cause = new_chain(registered(), source="t")
    assert cause.chaintime is None  # the first event's own time is the chain's
    failed = StageFailed(
        stage="builder",
        reason="r",
        error_type="X",
        failed_event_id="x",
        failed_event_type="y",
        retryable=False,
    )
    second = follow_up(cause, failed, source="a")
    third = follow_up(second, failed, source="b")
    assert chain_time(cause) == second.chaintime == third.chaintime == cause.time
    assert decode(encode(third)).chaintime == cause.time


def test_unset_optional_envelope_attributes_are_left_out() -> None:
    body = json.loads(encode(new_chain(registered(), source="t")))
    assert "causationid" not in body
    assert body["specversion"] == "1.0"


def test_records_are_keyed_by_model_name() -> None:
    assert partition_key(new_chain(registered(), source="t")) == b"churn"


def test_hand_written_cloudevent_is_accepted() -> None:
    raw = """{
      "specversion": "1.0", "id": "evt-1", "source": "kcat", "time": "2026-11-27T10:00:00Z",
      "type": "bentomesh.model.registered.v1", "chainid": "chain-1",
      "data": {"model_name": "iris", "model_version": "1", "task": "classification",
               "artifact_uri": "/models/iris.joblib",
               "artifact_sha256": "%s",
               "features": [{"name": "sepal_length"}]}
    }""" % ("0" * 64)
    event = decode(raw)
    assert isinstance(event.data, ModelRegistered)
    assert event.data.deployment == DeploymentPrefs()
    assert event.data.features[0].dtype == "float"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b["data"].update(model_name="Not A Slug"), "data.model_name"),
        (lambda b: b["data"].update(artifact_sha256="xyz"), "data.artifact_sha256"),
        (lambda b: b["data"].update(task="clustering"), "data.task"),
        (lambda b: b["data"].update(surprise=1), "data.surprise"),
        (lambda b: b.pop("chainid"), "chainid"),
        (lambda b: b.update(specversion="0.3"), "specversion"),
        (lambda b: b["data"].update(features=[{"name": "a\nb"}]), "data.features.0.name"),
    ],
)
def test_validation_errors_name_the_field(mutate: object, field: str) -> None:
    body = json.loads(encode(new_chain(registered(), source="t")))
    mutate(body)  # type: ignore[operator]
    with pytest.raises(EventDecodeError) as info:
        decode(json.dumps(body))
    assert info.value.field == field
    assert field in str(info.value)


def test_type_must_match_the_data() -> None:
    body = json.loads(encode(new_chain(registered(), source="t")))
    body["type"] = "bentomesh.bento.built.v1"
    with pytest.raises(EventDecodeError, match="data"):
        decode(json.dumps(body))


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1, 2]", b'{"type": "nope"}'])
def test_garbage_is_a_decode_error(raw: bytes) -> None:
    with pytest.raises(EventDecodeError):
        decode(raw)


def test_events_are_frozen() -> None:
    event = registered()
    with pytest.raises(Exception, match="frozen"):
        event.model_name = "other"  # type: ignore[misc]


def test_every_event_type_has_a_versioned_topic() -> None:
    for data_type in EVENT_DATA_TYPES:
        assert data_type.TOPIC in topics.ALL_TOPICS
        assert data_type.TOPIC.endswith(".v1")
        assert data_type.EVENT_TYPE.endswith(".v1")


def test_every_field_is_described() -> None:
    def undescribed(schema: dict, defs: dict, seen: set) -> list[str]:
        missing = []
        for name, prop in schema.get("properties", {}).items():
            if "description" not in prop and "$ref" not in prop:
                missing.append(name)
            ref = prop.get("$ref") or next(
                (a["$ref"] for a in prop.get("anyOf", []) if "$ref" in a), None
            )
            ref = ref or prop.get("items", {}).get("$ref")
            if ref and ref not in seen:
                seen.add(ref)
                missing += undescribed(defs[ref.split("/")[-1]], defs, seen)
        return missing

    for data_type in EVENT_DATA_TYPES:
        schema = event_json_schema(data_type)
        assert undescribed(schema, schema.get("$defs", {}), set()) == [], data_type


def test_json_schema_export_writes_one_file_per_event(tmp_path: Path) -> None:
    written = export_json_schemas(tmp_path)
    assert len(written) == len(EVENT_DATA_TYPES)
    schema = json.loads((tmp_path / "bentomesh.model.registered.v1.json").read_text())
    assert schema["properties"]["type"]["const"] == "bentomesh.model.registered.v1"
    assert schema["x-kafka-topic"] == "bentomesh.model-registered.v1"
    assert "data" in schema["required"]


def test_publish_helper_builds_event_with_digest_and_versions(tmp_path: Path) -> None:
    artifact = tmp_path / "model.joblib"
    artifact.write_bytes(b"model bytes")
    data = build_model_registered(
        artifact, name="m", version="1", task="regression", features=["a", "b"]
    )
    assert data.artifact_sha256 == sha256_file(artifact)
    assert data.artifact_uri == artifact.resolve().as_uri()
    assert "numpy" in data.library_versions
    assert [f.name for f in data.features] == ["a", "b"]


def test_contracts_import_without_the_ml_stack() -> None:
    code = (
        "import sys, bentomesh_contracts; from bentomesh_contracts import ModelRegistered; "
        "heavy = [m for m in ('bentoml', 'sklearn', 'faststream', 'aiokafka', 'numpy') "
        "if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_bento_built_carries_deployment_preferences() -> None:
    built = BentoBuilt(
        model_name="m",
        model_version="1",
        framework="sklearn",
        task="classification",
        bento_tag="m:1",
        model_tag="m:1",
        template="classification",
        bento_path="/x",
        size_bytes=1,
        build_seconds=1.0,
        deployment=DeploymentPrefs(runtime="process"),
    )
    event = follow_up(new_chain(registered(), source="t"), built, source="p")
    assert isinstance(decode(encode(event)), CloudEvent)
    body = json.loads(encode(event))["data"]  # fields added later, unset: left out
    assert not {"serving", "reference_rows"} & set(body)
    compiled = built.model_copy(update={"serving": "compiled", "reference_rows": 10})
    again = decode(encode(follow_up(event, compiled, source="p"))).data
    assert (again.serving, again.reference_rows) == ("compiled", 10)


@pytest.mark.parametrize(
    "versions",
    [
        {"scikit-learn": "1.9.0\ngit+https://example.invalid/evil.git"},
        {"scikit-learn": "1.9 ; python_version>'3'"},
        {"scikit-learn @ https://example.invalid/x.whl": "1.9.0"},
        {"numpy": "https://example.invalid/numpy.whl"},
    ],
)
def test_library_versions_cannot_smuggle_a_requirement(versions: dict[str, str]) -> None:
    """They become `name==version` lines of the bento's requirements: a newline, a URL or a
    marker would make `bentoml build` install something else."""
    with pytest.raises(ValidationError, match="library_versions"):
        ModelRegistered(
            model_name="m",
            model_version="1",
            task="regression",
            artifact_uri="/a",
            artifact_sha256="a" * 64,
            library_versions=versions,
        )


@pytest.mark.parametrize("text", ["\x1b[2J\x1b[31mpwned", "a\rb", "nul\x00", "c1\x9b"])
def test_control_characters_in_any_string_are_refused(text: str) -> None:
    body = json.loads(encode(new_chain(registered(), source="t")))
    body["data"]["tags"] = {"note": text}
    with pytest.raises(EventDecodeError, match="control character"):
        decode(json.dumps(body))
    body["data"]["tags"] = {"note": "tabs\tand\nnewlines are text"}
    assert decode(json.dumps(body)).data.tags["note"].startswith("tabs")


def test_a_field_added_after_v1_is_written_only_when_used() -> None:
    """Consumers forbid unknown fields: one that predates ``log_predictions`` must still read
    every registration that does not ask for it."""
    plain = json.loads(encode(new_chain(registered(), source="test")))
    assert not {"log_predictions", "strategy", "rollout"} & set(plain["data"]["deployment"])
    asked = registered(deployment=DeploymentPrefs(log_predictions=0.1))
    body = json.loads(encode(new_chain(asked, source="test")))
    assert body["data"]["deployment"]["log_predictions"] == 0.1
    assert decode(encode(new_chain(asked, source="test"))).data == asked
