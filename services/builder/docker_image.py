"""Container images of bentos, built through the Docker engine API with no registry needed.

The image starts from a local base image (``bentomesh base-image``) and installs the bento's
pinned requirements in their own layer, before the bento is copied: a second version of a model
with the same dependencies reuses that layer and rebuilds only the model layer.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from bentomesh_contracts.events import BentoBuilt, ImageReady
from services.builder.registry import auth_config, push
from services.builder.settings import BuilderSettings
from services.errors import EngineUnavailable, ImageBuildFailed
from services.runtime import serve_one
from services.runtime.bento_store import stored_bento
from services.runtime.serve_one import needs_supervisor

SERVICE_PORT = 3000
SERVICE_UID = 1034

DOCKERFILE = """\
FROM {base_image}
# BentoML writes only under BENTOML_HOME: on /tmp, the one writable path (a tmpfs at run time)
ENV BENTOML_HOME=/tmp/bentoml \\
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \\
    PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 BENTOML_DO_NOT_TRACK=True \\
    PROMETHEUS_MULTIPROC_DIR=/tmp/bentoml/prometheus_multiproc_dir
# dependency layer: cached across versions that share requirements
COPY requirements.txt /opt/bentomesh/requirements.txt
RUN /opt/venv/bin/pip install --no-cache-dir -r /opt/bentomesh/requirements.txt
COPY serve_one.py /opt/bentomesh/serve_one.py
# model layer: the bento with the models it references (served from <bento>/models)
COPY bento /home/bentoml/bento
USER {uid}
WORKDIR /home/bentoml
EXPOSE {port}
HEALTHCHECK --interval=10s --timeout=3s --start-period=90s --retries=3 \\
  CMD ["/opt/venv/bin/python", "-c", "import sys, urllib.request; \\
sys.exit(urllib.request.urlopen('http://127.0.0.1:{port}/readyz', timeout=2).status != 200)"]
CMD {command}
"""

# One worker: BentoML's worker alone (see services/runtime/serve_one.py); more: bentoml serve.
ONE_WORKER = ["/opt/venv/bin/python", "/opt/bentomesh/serve_one.py"]
SUPERVISED = ["/opt/venv/bin/bentoml"]


def serve_command(bento_path: Path) -> str:
    """The container's command (JSON form): ``bentoml serve`` the bento, alone or supervised."""
    import json

    program = SUPERVISED if needs_supervisor(bento_path) else [*ONE_WORKER, "bentoml"]
    where = ["--host", "0.0.0.0", "--port", str(SERVICE_PORT)]  # all of its container
    return json.dumps([*program, "serve", "/home/bentoml/bento", *where])


def docker_client(base_url: str | None = None) -> Any:
    from docker.client import DockerClient

    try:
        client = DockerClient(base_url=base_url) if base_url else DockerClient.from_env()
        client.ping()
    except Exception as exc:
        raise EngineUnavailable(f"Docker engine not reachable: {exc}") from exc
    return client


def requirements(bento_path: Path) -> str:
    """The bento's pinned packages plus the serving stack it runs on."""
    lines = []
    req = bento_path / "env" / "python" / "requirements.txt"
    if req.exists():
        lines += [ln.strip() for ln in req.read_text().splitlines() if ln.strip()]
    lines += [f"bentoml=={metadata.version('bentoml')}", "httptools", "uvloop"]
    return "\n".join(dict.fromkeys(lines)) + "\n"


def image_ref(settings: BuilderSettings, built: BentoBuilt) -> str:
    prefix = settings.image_prefix.rstrip("/")
    if settings.registry:
        prefix = f"{settings.registry.rstrip('/')}/{prefix}"
    return f"{prefix}/{built.model_name}:{built.model_version}"


def build_context(bento_tag: str, bento_path: Path, base_image: str, directory: Path) -> Path:
    """Bento, its models (a bento refers to models in the store, it does not contain them)."""
    import bentoml

    shutil.copytree(bento_path, directory / "bento")
    models = directory / "bento" / "models"
    models.mkdir(exist_ok=True)
    for ref in bentoml.bentos.get(bento_tag).info.models:
        model = bentoml.models.get(ref.tag)
        target = models / model.tag.name / str(model.tag.version)
        shutil.copytree(model.path, target)
        (models / model.tag.name / "latest").write_text(str(model.tag.version))
    _world_readable(directory)
    (directory / "requirements.txt").write_text(requirements(bento_path))
    shutil.copy(serve_one.__file__, directory / "serve_one.py")
    (directory / "Dockerfile").write_text(
        DOCKERFILE.format(
            base_image=base_image,
            uid=SERVICE_UID,
            port=SERVICE_PORT,
            command=serve_command(bento_path),
        )
    )
    return directory


def containerize(
    bento_tag: str, bento_path: Path, ref: str, settings: BuilderSettings
) -> tuple[Any, str]:
    """Build (or reuse) image ``ref`` of the bento; with a registry, push it. Returns the image
    and how deployers find it: ``ref`` on this engine, or ``repository@sha256:...`` pushed."""
    client = docker_client(settings.docker_host)
    try:
        image = _existing(client, ref, bento_tag, settings.base_image) or _build(
            client, bento_tag, bento_path, settings, ref
        )
        if settings.registry:
            password = settings.registry_password
            secret = password.get_secret_value() if password else None
            return image, push(client, ref, auth_config(settings.registry_username, secret))
        return image, ref
    finally:
        client.close()


def _world_readable(directory: Path) -> None:
    """Files stay owned by root in the image (the service cannot change them) but readable."""
    for path in [directory, *directory.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode | 0o444 | (0o111 if path.is_dir() else 0))


def build_image(built: BentoBuilt, settings: BuilderSettings) -> ImageReady:
    """The builder's step: image ``<prefix>/<model>:<version>`` of the bento."""
    ref = image_ref(settings, built)
    started = time.perf_counter()
    # The bento is taken by tag from the packager's store, never from a path the event names.
    image, ref = containerize(built.bento_tag, stored_bento(built.bento_tag), ref, settings)
    return ImageReady(
        model_name=built.model_name,
        model_version=built.model_version,
        bento_tag=built.bento_tag,
        backend="docker",
        image_ref=ref,
        image_digest=image.id,
        size_bytes=int(image.attrs.get("Size", 0)),
        build_seconds=round(time.perf_counter() - started, 3),
        deployment=built.deployment,
    )


def recipe_digest(base_image: str) -> str:
    """Identifies how an image is made: the Dockerfile template, the server script and the base
    image."""
    import hashlib

    server = Path(serve_one.__file__).read_text()
    return hashlib.sha256(f"{DOCKERFILE}\n{server}\n{base_image}".encode()).hexdigest()[:16]


def _fingerprint(bento_tag: str) -> str:
    """The registration the bento was built from: a store rebuilt from another artifact under
    the same tag gets another image."""
    import bentoml

    return str(bentoml.bentos.get(bento_tag).info.labels.get("bentomesh.fingerprint", ""))


def _existing(client: Any, ref: str, bento_tag: str, base_image: str) -> Any:
    """An image already built from this very bento by this recipe (a redelivery builds nothing)."""
    import docker.errors

    try:
        image = client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None
    labels = image.labels or {}
    same_bento = labels.get("bentomesh.bento") == bento_tag and labels.get(
        "bentomesh.fingerprint"
    ) == _fingerprint(bento_tag)
    return (
        image
        if same_bento and labels.get("bentomesh.recipe") == recipe_digest(base_image)
        else None
    )


def _build(
    client: Any, bento_tag: str, bento_path: Path, settings: BuilderSettings, ref: str
) -> Any:
    import docker.errors

    log: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bentomesh-image-") as tmp:
        context = build_context(bento_tag, bento_path, settings.base_image, Path(tmp))
        try:
            for chunk in client.api.build(
                path=str(context),
                tag=ref,
                rm=True,
                forcerm=True,
                decode=True,
                labels={
                    "bentomesh.bento": bento_tag,
                    "bentomesh.fingerprint": _fingerprint(bento_tag),
                    "bentomesh.recipe": recipe_digest(settings.base_image),
                },
                timeout=int(settings.build_timeout_s),
            ):
                if "stream" in chunk:
                    log.append(chunk["stream"].rstrip())
                if "error" in chunk:
                    raise ImageBuildFailed(
                        f"image build of {ref} failed: {chunk['error'].strip()}",
                        details="\n".join(log[-40:]),
                    )
        except docker.errors.APIError as exc:
            raise ImageBuildFailed(
                f"image build of {ref} failed: {exc}", details="\n".join(log[-40:])
            ) from exc
    return client.images.get(ref)
