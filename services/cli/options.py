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


ModelPath = Annotated[Path, typer.Option(exists=True, dir_okay=False, help="Model file.")]
NameOpt = Annotated[
    str, typer.Option("--model", "--name", "-m", help="Model name: lowercase, digits, '-'.")
]
VersionOpt = Annotated[str, typer.Option(help="Model version, e.g. 3 or 2026-11.1.")]
TaskOpt = Annotated[TaskChoice, typer.Option(help="What the model does.")]
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
TreatmentOpt = Annotated[str | None, typer.Option(help="Treatment name (causal).")]
OutcomeOpt = Annotated[str | None, typer.Option(help="Outcome name (causal).")]
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
    "causal": "--treatment/--outcome",
    "deployment": "--runtime",
    "artifact_uri": "--model-path",
}
"""Which flag sets which field of ModelRegistered: errors name the flag, not the field."""


@dataclass(frozen=True)
class Registration:
    """What the user said about the model on the command line."""

    model_path: ModelPath
    name: NameOpt
    version: VersionOpt
    task: TaskOpt
    features: FeaturesOpt = None
    framework: FrameworkOpt = None
    class_labels: LabelsOpt = None
    calibration: CalibrationOpt = None
    input_example: ExampleOpt = None
    treatment: TreatmentOpt = None
    outcome: OutcomeOpt = None

    def artifact_dirs(self) -> list[str]:
        """The directories of the files named here (the roots a local mesh must allow)."""
        paths = [self.model_path, *(p for p in (self.calibration, self.input_example) if p)]
        return [str(p.resolve().parent) for p in paths]

    def event_data(self, runtime: RuntimeChoice = RuntimeChoice.auto) -> ModelRegistered:
        """The ``ModelRegistered`` data for these options, or a clear error and exit."""
        from pydantic import ValidationError

        from bentomesh_contracts.publish import build_model_registered

        feature_names = split_list(self.features) or []
        try:
            return build_model_registered(
                self.model_path,
                name=self.name,
                version=self.version,
                task=self.task.value,
                features=feature_names,
                framework=self.framework.value if self.framework else None,
                class_labels=split_list(self.class_labels),
                calibration_path=self.calibration,
                input_example_path=self.input_example,
                treatment=self.treatment,
                outcome=self.outcome,
                deployment=DeploymentPrefs(runtime=runtime.value),
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            flag = FLAGS.get(str(first["loc"][0]), ".".join(map(str, first["loc"])))
            fail(f"{flag} {first.get('input')!r} is not valid: {first['msg']}", ExitCode.USAGE)


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
