"""JSON Schemas of the events, for producers and consumers in any language."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bentomesh_contracts.envelope import CloudEvent
from bentomesh_contracts.events import EVENT_DATA_TYPES, EventData

SCHEMA_BASE = "https://bentomesh.dev/schemas/"


def event_json_schema(data_type: type[EventData]) -> dict[str, Any]:
    """Schema of the whole CloudEvent whose data is ``data_type``, with ``type`` pinned."""
    schema = CloudEvent[data_type].model_json_schema()  # type: ignore[valid-type]
    schema["properties"]["type"] = {
        "const": data_type.EVENT_TYPE,
        "description": "Event type.",
        "type": "string",
    }
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"{SCHEMA_BASE}{data_type.EVENT_TYPE}.json"
    schema["title"] = data_type.EVENT_TYPE
    schema["description"] = (data_type.__doc__ or "").strip()
    schema["x-kafka-topic"] = data_type.TOPIC
    return schema


def export_json_schemas(directory: Path) -> list[Path]:
    """Write ``<event type>.json`` for every event; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for data_type in EVENT_DATA_TYPES:
        path = directory / f"{data_type.EVENT_TYPE}.json"
        path.write_text(json.dumps(event_json_schema(data_type), indent=2) + "\n")
        written.append(path)
    return written
