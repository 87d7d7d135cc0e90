"""Feature names and types as users have them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bentomesh_contracts.features import Feature


@pytest.mark.parametrize(
    ("given", "meant"),
    [
        ("float64", "float"),
        ("Float32", "float"),
        ("int64", "int"),
        ("Int32", "int"),
        ("uint8", "int"),
        ("boolean", "bool"),
        ("object", "string"),
        ("str", "string"),
        ("category", "category"),
    ],
)
def test_pandas_and_numpy_type_names_are_normalised(given: str, meant: str) -> None:
    assert Feature(name="x", dtype=given).dtype == meant  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name", ["tenure (months)", "od280/od315_of_diluted_wines", "mean radius", "1st", "Größe"]
)
def test_any_column_name_a_dataframe_can_have(name: str) -> None:
    assert Feature(name=name).name == name


@pytest.mark.parametrize("name", ["a\nb", "tab\there", "\x1b[31mred"])
def test_control_characters_are_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="name"):
        Feature(name=name)


def test_an_unknown_type_is_refused_with_the_vocabulary() -> None:
    with pytest.raises(ValidationError, match="'float', 'int', 'bool', 'string' or 'category'"):
        Feature(name="x", dtype="complex128")  # type: ignore[arg-type]
