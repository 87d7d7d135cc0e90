"""Docker Compose for a set of built model images: one locked-down service per model."""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_REFERENCE = re.compile(
    rf"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)
"""Docker's image reference grammar (registry host, path, tag, digest), as `docker` checks it."""


def check_image_reference(image: str) -> str:
    """``image`` if Docker would accept it as a reference; ``ValueError`` saying why not."""
    if not IMAGE_REFERENCE.match(image):
        raise ValueError(
            f"{image!r} is not an image reference; expected e.g. bentomesh/churn:3 or "
            "registry.example:5000/bentomesh/churn@sha256:<digest>"
        )
    return image


SERVICE_PORT = 3000
HEALTHCHECK = [
    "CMD",
    "/opt/venv/bin/python",
    "-c",
    "import sys, urllib.request; "
    f"sys.exit(urllib.request.urlopen('http://127.0.0.1:{SERVICE_PORT}/readyz', timeout=2).status"
    " != 200)",
]


@dataclass(frozen=True)
class ComposeService:
    name: str
    image: str
    host_port: int
    cpus: float = 1.0
    memory_mb: int = 1024


def compose_document(services: list[ComposeService]) -> dict[str, object]:
    """Compose file format 2.4, which docker-compose v1 and v2 both accept with limits."""
    names = [s.name for s in services]
    if len(set(names)) != len(names):
        raise ValueError(f"service names must be unique: {names}")
    ports = [s.host_port for s in services]
    if len(set(ports)) != len(ports):
        raise ValueError(f"host ports must be unique: {ports}")
    return {
        "version": "2.4",
        "services": {
            s.name: {
                "image": s.image,
                "ports": [f"127.0.0.1:{s.host_port}:{SERVICE_PORT}"],
                "user": "1034",
                "read_only": True,
                "tmpfs": ["/tmp"],  # noqa: S108 - the one writable path in the container
                "cap_drop": ["ALL"],
                "security_opt": ["no-new-privileges:true"],
                "cpus": s.cpus,
                "mem_limit": f"{s.memory_mb}m",
                "pids_limit": 512,
                "restart": "on-failure",
                "environment": {"OMP_NUM_THREADS": "1"},
                "init": True,
                "healthcheck": {
                    "test": HEALTHCHECK,
                    "interval": "10s",
                    "timeout": "3s",
                    "retries": 3,
                    "start_period": "90s",
                },
            }
            for s in services
        },
    }


def compose_yaml(services: list[ComposeService]) -> str:
    return yaml.safe_dump(compose_document(services), sort_keys=False)
