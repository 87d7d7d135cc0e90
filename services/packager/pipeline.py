"""From ``ModelRegistered`` to a built bento: verify, load, check, store, generate, build.

Plain functions, no Kafka: the packager service and ``bentomesh build`` both call :func:`package`.
Safe to repeat: the same name, version and digest reuse the stored model and the built bento.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bentoml
import numpy as np

from bentomesh_contracts.events import BentoBuilt, ModelRegistered
from services.errors import BuildFailed, VersionConflict
from services.packager import frameworks, inputs, intake
from services.packager.bentofile import BentoConfig, ContainerConfig, pinned_requirements
from services.packager.build_context import (
    build_bento,
    build_contexts_dir,
    find_bento,
    service_settings,
    write_build_context,
)
from services.packager.compile_trees import compile_trees
from services.packager.profile import profile_reference
from services.packager.settings import PackagerSettings
from services.packager.signature import Signature, infer_signature
from services.packager.store import save_model, serving_config, stored_config
from services.packager.tasks import TASK_PROFILES


class StageClock:
    """Seconds per packaging stage (``BentoBuilt.stage_seconds``), each since the one before."""

    def __init__(self) -> None:
        self.started = self.last = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = round(now - self.last, 3)
        self.last = now


@dataclass(frozen=True)
class PackagedBento:
    built: BentoBuilt
    reused: bool


def _serving_model(loaded: frameworks.LoadedModel, task: str) -> Any:
    """The object the served bento will call, to compute things exactly as it will."""
    from services.packager.templates.helpers import _LightGBMClassifier, _Regressor

    if loaded.artifact_format == "lightgbm-txt":
        return (
            _LightGBMClassifier(loaded.model)
            if task == "classification"
            else _Regressor(loaded.model)
        )
    return loaded.model


def _describe(signature: Signature) -> str:
    kinds = [f.dtype for f in signature.features]
    shape = "a DataFrame" if signature.frame else "a matrix"
    return f"takes {shape} of {len(kinds)} columns ({', '.join(sorted(set(kinds)))})"


def registration_fingerprint(event: ModelRegistered) -> str:
    """Digest of everything in the registration that shapes the bento (not metrics or tags)."""
    import hashlib

    body = event.model_dump_json(exclude={"metrics", "tags"})
    return hashlib.sha256(body.encode()).hexdigest()[:32]


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def package(
    event: ModelRegistered,
    *,
    chain_id: str,
    settings: PackagerSettings | None = None,
    progress: Any = None,
) -> PackagedBento:
    """Verify, load and check the artifact, store the model, generate and build the bento."""
    settings = settings or PackagerSettings()
    say = progress or (lambda _msg: None)
    clock = StageClock()
    roots = settings.roots()

    source = intake.resolve_artifact(event.artifact_uri, roots)
    # Opened once: hashed while copied into a private directory; only that copy is loaded and
    # stored, so swapping the file after the check changes nothing.
    with intake.private_copy(source, event.artifact_sha256) as artifact:
        say("artifact verified")
        clock.lap("verify")
        return _package_verified(event, artifact, chain_id, settings, say, clock)


def _package_verified(
    event: ModelRegistered,
    artifact: Path,
    chain_id: str,
    settings: PackagerSettings,
    say: Any,
    clock: StageClock,
) -> PackagedBento:
    roots = settings.roots()

    bento_tag = f"{event.model_name}:{event.model_version}"
    fingerprint = registration_fingerprint(event)
    existing = find_bento(bento_tag)
    if existing is not None:
        if existing.info.labels.get("bentomesh.fingerprint") != fingerprint:
            raise VersionConflict(
                f"bento {bento_tag} was already built from a different registration of "
                f"{event.model_name} version {event.model_version}; versions are immutable, "
                "register the change as a new version"
            )
        say("bento already built from this registration; reusing it")
        return PackagedBento(_built(event, existing, clock.started), reused=True)

    loaded = frameworks.load_artifact(artifact, event.task, event.framework)
    frameworks.check_task(loaded, event.task)
    serving = _serving_model(loaded, event.task)
    call = {"classification": "predict_proba", "regression": "predict"}.get(event.task, "effect")
    declared = event.features or inputs.example_features(event, roots)
    if declared:  # before probing: a wrong count is the clearer message
        frameworks.check_feature_count(loaded, len(declared))
    signature = infer_signature(loaded.model, declared, getattr(serving, call))
    frameworks.check_feature_count(loaded, len(signature.features))
    labels = None
    if event.task == "classification":
        known = frameworks.class_labels_of(loaded)
        labels = inputs.class_labels(event, signature, serving.predict_proba, known)
    scores = None
    calibration = (
        inputs.read_calibration(event, roots, signature) if event.task == "regression" else None
    )
    if calibration is not None:
        x_cal, y_cal = calibration
        scores = np.abs(y_cal - np.asarray(serving.predict(x_cal), dtype=float).ravel())
    say(f"loaded {loaded.framework} model ({loaded.artifact_format}); {_describe(signature)}")
    reference = inputs.read_reference(event, roots, signature)
    drift = (
        profile_reference(reference, signature, serving, event.task, labels) if reference else None
    )

    config = serving_config(event, loaded, signature, class_labels=labels, conformal_scores=scores)
    if drift is not None:
        config["reference"] = drift
        say(f"reference profiled: {drift['rows']} rows")
    with tempfile.TemporaryDirectory(prefix="bentomesh-trees-") as trees:
        clock.lap("load")
        compiled = compile_trees(loaded, serving, event.task, signature, reference, Path(trees))
        clock.lap("compile")
        config["serving"] = {"compiled": compiled.file, "note": compiled.note}
        say(compiled.note)
        files = [Path(trees) / compiled.file] if compiled.file else []
        stored = save_model(event, loaded, artifact, config, chain_id=chain_id, files=files)
    say(f"model {'reused' if stored.reused else 'saved'} as {stored.tag}")
    clock.lap("store")

    profile = TASK_PROFILES[event.task]
    options: dict[str, Any] = {}
    if event.task == "regression":
        options["return_intervals"] = scores is not None
    if event.task == "causal" and event.causal is not None:
        options.update(treatment=event.causal.treatment, outcome=event.causal.outcome)
    service = service_settings(
        model_tag=stored.tag,
        service_name=event.model_name.replace("-", "_"),
        description=f"{event.task} model {event.model_name} version {event.model_version}",
        workers=event.deployment.workers,
        options=options,
    )
    bento_config = BentoConfig(
        service=profile.service_ref,
        name=event.model_name,
        version=event.model_version,
        description=f"BentoMesh {event.task} service for {stored.tag}",
        packages=tuple(
            pinned_requirements(
                loaded.framework,
                dict(event.library_versions),
                frame=signature.frame,
                compiled=compiled.file is not None,
            )
        ),
        models=(stored.tag,),
        labels={
            "bentomesh.fingerprint": fingerprint,
            "bentomesh.task": event.task,
            "bentomesh.framework": loaded.framework,
            "bentomesh.template": profile.template,
            **({"bentomesh.reference_rows": str(drift["rows"])} if drift else {}),
        },
        container=ContainerConfig(base_image=settings.base_image),
    )
    # A temporary context, not one under $BENTOMESH_HOME: `bentoml build` refuses any build file
    # whose path has a hidden part, and the default home is ~/.bentomesh.
    with tempfile.TemporaryDirectory(
        prefix=f"bentomesh-build-{event.model_name}-", dir=build_contexts_dir()
    ) as tmp:
        context = Path(tmp)
        write_build_context(context, service, bento_config.to_yaml())
        say("building bento")
        try:
            bento = build_bento(
                context, event.model_name, event.model_version, settings.build_timeout_s
            )
        except BuildFailed:
            # A replica packaging the same registration at once (a rebalance, a scale-out) may
            # have stored it first: the same fingerprint is the same bento, and a success.
            raced = find_bento(bento_tag)
            if raced is None or raced.info.labels.get("bentomesh.fingerprint") != fingerprint:
                raise
            say("built meanwhile by another packager from this registration; reusing it")
            return PackagedBento(_built(event, raced, clock.started), reused=True)
    say(f"built {bento.tag}")
    clock.lap("build")
    built = _built(event, bento, clock.started, loaded.framework)
    update = {"features": signature.features, "stage_seconds": clock.seconds}
    return PackagedBento(built.model_copy(update=update), reused=False)


def _built(
    event: ModelRegistered,
    bento: bentoml.Bento,
    started: float,
    framework: str | None = None,
) -> BentoBuilt:
    labels = bento.info.labels
    models = bento.info.models
    return BentoBuilt(
        model_name=event.model_name,
        model_version=event.model_version,
        framework=framework or labels.get("bentomesh.framework", "sklearn"),
        task=event.task,
        bento_tag=str(bento.tag),
        model_tag=str(models[0].tag) if models else f"{event.model_name}:{event.model_version}",
        template=labels.get("bentomesh.template", event.task),
        bento_path=str(bento.path),
        size_bytes=_dir_size(Path(bento.path)),
        build_seconds=round(time.perf_counter() - started, 3),
        deployment=event.deployment,
        reference_rows=int(labels["bentomesh.reference_rows"])
        if "bentomesh.reference_rows" in labels
        else None,
        serving=stored_config(models[0].tag).get("serving", {}).get("note") if models else None,
    )
