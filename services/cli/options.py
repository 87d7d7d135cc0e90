"""The registration options, declared once and shared by ``register``, ``deploy`` and ``build``.

:func:`registration_options` adds them to a command's signature (Typer reads the signature), and
hands the command one :class:`Registration` instead of ten parameters.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from bentomesh_contracts.events import DeploymentPrefs, ModelRegistered
from services.cli.console import ExitCode, fail

F = TypeVar("F", bound=Callable[..., Any])


class TaskChoice(StrEnum):
    classification = "classification"
    regression = "regression"
    causal = "causal"


class FrameworkChoice(StrEnum):
    sklearn = "sklearn"
    xgboost = "xgboost"
    lightgbm = "lightgbm"
    econml = "econml"


class RuntimeChoice(StrEnum):
    auto = "auto"
    docker = "docker"
    process = "process"


ModelPath = Annotated[
    Path | None, typer.Option(exists=True, dir_okay=False, help="Model file (required).")
]
NameOpt = Annotated[
    str | None,
    typer.Option("--model", "--name", "-m", help="Model name: lowercase, digits, '-' (required)."),
]
VersionOpt = Annotated[str | None, typer.Option(help="Model version, e.g. 3 (required).")]
TaskOpt = Annotated[TaskChoice | None, typer.Option(help="What the model does (required).")]
FromMlflowOpt = Annotated[
    str | None,
    typer.Option(
        help="Instead of the options above: a model version in MLflow, models:/NAME/VERSION "
        "or models:/NAME@ALIAS (downloaded into the artifact root; signature, run and tags "
        "describe it).",
    ),
]
TrackingUriOpt = Annotated[
    str | None,
    typer.Option(
        help="The MLflow server of --from-mlflow.",
        show_default="BENTOMESH_MLFLOW_TRACKING_URI, else MLFLOW_TRACKING_URI",
    ),
]
FeaturesOpt = Annotated[
    str | None,
    typer.Option(
        help="Comma-separated feature names in the order the model takes them; needed only "
        "when the model does not record them (not fitted on a DataFrame).",
        show_default="read from the model",
    ),
]
FrameworkOpt = Annotated[
    FrameworkChoice | None, typer.Option(help="Model library.", show_default="detected")
]
LabelsOpt = Annotated[
    str | None, typer.Option(help="Comma-separated class names.", show_default="from the model")
]
CalibrationOpt = Annotated[
    Path | None, typer.Option(exists=True, help=".npz with X and y for regression intervals.")
]
ExampleOpt = Annotated[
    Path | None,
    typer.Option(
        exists=True,
        dir_okay=False,
        help="A few rows as the model takes them (CSV or Parquet): column names and types, "
        "when the model does not record them.",
    ),
]
ReferenceOpt = Annotated[
    Path | None,
    typer.Option(
        exists=True,
        dir_okay=False,
        help="A sample of the training data (CSV, Parquet, or .npz with X): profiled as the "
        "reference live traffic is compared with.",
    ),
]
TreatmentOpt = Annotated[str | None, typer.Option(help="Treatment name (causal).")]
OutcomeOpt = Annotated[str | None, typer.Option(help="Outcome name (causal).")]
LogPredictionsOpt = Annotated[
    float,
    typer.Option(
        min=0.0,
        max=1.0,
        help="Share of served rows the monitor publishes with their predictions to "
        "bentomesh.predictions.v1 (0: none).",
    ),
]
RuntimeOpt = Annotated[RuntimeChoice, typer.Option(help="Where the model runs.")]
ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Model name.")]

FLAGS = {
    "model_name": "--model",
    "model_version": "--version",
    "task": "--task",
    "features": "--features",
    "framework": "--framework",
    "class_labels": "--class-labels",
    "calibration": "--calibration",
    "input_example": "--input-example",
    "reference": "--reference",
    "causal": "--treatment/--outcome",
    "deployment": "--runtime",
    "log_predictions": "--log-predictions",
    "artifact_uri": "--model-path",
}
"""Which flag sets which field of ModelRegistered: errors name the flag, not the field."""


@dataclass(frozen=True)
class Registration:
    """What the user said about the model on the command line."""

    model_path: ModelPath = None
    name: NameOpt = None
    version: VersionOpt = None
    task: TaskOpt = None
    from_mlflow: FromMlflowOpt = None
    tracking_uri: TrackingUriOpt = None
    features: FeaturesOpt = None
    framework: FrameworkOpt = None
    class_labels: LabelsOpt = None
    calibration: CalibrationOpt = None
    input_example: ExampleOpt = None
    reference: ReferenceOpt = None
    treatment: TreatmentOpt = None
    outcome: OutcomeOpt = None
    log_predictions: LogPredictionsOpt = 0.0

    def artifact_dirs(self) -> list[str]:
        """The directories of the files named here (the roots a local mesh must allow)."""
        if self.from_mlflow:
            from bentomesh_contracts.training import default_artifact_dir

            return [str(default_artifact_dir().resolve())]
        extra = (self.calibration, self.input_example, self.reference)
        paths = [self.model_path, *(p for p in extra if p)]
        return [str(p.resolve().parent) for p in paths if p is not None]

    def event_data(self, runtime: RuntimeChoice = RuntimeChoice.auto) -> ModelRegistered:
        """The ``ModelRegistered`` data for these options, or a clear error and exit."""
        from pydantic import ValidationError

        from bentomesh_contracts.publish import build_model_registered

        prefs = DeploymentPrefs(runtime=runtime.value, log_predictions=self.log_predictions)
        if self.from_mlflow:
            return from_mlflow(self.from_mlflow, self.tracking_uri, prefs)
        required = (
            ("--model-path", self.model_path),
            ("--model", self.name),
            ("--version", self.version),
            ("--task", self.task),
        )
        missing = [flag for flag, given in required if given is None]
        if missing or self.model_path is None or self.task is None:
            fail(
                f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} required (or "
                "--from-mlflow models:/NAME/VERSION)",
                ExitCode.USAGE,
            )
        feature_names = split_list(self.features) or []
        try:
            return build_model_registered(
                self.model_path,
                name=self.name or "",
                version=self.version or "",
                task=self.task.value,
                features=feature_names,
                framework=self.framework.value if self.framework else None,
                class_labels=split_list(self.class_labels),
                calibration_path=self.calibration,
                input_example_path=self.input_example,
                reference_path=self.reference,
                treatment=self.treatment,
                outcome=self.outcome,
                deployment=prefs,
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            flag = FLAGS.get(str(first["loc"][0]), ".".join(map(str, first["loc"])))
            fail(f"{flag} {first.get('input')!r} is not valid: {first['msg']}", ExitCode.USAGE)


def from_mlflow(uri: str, tracking_uri: str | None, prefs: DeploymentPrefs) -> ModelRegistered:
    """``ModelRegistered`` for a version in MLflow, or a clear error and exit."""
    import os

    from bentomesh_contracts.training import default_artifact_dir
    from services.errors import InvalidRegistration
    from services.registry_bridge.describe import describe_version, resolve
    from services.registry_bridge.mlflow_registry import MlflowRegistry
    from services.registry_bridge.settings import BridgeSettings

    server = tracking_uri or BridgeSettings().tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not server:
        fail(
            "--from-mlflow needs the MLflow server: --tracking-uri, or set "
            "BENTOMESH_MLFLOW_TRACKING_URI",
            ExitCode.USAGE,
        )
    try:
        registry = MlflowRegistry(server)
        model, version, alias = resolve(registry, uri)
        data = describe_version(registry, model, version, default_artifact_dir(), alias=alias)
    except InvalidRegistration as exc:
        fail(f"{uri}: {exc}", ExitCode.USAGE)
    except Exception as exc:  # MLflow unreachable or refusing
        fail(f"{uri}: MLflow at {server} answered: {exc}", ExitCode.UNREACHABLE)
    return data.model_copy(update={"deployment": prefs})


def split_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


_FIELDS = tuple(f.name for f in fields(Registration))


def registration_options(command: F) -> F:
    """Give ``command`` the registration options; it receives them as ``registration``."""
    own = inspect.signature(command, eval_str=True).parameters
    shared = inspect.signature(Registration, eval_str=True).parameters
    params = [*shared.values(), *(p for name, p in own.items() if name != "registration")]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        registration = Registration(**{name: kwargs.pop(name) for name in _FIELDS})
        return command(registration=registration, **kwargs)

    wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {}
    return wrapper  # type: ignore[return-value]
