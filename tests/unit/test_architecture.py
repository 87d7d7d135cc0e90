"""The dependency rules of docs/architecture.md, enforced on every import in the tree."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("packager", "builder", "deployer", "monitor", "registry_bridge")
FOUNDATION = ("errors", "runtime", "status")
TOP = ("cli", "mesh", "demo")


def _module(path: Path) -> str:
    relative = path.relative_to(ROOT / "contracts" if "bentomesh_contracts" in path.parts else ROOT)
    return ".".join(relative.with_suffix("").parts)


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def _area(module: str) -> str:
    """``services.packager.pipeline`` -> ``packager``; ``bentomesh_contracts.x`` -> contracts."""
    parts = module.split(".")
    if parts[0] == "bentomesh_contracts":
        return "contracts"
    if parts[0] == "services" and len(parts) > 1:
        return parts[1]
    return parts[0]


def _allowed(source: str, target: str) -> bool:
    if source == target or target not in ("contracts", *SERVICES, *FOUNDATION, *TOP, "registry"):
        return True  # itself, or not ours
    if source == "contracts":
        return False  # the contracts import nothing of ours
    if source == "errors":
        return False
    if source in FOUNDATION:
        return target in ("contracts", *FOUNDATION)
    if source in SERVICES:
        return target in ("contracts", *FOUNDATION)  # services never import each other
    if source in ("mesh", "demo"):
        return target not in ("cli",)  # the CLI is the outermost layer
    return True  # cli, registry, docs, asyncapi, __main__: the wiring on top


def _python_files() -> list[Path]:
    return sorted([*(ROOT / "services").rglob("*.py"), *(ROOT / "contracts").rglob("*.py")])


def test_imports_follow_the_layers() -> None:
    broken = []
    for path in _python_files():
        source = _area(_module(path))
        for line, imported in _imports(path):
            target = _area(imported)
            if not _allowed(source, target):
                broken.append(f"{path.relative_to(ROOT)}:{line} ({source}) imports {imported}")
    assert not broken, "imports against the layering:\n" + "\n".join(broken)


def test_templates_import_nothing_of_bentomesh() -> None:
    """They run inside bentos, where BentoMesh is not installed."""
    templates = ROOT / "services" / "packager" / "templates"
    ours = [
        f"{path.name}:{line} {name}"
        for path in templates.glob("*.py")
        for line, name in _imports(path)
        if name.split(".")[0] in ("services", "bentomesh_contracts")
    ]
    assert not ours


@pytest.mark.parametrize(
    ("source", "target", "allowed"),
    [
        ("packager", "deployer", False),
        ("contracts", "runtime", False),
        ("runtime", "cli", False),
        ("mesh", "cli", False),
        ("cli", "packager", True),
        ("monitor", "status", True),
    ],
)
def test_rules_say_what_the_architecture_says(source: str, target: str, allowed: bool) -> None:
    assert _allowed(source, target) is allowed


@pytest.mark.parametrize("limit", [300])
def test_no_module_outside_tests_is_over_the_limit(limit: int) -> None:
    files = [*_python_files(), *(ROOT / "benchmarks").rglob("*.py")]
    long = {
        str(p.relative_to(ROOT)): n for p in files if (n := len(p.read_text().splitlines())) > limit
    }
    assert not long, long
    assert len((ROOT / "services" / "cli" / "main.py").read_text().splitlines()) < 150
