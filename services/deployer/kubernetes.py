"""What BentoMesh would apply to a Kubernetes cluster for one model version: the manifests.

Pure (dicts in the API's shape). No cluster is reached here and none is deployed to by the
tests: these are the Kubernetes mapping of docs/scaling.md, validated against the official
schemas. The hardening is the Docker runtime's: non-root, read-only root with a small ``/tmp``,
no capabilities, no privilege escalation, limits; plus what only a cluster can say: a network
policy (only the gateway and the monitor may call a model; a model calls nobody).
"""

from __future__ import annotations

import re
from typing import Any

SERVICE_UID = 1034  # the image's user (services/builder/docker_image.py)
SERVICE_PORT = 3000
_NAME = re.compile(r"[^a-z0-9-]+")


def dns_name(*parts: str) -> str:
    """A DNS-1123 label from model and version names (lowercase, '-', at most 63)."""
    name = _NAME.sub("-", "-".join(parts).lower()).strip("-")
    return name[:63].rstrip("-") or "model"


def _labels(model: str, version: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": dns_name(model),
        "app.kubernetes.io/version": dns_name(version),
        "app.kubernetes.io/managed-by": "bentomesh",
        "bentomesh.io/model": dns_name(model),
        "bentomesh.io/version": dns_name(version),
    }


def manifests(
    model: str,
    version: str,
    image: str,
    *,
    namespace: str = "bentomesh",
    replicas: int = 1,
    max_replicas: int | None = None,
    cpus: float = 1.0,
    memory_mb: int = 1024,
    chain_id: str | None = None,
) -> list[dict[str, Any]]:
    """Deployment (this version), Service (the model's stable name, selecting the serving
    version), PodDisruptionBudget, HorizontalPodAutoscaler and NetworkPolicy."""
    name = dns_name("bentomesh", model, version)
    stable = dns_name("bentomesh", model)
    labels = _labels(model, version)
    selector = {k: labels[k] for k in ("bentomesh.io/model", "bentomesh.io/version")}
    meta = {"namespace": namespace, "labels": labels}
    annotations = {"bentomesh.io/chain": chain_id} if chain_id else {}
    limits = {"cpu": f"{int(cpus * 1000)}m", "memory": f"{memory_mb}Mi"}
    probe = {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5}
    container = {
        "name": "model",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": SERVICE_PORT}],
        "env": [{"name": "OMP_NUM_THREADS", "value": "1"}],
        "resources": {"limits": limits, "requests": limits},
        "readinessProbe": {**probe, "failureThreshold": 3},
        "livenessProbe": {
            "httpGet": {"path": "/livez", "port": "http"},
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
        "startupProbe": {**probe, "failureThreshold": 60},  # up to 5 min to load a model
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": SERVICE_UID,
            "runAsGroup": SERVICE_UID,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108 - its only writable path
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, **meta, "annotations": annotations},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {"fsGroup": SERVICE_UID},
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "512Mi"}}],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": stable,
            "namespace": namespace,
            "labels": {"bentomesh.io/model": labels["bentomesh.io/model"]},
        },
        # blue/green: the stable Service selects the serving version; switching is one patch
        "spec": {
            "selector": selector,
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }
    budget = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, **meta},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector}},
    }
    autoscaler = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, **meta},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": replicas,
            "maxReplicas": max(replicas, max_replicas or replicas * 4),
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
        },
    }
    callers = [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": role}}}
        for role in ("bentomesh-deployer", "bentomesh-monitor")  # the gateway, the checks
    ]
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, **meta},
        "spec": {
            "podSelector": {"matchLabels": selector},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": callers, "ports": [{"protocol": "TCP", "port": SERVICE_PORT}]}],
            "egress": [],  # a model calls nobody: its artifact and code are in the image
        },
    }
    return [deployment, service, budget, autoscaler, policy]
