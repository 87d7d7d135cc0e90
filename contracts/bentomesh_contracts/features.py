"""A model's input columns: names as trained (any text), types users have, categories."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

FeatureDtype = Literal["float", "int", "bool", "string", "category"]

_DTYPE_NAMES: dict[str, FeatureDtype] = {
    **dict.fromkeys(("float", "double", "number", "float16", "float32", "float64"), "float"),
    **{n: "int" for n in ("int", "integer", "int8", "int16", "int32", "int64")},
    **{n: "int" for n in ("uint8", "uint16", "uint32", "uint64")},
    **dict.fromkeys(("bool", "boolean"), "bool"),
    **dict.fromkeys(("string", "str", "object", "unicode"), "string"),
    "category": "category",
}
"""Type names users have (pandas and numpy dtypes) and the serving type each one means."""


def feature_dtype(value: object) -> object:
    """``float64``, ``Int32``, ``object``, ``boolean``... -> the feature type they mean."""
    if isinstance(value, str):
        return _DTYPE_NAMES.get(value.strip().lower(), value)
    return value


FEATURE_NAME_PATTERN = r"^[^\x00-\x1f\x7f]+$"


class Feature(BaseModel):
    """One input feature of a model, in the order the model expects."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(
        min_length=1,
        max_length=256,
        pattern=FEATURE_NAME_PATTERN,
        description="The column name the model was trained with: any text without control "
        "characters (spaces, punctuation, unicode); the key of a row object in requests.",
        examples=["age", "tenure (months)", "od280/od315_of_diluted_wines"],
    )
    dtype: Annotated[FeatureDtype, BeforeValidator(feature_dtype)] = Field(
        default="float",
        description="Value type of this feature in a request: float, int, bool, string or "
        "category. pandas and numpy names are accepted and normalised (float64 -> float, "
        "Int32 -> int, boolean -> bool, object -> string).",
    )
    allow_nan: bool | None = Field(
        default=None,
        description="Whether a missing value (null, NaN or an absent key) is accepted. Unset: "
        "as the model takes it (the packager tries; gradient boosting and imputing pipelines "
        "do); false refuses missing values whatever the model does.",
    )
    categories: tuple[str, ...] | None = Field(
        default=None,
        description="string/category features: the values seen in training, in the model's "
        "order (a categorical column is built with them).",
    )
    accept_unknown: bool = Field(
        default=True,
        description="string/category features: whether a value outside 'categories' is "
        "passed to the model (which ignores it or treats it as missing); false when the "
        "model would fail on it, and such a request gets a 400 naming the column.",
    )
