"""A local Python base image for model images, made without any image registry.

``debootstrap`` lays out a minimal Debian root filesystem from the Debian mirror this host's apt
already uses, ``docker import`` turns it into an image, and a small Dockerfile adds Python, a venv,
the non-root user and the host's extra CA certificates (so ``pip install`` works behind a
TLS-inspecting proxy).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.builder.docker_image import SERVICE_UID, docker_client
from services.errors import BaseImageError

ROOTFS_IMAGE = "bentomesh/debian:{suite}"
BASE_IMAGE = "bentomesh/python:3.11"
EXTRA_CA_DIR = Path("/usr/local/share/ca-certificates")

BASE_DOCKERFILE = """\
FROM {rootfs}
COPY ca/ /usr/local/share/ca-certificates/
RUN apt-get update \\
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates libgomp1 \\
 && update-ca-certificates \\
 && rm -rf /var/lib/apt/lists/*
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \\
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 UV_NATIVE_TLS=1
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir -U pip
RUN useradd --uid {uid} --create-home --shell /usr/sbin/nologin bentoml
"""


def host_debian_mirror(sources: tuple[Path, ...] = (Path("/etc/apt"),)) -> str:
    """The Debian mirror this host's apt uses (deb822 ``URIs:`` or one-line ``deb`` entries)."""
    candidates: list[str] = []
    for root in sources:
        files = [root / "sources.list", *sorted((root / "sources.list.d").glob("*"))]
        for path in files:
            if not path.is_file():
                continue
            text = path.read_text(errors="replace")
            candidates += re.findall(r"^URIs:\s*(\S+)", text, flags=re.MULTILINE)
            candidates += re.findall(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)", text, flags=re.MULTILINE)
    for uri in candidates:
        if uri.rstrip("/").endswith("/debian"):
            return uri
    raise BaseImageError(
        "no Debian mirror found in /etc/apt; pass --mirror with the URL of a Debian mirror"
    )


def _image_exists(client: Any, tag: str) -> bool:
    import docker.errors

    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def build_base_image(
    tag: str = BASE_IMAGE,
    *,
    suite: str = "bookworm",
    mirror: str | None = None,
    force: bool = False,
    progress: Callable[[str], None] = lambda _m: None,
) -> str:
    """Make ``tag`` (and its root filesystem image) unless it exists; returns the image id."""
    client = docker_client()
    try:
        if _image_exists(client, tag) and not force:
            progress(f"{tag} already exists")
            return str(client.images.get(tag).id)
        rootfs = ROOTFS_IMAGE.format(suite=suite)
        if force or not _image_exists(client, rootfs):
            _import_rootfs(client, rootfs, suite, mirror or host_debian_mirror(), progress)
        progress(f"building {tag} (python3, venv, non-root user, extra CA certificates)")
        with tempfile.TemporaryDirectory(prefix="bentomesh-base-") as tmp:
            context = Path(tmp)
            (context / "ca").mkdir()
            if EXTRA_CA_DIR.is_dir():
                for cert in EXTRA_CA_DIR.glob("*.crt"):
                    shutil.copy(cert, context / "ca" / cert.name)
            (context / "Dockerfile").write_text(
                BASE_DOCKERFILE.format(rootfs=rootfs, uid=SERVICE_UID)
            )
            log: list[str] = []
            for chunk in client.api.build(path=str(context), tag=tag, rm=True, decode=True):
                if "stream" in chunk:
                    line = chunk["stream"].rstrip()
                    log.append(line)
                    if line.startswith("Step "):
                        progress(line)
                if "error" in chunk:
                    tail = "\n".join(log[-20:])
                    raise BaseImageError(f"building {tag} failed: {chunk['error']}\n{tail}")
        return str(client.images.get(tag).id)
    finally:
        client.close()


def _import_rootfs(
    client: Any, rootfs: str, suite: str, mirror: str, progress: Callable[[str], None]
) -> None:
    if shutil.which("debootstrap") is None:
        raise BaseImageError("debootstrap is not installed (apt-get install debootstrap)")
    with tempfile.TemporaryDirectory(prefix="bentomesh-rootfs-") as tmp:
        target = Path(tmp) / "rootfs"
        progress(f"debootstrap {suite} (minbase) from {mirror}; about a minute")
        result = subprocess.run(
            ["debootstrap", "--variant=minbase", suite, str(target), mirror],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            tail = "\n".join(result.stdout.splitlines()[-10:] + result.stderr.splitlines()[-10:])
            raise BaseImageError(f"debootstrap failed ({result.returncode}):\n{tail}")
        archive = Path(tmp) / "rootfs.tar"
        progress(f"importing the root filesystem as {rootfs}")
        subprocess.run(["tar", "-C", str(target), "-cf", str(archive), "."], check=True)
        repository, image_tag = rootfs.rsplit(":", 1)
        client.api.import_image_from_file(str(archive), repository=repository, tag=image_tag)
