"""A bento's build context: the templates package, its ``service.json``, the bentofile.

The templates are real modules (``services/packager/templates/``); a build copies them as they
are under :data:`~services.packager.tasks.TEMPLATES_PACKAGE` and writes beside them the few
settings that vary per bento. Names and descriptions are data in JSON, never code.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import bentoml
import psutil

from services.errors import BuildFailed
from services.packager import bento_build
from services.packager.tasks import TEMPLATES_PACKAGE

TEMPLATES_DIR = Path(__file__).with_name("templates")
SERVICE_FILE = "service.json"  # read by templates/helpers.py:service_settings


def service_settings(
    *,
    model_tag: str,
    service_name: str,
    description: str = "",
    workers: int = 1,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What a template reads at import time besides the model's own stored config."""
    return {
        "model_tag": model_tag,
        "service_name": service_name,
        "description": description or f"BentoMesh service for {model_tag}",
        "workers": int(workers),
        "options": dict(options or {}),
    }


def bento_includes() -> tuple[str, ...]:
    """The bentofile ``include`` patterns of a build context."""
    return (f"{TEMPLATES_PACKAGE}/*.py", f"{TEMPLATES_PACKAGE}/{SERVICE_FILE}")


def write_build_context(directory: Path, settings: dict[str, Any], bentofile_yaml: str) -> Path:
    """Lay out ``directory`` for ``bentoml build``: the templates package and the bentofile."""
    directory.mkdir(parents=True, exist_ok=True)
    package = directory / TEMPLATES_PACKAGE
    package.mkdir(exist_ok=True)
    for module in TEMPLATES_DIR.glob("*.py"):
        shutil.copyfile(module, package / module.name)
    (package / SERVICE_FILE).write_text(json.dumps(settings, indent=2))
    (directory / "bentofile.yaml").write_text(bentofile_yaml)
    return directory


def find_bento(tag: str) -> bentoml.Bento | None:
    try:
        return bentoml.bentos.get(tag)
    except bentoml.exceptions.NotFound:
        return None


def build_contexts_dir() -> Path:
    """This process's directory for build contexts, in the system's temporary directory.

    A packager killed mid-build (``kill -9``) cannot remove its context; the directories of
    processes that are gone are removed here, on the next build of any packager."""
    base = Path(tempfile.gettempdir()) / f"bentomesh-builds-{os.getuid()}"
    base.mkdir(exist_ok=True)
    for other in base.iterdir():
        if other.name.isdigit() and not psutil.pid_exists(int(other.name)):
            shutil.rmtree(other, ignore_errors=True)
    own = base / str(os.getpid())
    own.mkdir(exist_ok=True)
    return own


def build_bento(context: Path, name: str, version: str, timeout: float) -> bentoml.Bento:
    """``bentoml build`` of ``context`` in a child of the warm fork server (see
    :mod:`services.packager.bento_build`); returns the stored bento.

    The tag is known (the bentofile names the bento, the version is fixed); the store is asked
    for it rather than trusting the build's own account."""
    server = bento_build.forkserver()
    receive, send = server.Pipe(duplex=False)
    child = server.Process(
        target=bento_build.build,
        args=(
            str(context),
            version,
            {**os.environ, "BENTOML_DO_NOT_TRACK": "True"},
            send,
            os.getpid(),
        ),
        name=f"bentoml-build-{name}",
    )
    child.start()
    send.close()
    report: str | None = None
    if receive.poll(timeout):  # the child's one message, or EOF when it died without one
        try:
            report = receive.recv()
        except EOFError:
            report = "the build process died without a word"
    else:
        report = f"the build took longer than {timeout:.0f}s"
        child.kill()
    child.join()
    receive.close()
    if report is not None or child.exitcode != 0:
        raise BuildFailed(
            f"bentoml build failed (exit code {child.exitcode})", details=report or None
        )
    tag = f"{name}:{version}"
    bento = find_bento(tag)
    if bento is None:
        raise BuildFailed(f"bentoml build did not store {tag}")
    return bento
