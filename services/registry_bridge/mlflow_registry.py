"""The MLflow side of the bridge, through MLflow's own client (the ``mlflow`` extra)."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.errors import InvalidRegistration


@dataclass(frozen=True)
class VersionInfo:
    model: str
    version: str
    run_id: str | None
    created_s: float
    aliases: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    experiment: str
    params: dict[str, str]
    metrics: dict[str, float]


def _client(tracking_uri: str) -> Any:
    try:
        import mlflow
        from mlflow import MlflowClient
    except ImportError:  # pragma: no cover - the extra is part of the test environment
        raise InvalidRegistration(
            "the MLflow bridge needs MLflow's client: pip install 'bentomesh[mlflow]'"
        ) from None
    # models:/ URIs resolve through the process's registry URI: this process follows one server
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


class MlflowRegistry:
    """Reads versions, aliases, runs and artifacts; writes version tags."""

    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri
        self.client = _client(tracking_uri)

    def version(self, model: str, version: str) -> VersionInfo:
        return _info(self.client.get_model_version(model, version))

    def by_alias(self, model: str, alias: str) -> VersionInfo | None:
        from mlflow.exceptions import MlflowException

        try:
            return _info(self.client.get_model_version_by_alias(model, alias))
        except MlflowException:
            return None

    def models(self) -> list[str]:
        return [m.name for m in self.client.search_registered_models(max_results=1000)]

    def versions(self, model: str) -> list[VersionInfo]:
        found = self.client.search_model_versions(f"name = '{model}'", max_results=1000)
        return sorted((_info(v) for v in found), key=lambda v: int(v.version))

    def model_tags(self, model: str) -> dict[str, str]:
        return dict(self.client.get_registered_model(model).tags or {})

    def run(self, run_id: str) -> RunInfo:
        run = self.client.get_run(run_id)
        experiment = self.client.get_experiment(run.info.experiment_id)
        return RunInfo(
            run_id=run_id,
            experiment=experiment.name if experiment else run.info.experiment_id,
            params={k: str(v) for k, v in run.data.params.items()},
            metrics={k: float(v) for k, v in run.data.metrics.items()},
        )

    def download(self, model: str, version: str, folder: Path) -> Path:
        """The version's model folder, downloaded whole into ``folder`` (replaced)."""
        from mlflow.artifacts import download_artifacts

        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".download-", dir=folder.parent))
        try:
            download_artifacts(
                artifact_uri=f"models:/{model}/{version}",
                dst_path=str(staging),
                tracking_uri=self.tracking_uri,
            )
            shutil.rmtree(folder, ignore_errors=True)
            staging.rename(folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return folder

    def set_tags(self, model: str, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(model, version, key, value)


def _info(version: Any) -> VersionInfo:
    return VersionInfo(
        model=version.name,
        version=str(version.version),
        run_id=version.run_id or None,
        created_s=(version.creation_timestamp or 0) / 1000,
        aliases=tuple(getattr(version, "aliases", None) or ()),
        tags=dict(version.tags or {}),
    )
