"""The bridge's decisions: which model versions to deploy, the event that asks for it, and what
to tell MLflow about the outcome. MLflow and Kafka come in as the seams."""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pandas as pd

from bentomesh_contracts.codec import encode
from bentomesh_contracts.envelope import CloudEvent, new_chain
from bentomesh_contracts.events import Deployed, ModelRegistered, StageFailed, Task
from bentomesh_contracts.publish import build_model_registered
from services.errors import InvalidRegistration
from services.registry_bridge.ledger import Ledger
from services.registry_bridge.mlflow_model import RENAMES, MlflowModel, read_model_folder
from services.registry_bridge.mlflow_registry import MlflowRegistry, VersionInfo
from services.registry_bridge.settings import BridgeSettings

logger = logging.getLogger("bentomesh.registry_bridge")

SOURCE = "bentomesh/registry-bridge"
TASK_TAG = "bentomesh.task"
Publish = Callable[[CloudEvent[Any]], Awaitable[None]]


def slug(name: str) -> str:
    """An MLflow model name as a mesh model name: lower case, runs of other characters '-'."""
    cleaned = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_")
    return cleaned[:63].rstrip("-_") or "model"


class Bridge:
    def __init__(
        self,
        settings: BridgeSettings,
        registry: MlflowRegistry,
        ledger: Ledger,
        artifact_root: Path,
        publish: Publish,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.ledger = ledger
        self.artifact_root = artifact_root
        self.publish = publish
        self._serial = asyncio.Lock()  # one registration at a time: downloads are the cost

    async def offer(self, model: str, version: str) -> str:
        """Publish ``ModelRegistered`` for ``version`` of ``model`` unless it is not followed or
        already published: 'published', 'unchanged', 'ignored' or 'refused: <reason>'."""
        trigger = self.settings.trigger
        if not self.settings.follows(model):
            return "ignored"
        async with self._serial:
            if not self.ledger.due(model, version, trigger):
                return "unchanged"
            try:
                event = await asyncio.to_thread(self.registration, model, version)
            except InvalidRegistration as exc:
                reason = str(exc)
                self.ledger.claim(
                    model,
                    version,
                    trigger,
                    chain_id=None,
                    event=None,
                    status="refused",
                    detail=reason,
                )
                logger.warning("%s version %s refused: %s", model, version, reason)
                await self._tag(
                    model,
                    version,
                    {"bentomesh.reason": reason[:5000], "bentomesh.status": "refused"},
                )
                return f"refused: {reason}"
            raw = encode(event).decode()
            if not self.ledger.claim(model, version, trigger, chain_id=event.chainid, event=raw):
                return "unchanged"
            await self.publish(event)
            self.ledger.mark_sent(event.chainid)
        logger.info(
            "%s version %s: ModelRegistered published (chain %s)", model, version, event.chainid
        )
        await self._tag(
            model, version, {"bentomesh.chain_id": event.chainid, "bentomesh.status": "registered"}
        )
        return "published"

    async def resend_unsent(self, resend: Callable[[str], Awaitable[None]]) -> int:
        """Events claimed but maybe never published (the bridge died in between): again."""
        unsent = self.ledger.unsent()
        for chain_id, raw in unsent:
            await resend(raw)
            self.ledger.mark_sent(chain_id)
        return len(unsent)

    async def poll_once(self) -> list[str]:
        """What the registry wants served now: the alias holder of each followed model, or
        each version created since the bridge first started."""
        outcomes = []
        models = self.settings.models or await asyncio.to_thread(self.registry.models)
        for model in models:
            for info in await asyncio.to_thread(self._targets, model):
                outcomes.append(f"{model}/{info.version}: {await self.offer(model, info.version)}")
        return outcomes

    def _targets(self, model: str) -> list[VersionInfo]:
        if self.settings.alias:
            holder = self.registry.by_alias(model, self.settings.alias)
            return [holder] if holder is not None else []
        since = self.ledger.since
        return [v for v in self.registry.versions(model) if v.created_s >= since]

    def registration(self, model: str, version: str) -> CloudEvent[ModelRegistered]:
        """Download the version into the artifact root and describe it as ``ModelRegistered``
        (blocking: run in a thread)."""
        info = self.registry.version(model, version)
        folder = self.registry.download(
            model, version, self.artifact_root / "mlflow" / slug(model) / version
        )
        found = read_model_folder(folder)
        artifact = _servable_file(folder, found)
        task = self._task(model, info, found)
        run = self.registry.run(info.run_id) if info.run_id else None
        tags = {
            "mlflow.model": model,
            "mlflow.version": version,
            "mlflow.model_uri": f"models:/{model}/{version}",
            "mlflow.tracking_uri": self.registry.tracking_uri,
            **({"mlflow.alias": self.settings.alias} if self.settings.alias else {}),
            **({"mlflow.run_id": run.run_id, "mlflow.experiment": run.experiment} if run else {}),
            **({"mlflow.model_id": found.model_id} if found.model_id else {}),
            **({f"mlflow.param.{k}": v for k, v in (run.params if run else {}).items()}),
        }
        example = _example_file(folder, found)
        data = build_model_registered(
            artifact,
            name=slug(model),
            version=version,
            task=task,
            framework=found.framework,
            features=found.features,
            metrics=run.metrics if run else None,
            tags=tags,
            input_example_path=example,
        )
        # the libraries the model was logged with, not the bridge's own
        data = data.model_copy(update={"library_versions": found.library_versions})
        return new_chain(ModelRegistered.model_validate(data.model_dump()), source=SOURCE)

    def _task(self, model: str, info: VersionInfo, found: MlflowModel) -> Task:
        said = info.tags.get(TASK_TAG) or self.registry.model_tags(model).get(TASK_TAG)
        if said in ("classification", "regression", "causal"):
            return said  # type: ignore[return-value]
        if found.task is not None:
            return found.task
        raise InvalidRegistration(
            f"{model} version {info.version} has no signature that tells a classifier from a "
            f"regressor; log it with a signature, or set the tag {TASK_TAG} on the version or "
            "the registered model to classification, regression or causal"
        )

    async def outcome(self, event: CloudEvent[Any]) -> bool:
        """Write a ``Deployed`` or ``StageFailed`` of a chain the bridge started back to MLflow;
        False when the chain is not the bridge's or MLflow already shows it."""
        row = self.ledger.by_chain(event.chainid)
        if row is None:
            return False
        data = event.data
        if isinstance(data, Deployed):
            status, tags = (
                "deployed",
                {
                    "bentomesh.endpoint": data.endpoint_url,
                    "bentomesh.deployment_id": data.deployment_id,
                    "bentomesh.runtime": data.runtime,
                    "bentomesh.status": "deployed",  # last: who sees it sees the rest
                },
            )
        elif isinstance(data, StageFailed) and row.status != "deployed":
            status, tags = (
                "failed",
                {
                    "bentomesh.reason": f"{data.stage}: {data.reason}"[:5000],
                    "bentomesh.status": "failed",
                },
            )
        else:
            return False
        if row.status == status:
            return False
        await self._tag(row.model, row.version, tags)
        self.ledger.set_status(event.chainid, status, tags.get("bentomesh.reason"))
        return True

    async def _tag(self, model: str, version: str, tags: dict[str, str]) -> None:
        for attempt in range(1, self.settings.max_attempts + 1):
            try:
                await asyncio.to_thread(self.registry.set_tags, model, version, tags)
                return
            except Exception as exc:  # MLflow down or refusing: the mesh goes on regardless
                logger.warning(
                    "tagging %s version %s in MLflow failed (%d of %d): %s",
                    model,
                    version,
                    attempt,
                    self.settings.max_attempts,
                    exc,
                )
                await asyncio.sleep(min(2.0**attempt, 10.0))


def _servable_file(folder: Path, found: MlflowModel) -> Path:
    """The model file under the name the packager reads it by (LightGBM's .lgb is text)."""
    path = folder / found.model_file
    if not path.is_file():
        raise InvalidRegistration(f"the model version has no file {found.model_file}")
    if path.suffix in RENAMES:
        renamed = path.with_suffix(RENAMES[path.suffix])
        shutil.copyfile(path, renamed)
        return renamed
    return path


def _example_file(folder: Path, found: MlflowModel) -> Path | None:
    """The logged input example as Parquet (types kept); None when none was logged."""
    if found.example is None:
        return None
    frame = pd.DataFrame(found.example["data"], columns=found.example["columns"])
    path = folder / "input_example.parquet"
    frame.to_parquet(path, index=False)
    return path
