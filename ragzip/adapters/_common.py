"""What the framework adapters share: turning their ``compressor``/``budget`` fields into
ragzip objects, with ragzip's typed errors rather than the framework's validation errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ragzip.compressors.base import BudgetLike, Compressor
from ragzip.compressors.registry import compressors
from ragzip.errors import ConfigError
from ragzip.middleware.pipeline import Pipeline
from ragzip.types import Budget

__all__ = ["PROVENANCE_KEY", "CompressorFields", "resolve_compressor", "resolve_fields"]

PROVENANCE_KEY = "ragzip"
"""Metadata key under which documents the adapters give back carry where they came from."""


def resolve_compressor(value: Any) -> Compressor:
    """The compressor that ``value`` names: itself, a pipeline's, or one the registry builds.

    Raises:
        ConfigError: ``value`` is none of these.
    """
    if isinstance(value, Pipeline):
        return value.compressor
    if isinstance(value, str | Mapping):
        built: Compressor = compressors.build(value)
        return built
    if isinstance(value, Compressor):
        return value
    raise ConfigError(
        "compressor must be a ragzip compressor, a Pipeline, a registry name or a spec dict, "
        f"got {type(value).__name__}"
    )


def resolve_fields(compressor: Any, data: dict[str, Any]) -> dict[str, Any]:
    """Resolves an adapter's constructor fields: the compressor (positional or keyword) and the
    budget, which defaults to a pipeline's own budget when a pipeline is given."""
    if compressor is not None:
        data["compressor"] = compressor
    value = data.get("compressor")
    if isinstance(value, Pipeline) and data.get("budget") is None:
        data["budget"] = value.budget
    if value is not None:
        data["compressor"] = resolve_compressor(value)
    if data.get("budget") is not None:
        data["budget"] = Budget.of(data["budget"])
    return data


class CompressorFields(BaseModel):
    """The ``compressor`` and ``budget`` fields the framework adapters share, validated alike on
    construction and on ``model_validate``: a pipeline gives its compressor and, unless a budget
    is given, its budget; names and spec dicts are built through the registry."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    compressor: Compressor
    budget: Budget = Field(default_factory=lambda: Budget(ratio=4.0))

    def __init__(self, compressor: Any = None, /, **data: Any) -> None:
        # Resolved here too, so a bad value raises ragzip's own typed error, not pydantic's.
        super().__init__(**resolve_fields(compressor, data))

    @model_validator(mode="before")
    @classmethod
    def _pipeline_budget(cls, data: Any) -> Any:
        if (
            isinstance(data, Mapping)
            and isinstance(data.get("compressor"), Pipeline)
            and data.get("budget") is None
        ):
            data = {**data, "budget": data["compressor"].budget}
        return data

    @field_validator("compressor", mode="before")
    @classmethod
    def _resolve(cls, value: Any) -> Compressor:
        return resolve_compressor(value)

    @field_validator("budget", mode="before")
    @classmethod
    def _budget(cls, value: BudgetLike) -> Budget:
        return Budget.of(value)
