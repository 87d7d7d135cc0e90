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

from contracts.events import BentoBuilt, ImageReady
from services.builder.settings import BuilderSettings
from services.runtime.errors import StageError, TransientStageError

SERVICE_PORT = 3000
SERVICE_UID = 1034

DOCKERFILE = """\
FROM {base_image}
ENV BENTOML_HOME=/home/bentoml/bentoml \\
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \\
    PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 BENTOML_DO_NOT_TRACK=True
# dependency layer: cached across versions that share requirements
COPY requirements.txt /opt/bentomesh/requirements.txt
RUN /opt/venv/bin/pip install --no-cache-dir -r /opt/bentomesh/requirements.txt
# model layer
COPY --chown={uid}:{uid} bento /home/bentoml/bento
USER {uid}
WORKDIR /home/bentoml
EXPOSE {port}
HEALTHCHECK --interval=10s --timeout=3s --start-period=90s --retries=3 \\
  CMD ["/opt/venv/bin/python", "-c", "import sys, urllib.request; \\
sys.exit(urllib.request.urlopen('http://127.0.0.1:{port}/readyz', timeout=2).status != 200)"]
CMD ["/opt/venv/bin/bentoml", "serve", "/home/bentoml/bento", "--host", "0.0.0.0", \\
     "--port", "{port}"]
"""


class ImageBuildFailed(StageError):
    error_type = "ImageBuildFailed"


class EngineUnavailable(TransientStageError):
    error_type = "EngineUnavailable"


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


def build_context(bento_path: Path, base_image: str, directory: Path) -> Path:
    shutil.copytree(bento_path, directory / "bento")
    (directory / "requirements.txt").write_text(requirements(bento_path))
    (directory / "Dockerfile").write_text(
        DOCKERFILE.format(base_image=base_image, uid=SERVICE_UID, port=SERVICE_PORT)
    )
    return directory


def build_image(built: BentoBuilt, settings: BuilderSettings) -> ImageReady:
    """Build (or reuse) ``<prefix>/<model>:<version>`` for the bento; push if a registry is set."""
    client = docker_client(settings.docker_host)
    ref = image_ref(settings, built)
    started = time.perf_counter()
    try:
        existing = _existing(client, ref, built.bento_tag)
        image = existing or _build(client, built, settings, ref)
        if settings.registry:
            repository, tag = ref.rsplit(":", 1)
            client.images.push(repository, tag=tag)
    finally:
        client.close()
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


def _existing(client: Any, ref: str, bento_tag: str) -> Any:
    """An image already built from this very bento (a redelivered event builds nothing)."""
    import docker.errors

    try:
        image = client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None
    labels = image.labels or {}
    return image if labels.get("bentomesh.bento") == bento_tag else None


def _build(client: Any, built: BentoBuilt, settings: BuilderSettings, ref: str) -> Any:
    import docker.errors

    log: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bentomesh-image-") as tmp:
        context = build_context(Path(built.bento_path), settings.base_image, Path(tmp))
        try:
            for chunk in client.api.build(
                path=str(context),
                tag=ref,
                rm=True,
                forcerm=True,
                decode=True,
                labels={
                    "bentomesh.model": built.model_name,
                    "bentomesh.version": built.model_version,
                    "bentomesh.bento": built.bento_tag,
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
