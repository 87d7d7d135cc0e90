from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from services.errors import ArtifactMissing, DigestMismatch, PathNotAllowed
from services.packager.intake import parse_roots, resolve_artifact, verify_digest


@pytest.fixture
def root(tmp_path: Path) -> Path:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "model.joblib").write_bytes(b"pickle bytes")
    (tmp_path / "secret.joblib").write_bytes(b"evil")
    return allowed


def test_accepts_paths_and_file_uris_under_a_root(root: Path) -> None:
    roots = (root.resolve(),)
    path = root / "model.joblib"
    assert resolve_artifact(str(path), roots) == path.resolve()
    assert resolve_artifact(path.as_uri(), roots) == path.resolve()


def test_refuses_a_path_escaping_through_dotdot(root: Path) -> None:
    with pytest.raises(PathNotAllowed, match="outside the allowed"):
        resolve_artifact(str(root / ".." / "secret.joblib"), (root.resolve(),))


def test_refuses_a_symlink_pointing_outside(root: Path) -> None:
    (root / "link.joblib").symlink_to(root.parent / "secret.joblib")
    with pytest.raises(PathNotAllowed, match="outside the allowed"):
        resolve_artifact(str(root / "link.joblib"), (root.resolve(),))


def test_refuses_a_root_prefix_that_is_not_a_parent(root: Path) -> None:
    sibling = root.parent / "allowed-not"
    sibling.mkdir()
    (sibling / "m.joblib").write_bytes(b"x")
    with pytest.raises(PathNotAllowed):
        resolve_artifact(str(sibling / "m.joblib"), (root.resolve(),))


@pytest.mark.parametrize(
    "uri", ["http://example.test/model.joblib", "s3://bucket/m", "file://host/x", "relative/m"]
)
def test_refuses_remote_or_relative_locations(root: Path, uri: str) -> None:
    with pytest.raises(PathNotAllowed):
        resolve_artifact(uri, (root.resolve(),))


def test_refuses_everything_when_no_root_is_configured(root: Path) -> None:
    with pytest.raises(PathNotAllowed, match="BENTOMESH_ARTIFACT_ROOTS"):
        resolve_artifact(str(root / "model.joblib"), ())


def test_missing_file_is_named(root: Path) -> None:
    with pytest.raises(ArtifactMissing, match=r"nope\.joblib"):
        resolve_artifact(str(root / "nope.joblib"), (root.resolve(),))


def test_refuses_artifact_whose_digest_does_not_match(root: Path) -> None:
    path = root / "model.joblib"
    verify_digest(path, hashlib.sha256(b"pickle bytes").hexdigest())
    with pytest.raises(DigestMismatch, match="refusing to load"):
        verify_digest(path, "0" * 64)


def test_roots_are_colon_separated(tmp_path: Path) -> None:
    assert parse_roots(f"{tmp_path}:/opt/models:") == (tmp_path.resolve(), Path("/opt/models"))


def test_the_artifact_is_opened_once_and_only_the_private_copy_is_used(tmp_path: Path) -> None:
    from services.packager.intake import private_copy

    path = tmp_path / "model.joblib"
    path.write_bytes(b"pickle bytes")
    with private_copy(path, hashlib.sha256(b"pickle bytes").hexdigest()) as copy:
        path.write_bytes(b"swapped after the check")  # whoever can write the root, too late
        assert copy.read_bytes() == b"pickle bytes"
        assert copy.name == "model.joblib"
        assert oct(copy.parent.stat().st_mode & 0o777) == "0o700"
    assert not copy.exists()


def test_a_symlink_in_place_of_the_artifact_is_refused(tmp_path: Path) -> None:
    from services.errors import ArtifactMissing
    from services.packager.intake import private_copy

    target = tmp_path / "elsewhere.joblib"
    target.write_bytes(b"x")
    link = tmp_path / "model.joblib"
    link.symlink_to(target)
    with pytest.raises(ArtifactMissing, match="cannot be opened"), private_copy(link, "0" * 64):
        pass


def test_a_copy_with_another_digest_is_refused_and_removed(tmp_path: Path) -> None:
    from services.errors import DigestMismatch
    from services.packager.intake import private_copy

    path = tmp_path / "model.joblib"
    path.write_bytes(b"pickle bytes")
    with pytest.raises(DigestMismatch), private_copy(path, "0" * 64):
        pass
