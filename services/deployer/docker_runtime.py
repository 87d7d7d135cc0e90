"""Deployments as Docker containers: non-root, read-only, no capabilities, with resource limits."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from bentomesh_contracts.events import ImageReady
from services.deployer.runtimes import Started, http_ready, owner_id
from services.deployer.settings import DeployerSettings
from services.deployer.state import Deployment
from services.errors import ImagePullFailed, NotBuiltHere, NotReadyError
from services.runtime.bento_store import own_bento
from services.runtime.ports import free_port

SERVICE_PORT = 3000
SERVICE_UID = "1034"


def _repository(name: str) -> str:
    """``host:5000/bentomesh/m`` of ``host:5000/bentomesh/m:3`` or ``...@sha256:...``."""
    name = name.split("@", 1)[0]
    head, _, tail = name.rpartition(":")
    return head if head and "/" not in tail else name


class DockerRuntime:
    name = "docker"

    def __init__(self, settings: DeployerSettings) -> None:
        from docker.client import DockerClient

        self.client = (
            DockerClient(base_url=settings.docker_host)
            if settings.docker_host
            else DockerClient.from_env()
        )
        self.client.ping()
        self.host = settings.public_host
        self.image_prefix = settings.image_prefix.strip("/")
        self.network = settings.docker_network
        self.owner = owner_id(settings.db_path())
        self.registry = (settings.registry or "").rstrip("/")
        password = settings.registry_password
        self.auth = (
            {"username": settings.registry_username, "password": password.get_secret_value()}
            if settings.registry_username and password
            else None
        )

    def _placement(self, name: str) -> tuple[dict[str, Any], str]:
        """Container options that make it reachable, and the endpoint URL it gets."""
        if self.network:
            return {"network": self.network}, f"http://{name}:{SERVICE_PORT}"
        port = free_port()
        return (
            {"ports": {f"{SERVICE_PORT}/tcp": ("127.0.0.1", port)}},
            f"http://{self.host}:{port}",
        )

    def pinned(self, image: ImageReady) -> str:
        """The id of the image the builder built for ``image``: on this engine already, or
        pulled by digest from the mesh's registry (nowhere else), named under the image prefix
        and labelled with the bento it was built from."""
        import docker.errors

        digest = image.image_digest or ""
        if not digest.startswith("sha256:"):
            raise NotBuiltHere(
                f"{image.model_name}:{image.model_version} names no image id; only images the "
                "builder built and pinned are run"
            )
        try:
            found = self.client.images.get(digest)
            own_bento(image.model_name, image.model_version, image.bento_tag)  # built here
        except docker.errors.ImageNotFound:  # built elsewhere: the signed digest is the proof
            found = self._pulled(image, digest)
        wanted = f"{self.image_prefix}/{image.model_name}"
        names = [*found.tags, *found.attrs.get("RepoDigests", [])]
        repositories = {_repository(name) for name in names}
        if not any(r == wanted or r.endswith(f"/{wanted}") for r in repositories):
            raise NotBuiltHere(f"image {digest} is not tagged {wanted}; not built by the builder")
        if (found.labels or {}).get("bentomesh.bento") != image.bento_tag:
            raise NotBuiltHere(f"image {digest} was not built from bento {image.bento_tag}")
        return str(found.id)

    def _pulled(self, image: ImageReady, digest: str) -> Any:
        """Pull ``image_ref`` (``REGISTRY/...@sha256:``) when it is in the mesh's registry; the
        pulled image must be the one the builder built (same image id)."""
        import docker.errors

        ref = image.image_ref or ""
        repository, _, manifest = ref.partition("@")
        if not self.registry:
            raise NotBuiltHere(
                f"image {digest} is not on this engine, and no registry to pull it from "
                f"(BENTOMESH_REGISTRY is unset); images are pulled from nowhere else: {ref!r}"
            )
        if not (repository.startswith(f"{self.registry}/") and manifest):
            raise NotBuiltHere(
                f"image {digest} is not on this engine, nor in {self.registry} by digest: {ref!r}"
            )
        said: list[str] = []
        try:
            for chunk in self.client.api.pull(
                repository, tag=manifest, stream=True, decode=True, auth_config=self.auth
            ):
                if "error" in chunk:
                    raise ImagePullFailed(
                        f"pull of {ref} failed: {chunk['error'].strip()}",
                        details="\n".join(said[-20:]),
                    )
                said.append(str(chunk.get("status", "")))
        except docker.errors.APIError as exc:
            reason = exc.explanation or str(exc)
            raise ImagePullFailed(f"pull of {ref} failed: {reason}") from exc
        found = self.client.images.get(ref)
        if found.id != digest:
            raise NotBuiltHere(f"{ref} is image {found.id}, not {digest} that the builder built")
        return found

    def start(self, deployment: Deployment) -> Started:
        name = f"bentomesh-{deployment.id}"
        self._remove_exited(name)
        placement, endpoint = self._placement(name)
        container = self.client.containers.create(  # create, unlike run, never pulls
            deployment.ref,
            name=name,
            **placement,
            labels={
                "bentomesh.deployment": deployment.id,
                "bentomesh.model": deployment.model,
                "bentomesh.version": deployment.version,
                "bentomesh.chain": deployment.chain_id,
                "bentomesh.owner": self.owner,
            },
            user=SERVICE_UID,
            read_only=True,
            tmpfs={"/tmp": "size=512m,mode=1777"},  # noqa: S108 - the only writable path
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            mem_limit=f"{deployment.memory_mb}m",
            nano_cpus=int(deployment.cpus * 1e9),
            pids_limit=512,
            restart_policy={"Name": "on-failure", "MaximumRetryCount": 5},
            environment={"OMP_NUM_THREADS": "1"},
        )
        container.start()
        return Started(endpoint=endpoint, handle=str(container.id))

    def _remove_exited(self, name: str) -> None:
        """A deployment restarted by supervision reuses its container name: the stopped or
        exited container of its last start holds the name until it is removed."""
        import docker.errors

        with contextlib.suppress(docker.errors.NotFound):
            self.client.containers.get(name).remove(force=True)

    def wait_ready(self, started: Started, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive(started.handle):
                raise NotReadyError(f"container {started.handle[:12]} exited before it was ready")
            if http_ready(started.endpoint):
                return
            time.sleep(0.2)
        raise NotReadyError(f"{started.endpoint} not ready within {timeout:.0f}s")

    def _container(self, handle: str) -> Any:
        import docker.errors

        try:
            return self.client.containers.get(handle)
        except docker.errors.NotFound:
            return None

    def alive(self, handle: str) -> bool:
        container = self._container(handle)
        return container is not None and container.status in ("running", "restarting", "created")

    def stop(self, handle: str) -> None:
        import docker.errors

        container = self._container(handle)
        if container is None:
            return
        try:
            container.stop(timeout=10)
        except docker.errors.NotFound:
            return  # removed meanwhile
        finally:
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                container.remove(force=True)  # 409: its removal is under way already

    def endpoints(self, handle: str) -> list[str] | None:
        return None

    def sweep(self, keep: dict[str, str]) -> list[str]:
        import docker.errors

        stopped = []
        owned = self.client.containers.list(
            all=True, filters={"label": f"bentomesh.owner={self.owner}"}
        )
        for container in owned:
            deployment_id = container.labels.get("bentomesh.deployment", "")
            if keep.get(deployment_id) == container.id:
                continue
            try:
                container.remove(force=True)
            except docker.errors.APIError:  # gone, or its removal under way already
                continue
            stopped.append(str(container.id))
        return stopped

    def logs(self, deployment: Deployment, lines: int = 30) -> str:
        if not deployment.handle:
            return ""
        container = self._container(deployment.handle)
        if container is None:
            return ""
        text: bytes = container.logs(tail=lines)
        return text.decode(errors="replace")
