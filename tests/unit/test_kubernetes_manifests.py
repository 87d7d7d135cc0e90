"""The Kubernetes manifests of a model version validate against the official schemas (strict:
no unknown field) of the Kubernetes releases BentoMesh targets, and carry the hardening."""

from __future__ import annotations

import subprocess
import sys

import kubernetes_validate
import pytest
import yaml

from services.deployer.kubernetes import dns_name, manifests

VERSIONS = ["1.30.0", "1.33.0", "1.37.0"]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_is_valid_for_the_release(version: str) -> None:
    docs = manifests(
        "Churn Model", "3", "registry.local/bentomesh/churn@sha256:" + "a" * 64, replicas=2
    )
    assert [d["kind"] for d in docs] == [
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
    ]
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)  # raises on any mismatch


def test_a_broken_manifest_is_refused() -> None:
    """The validator is not a rubber stamp."""
    deployment = manifests("churn", "3", "img")[0]
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.33.0", strict=True)


def test_the_pod_runs_hardened_and_the_service_selects_one_version() -> None:
    deployment, service, _, _, policy = manifests("churn", "3", "img", cpus=0.5, memory_mb=512)
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    context = container["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["allowPrivilegeEscalation"] is False
    assert container["resources"]["limits"] == {"cpu": "500m", "memory": "512Mi"}
    assert pod["automountServiceAccountToken"] is False
    assert service["spec"]["selector"]["bentomesh.io/version"] == "3"
    assert policy["spec"]["egress"] == []


def test_names_become_dns_labels() -> None:
    assert dns_name("bentomesh", "Churn Model", "2024.01_b") == "bentomesh-churn-model-2024-01-b"
    assert len(dns_name("x" * 100)) == 63


def test_the_cli_writes_valid_yaml() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.cli.main",
            "k8s",
            "manifests",
            "churn:3",
            "--replicas",
            "2",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    docs = list(yaml.safe_load_all(result.stdout))
    assert len(docs) == 5
    for doc in docs:
        kubernetes_validate.validate(doc, "1.37.0", strict=True)
    bad = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "k8s", "manifests", "churn"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0
    assert "MODEL:VERSION" in bad.stderr
