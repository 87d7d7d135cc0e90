from __future__ import annotations

import inspect

from services import errors


def test_every_error_is_a_mesh_error_named_by_its_class() -> None:
    classes = [
        c for _, c in inspect.getmembers(errors, inspect.isclass) if c.__module__ == errors.__name__
    ]
    assert len(classes) > 20
    for cls in classes:
        assert issubclass(cls, errors.MeshError)
        expected = "Transient" if cls is errors.TransientStageError else cls.__name__
        assert cls.error_type == expected, cls


def test_transient_errors_are_retryable_and_named_for_their_cause() -> None:
    assert errors.EngineUnavailable("engine down").retryable
    assert errors.RuntimeUnavailable.error_type == "RuntimeUnavailable"
    assert not errors.DigestMismatch("x").retryable
