"""Deployments as Docker Swarm services: one replicated service per model version.

Every node pulls the image by the registry digest the builder signed, so a version runs on any
node of the cluster. Swarm's ingress routing mesh needs IPVS, which the kernels here lack, so
each replica publishes its port in ``host`` mode on a port its node picks; the deployer reads
the tasks' nodes and ports, and the gateway balances over those endpoints. Swarm restarts and
reschedules replicas (a dead container, a lost node); supervision keeps the endpoint list in
step with where the replicas run now.

The Docker runtime's hardening holds, but for ``no-new-privileges``: Swarm services of engines
before 27 (API 1.46) cannot set it. The service runs as an unprivileged user with every
capability dropped, which leaves a setuid binary nothing to gain.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from bentomesh_contracts.events import ImageReady
from services.deployer.docker_runtime import SERVICE_PORT, SERVICE_UID, DockerRuntime
from services.deployer.runtimes import Started, http_ready
from services.deployer.settings import DeployerSettings
from services.deployer.state import Deployment
from services.errors import NotBuiltHere, NotReadyError, RuntimeUnavailable

logger = logging.getLogger("bentomesh.deployer")

LABEL = "bentomesh"  # label prefix of everything the mesh creates


class SwarmRuntime(DockerRuntime):
    name = "swarm"

    def __init__(self, settings: DeployerSettings) -> None:
        super().__init__(settings)
        swarm = self.client.info().get("Swarm", {})
        if not swarm.get("ControlAvailable"):
            raise RuntimeUnavailable(
                "the Docker engine is not a Swarm manager (docker swarm init, or join as manager)"
            )
        if not self.registry:
            raise RuntimeUnavailable(
                "the swarm runtime needs BENTOMESH_REGISTRY: every node pulls images from it"
            )
        if self.auth:
            self.client.login(registry=self.registry, **self.auth)
        self.max_replicas = settings.max_replicas

    def pinned(self, image: ImageReady) -> str:
        """The registry reference by digest, once the image behind it is checked to be the
        one the builder built (pulled here by that digest, its id compared)."""
        super().pinned(image)
        ref = image.image_ref or ""
        if not (ref.startswith(f"{self.registry}/") and "@sha256:" in ref):
            raise NotBuiltHere(
                f"{image.model_name}:{image.model_version} was not pushed to {self.registry} "
                f"by digest ({ref!r}); Swarm nodes pull only from the mesh's registry"
            )
        return ref

    def start(self, deployment: Deployment) -> Started:
        from docker.types import (
            ContainerSpec,
            EndpointSpec,
            Mount,
            Placement,
            Resources,
            RestartPolicy,
            RollbackConfig,
            ServiceMode,
            TaskTemplate,
            UpdateConfig,
        )

        name = f"bentomesh-{deployment.id}"
        self._remove_service(name)
        labels = {
            f"{LABEL}.deployment": deployment.id,
            f"{LABEL}.model": deployment.model,
            f"{LABEL}.version": deployment.version,
            f"{LABEL}.chain": deployment.chain_id,
            f"{LABEL}.owner": self.owner,
        }
        # CPU limited, not reserved: a version and its successor must fit side by side for a
        # blue/green switch, and reservations of both would not on a node already full
        resources = Resources(
            cpu_limit=int(deployment.cpus * 1e9),
            mem_limit=deployment.memory_mb << 20,
            mem_reservation=deployment.memory_mb << 20,
        )
        resources["Limits"]["Pids"] = 512  # API 1.41; docker-py has no argument for it
        spec = ContainerSpec(
            deployment.ref,
            user=SERVICE_UID,
            read_only=True,
            mounts=[Mount("/tmp", None, type="tmpfs", tmpfs_size=512 << 20)],  # noqa: S108
            cap_drop=["ALL"],
            env={"OMP_NUM_THREADS": "1"},
            # not the owner: the Docker runtime's sweep removes the owner's containers
            labels={k: v for k, v in labels.items() if k != f"{LABEL}.owner"},
            stop_grace_period=10 * 10**9,
        )
        template = TaskTemplate(
            spec,
            resources=resources,
            restart_policy=RestartPolicy(condition="any", delay=1 * 10**9),
            placement=Placement(preferences=[("spread", "node.id")]),
        )
        service = self.client.api.create_service(
            template,
            name=name,
            labels=labels,
            mode=ServiceMode("replicated", replicas=min(deployment.replicas, self.max_replicas)),
            update_config=UpdateConfig(order="start-first", failure_action="rollback"),
            rollback_config=RollbackConfig(order="start-first"),
            endpoint_spec=EndpointSpec(
                ports=[{"Protocol": "tcp", "TargetPort": SERVICE_PORT, "PublishMode": "host"}]
            ),
        )
        return Started(endpoint="", handle=str(service["ID"]))

    def _remove_service(self, name: str) -> None:
        import docker.errors

        with contextlib.suppress(docker.errors.NotFound):
            self.client.api.remove_service(name)

    def _service(self, handle: str) -> dict[str, Any] | None:
        import docker.errors

        try:
            found: dict[str, Any] = self.client.api.inspect_service(handle)
        except docker.errors.NotFound:
            return None
        return found

    def endpoints(self, handle: str) -> list[str]:
        """``http://node:port`` of every running replica of service ``handle``."""
        nodes = {
            node["ID"]: node.get("Status", {}).get("Addr", "") for node in self.client.api.nodes()
        }
        found = []
        for task in self.client.api.tasks(filters={"service": handle, "desired-state": "running"}):
            status = task.get("Status", {})
            if status.get("State") != "running":
                continue
            for port in status.get("PortStatus", {}).get("Ports", []):
                if port.get("TargetPort") == SERVICE_PORT and port.get("PublishedPort"):
                    address = nodes.get(task.get("NodeID", ""), "")
                    if address in ("", "0.0.0.0"):  # a manager without an address
                        address = self.host
                    found.append(f"http://{address}:{port['PublishedPort']}")
                    break
        return sorted(found)

    def wait_ready(self, started: Started, timeout: float) -> None:
        """Until every replica runs and answers ``/readyz``."""
        service = self._service(started.handle)
        if service is None:
            raise NotReadyError(f"service {started.handle[:12]} is gone")
        wanted = service["Spec"]["Mode"]["Replicated"]["Replicas"]
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while time.monotonic() < deadline:
            seen = self.endpoints(started.handle)
            if len(seen) >= wanted and all(http_ready(e) for e in seen):
                return
            failed = self._failures(started.handle)
            if len(failed) > 2 * wanted:  # Swarm keeps restarting a task that cannot start
                raise NotReadyError(f"replicas keep failing: {failed[-1]}")
            time.sleep(0.5)
        failed = self._failures(started.handle)[-3:]
        raise NotReadyError(
            f"{len(seen)} of {wanted} replicas ready within {timeout:.0f}s {failed}"
        )

    def _failures(self, handle: str) -> list[str]:
        tasks = self.client.api.tasks(filters={"service": handle})
        return [
            f"{t['Status'].get('State')}: {t['Status'].get('Err') or t['Status'].get('Message')}"
            for t in tasks
            if t.get("Status", {}).get("State") in ("failed", "rejected")
        ]

    def alive(self, handle: str) -> bool:
        """The service exists; Swarm itself restarts and reschedules its replicas."""
        return self._service(handle) is not None

    def stop(self, handle: str) -> None:
        self._remove_service(handle)

    def sweep(self, keep: dict[str, str]) -> list[str]:
        stopped = []
        owned = self.client.api.services(filters={"label": f"{LABEL}.owner={self.owner}"})
        for service in owned:
            deployment_id = service["Spec"].get("Labels", {}).get(f"{LABEL}.deployment", "")
            if keep.get(deployment_id) == service["ID"]:
                continue
            self._remove_service(service["ID"])
            stopped.append(str(service["ID"]))
        return stopped

    def logs(self, deployment: Deployment, lines: int = 30) -> str:
        if not deployment.handle or self._service(deployment.handle) is None:
            return ""
        chunks = self.client.api.service_logs(
            deployment.handle, stdout=True, stderr=True, tail=lines
        )
        return b"".join(chunks).decode(errors="replace")
