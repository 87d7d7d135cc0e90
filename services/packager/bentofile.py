"""``bentofile.yaml`` for a generated service: pinned libraries, offline-friendly, one thread.

Versions come from the event (what the model was trained with), falling back to this machine's
versions, and are pinned exactly: ``lock_packages`` is off so a build needs no package index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import yaml

from bentomesh_contracts.events import Framework
from services.packager.build_context import bento_includes

# what every served model needs, and what each framework adds
_BASE_PACKAGES = ("numpy", "scipy", "scikit-learn", "joblib", "pydantic")
_FRAMEWORK_PACKAGES: dict[str, tuple[str, ...]] = {
    "sklearn": (),
    "xgboost": ("xgboost",),
    "lightgbm": ("lightgbm",),
    "econml": ("econml", "lightgbm", "pandas", "statsmodels", "shap", "sparse"),
}
# distributions of one library under another name: the CPU-only XGBoost wheel
_ALIASES = {"xgboost": ("xgboost-cpu", "xgboost")}


def _installed(name: str) -> tuple[str, str] | None:
    for dist in _ALIASES.get(name, (name,)):
        try:
            return dist, metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def _check_version(name: str, version: str) -> None:
    """A training version is pinned as ``name==version``: only a PEP 440 version may be."""
    from packaging.version import InvalidVersion, Version

    try:
        Version(version)
    except InvalidVersion as exc:
        from services.errors import InvalidRegistration

        raise InvalidRegistration(
            f"library_versions[{name!r}] = {version!r} is not a PEP 440 version"
        ) from exc


def pinned_requirements(
    framework: Framework,
    trained_with: dict[str, str],
    *,
    frame: bool = False,
    compiled: bool = False,
) -> list[str]:
    """``name==version`` for each package the bento needs; training versions take precedence.
    A model called with a DataFrame (``frame``) needs pandas; compiled trees, tl2cgen."""
    pins = []
    names = (*_BASE_PACKAGES, *_FRAMEWORK_PACKAGES[framework])
    if frame:
        names = (*names, *(n for n in ("pandas",) if n not in names))
    if compiled:
        names = (*names, "tl2cgen", "treelite")
    for name in names:
        trained = next(
            ((d, trained_with[d]) for d in _ALIASES.get(name, (name,)) if d in trained_with), None
        )
        found = trained or _installed(name)
        if trained is not None:
            _check_version(*trained)
        if found is None:
            pins.append(name)
        else:
            pins.append(f"{found[0]}=={found[1]}")
    return pins


@dataclass(frozen=True)
class ContainerConfig:
    """How the image of a bento is built (used by the builder and by ``containerize``)."""

    base_image: str | None = None
    system_packages: tuple[str, ...] = ()
    env: dict[str, str] = field(
        default_factory=lambda: {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    )

    def docker_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"python_version": "3.11"}
        if self.base_image:
            options["base_image"] = self.base_image
        if self.system_packages:
            options["system_packages"] = list(self.system_packages)
        return options


@dataclass(frozen=True)
class BentoConfig:
    """Everything ``bentoml build`` needs for one generated service."""

    service: str
    name: str
    version: str
    description: str
    packages: tuple[str, ...]
    models: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    include: tuple[str, ...] = field(default_factory=bento_includes)
    container: ContainerConfig = field(default_factory=ContainerConfig)

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "name": self.name,
            "description": self.description,
            "labels": dict(self.labels),
            "include": list(self.include),
            "models": list(self.models),
            # never clone and build git packages named by a requirement
            "python": {
                "packages": list(self.packages),
                "lock_packages": False,
                "pack_git_packages": False,
            },
            "envs": [{"name": k, "value": v} for k, v in self.container.env.items()],
            "docker": self.container.docker_options(),
        }

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)
