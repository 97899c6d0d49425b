"""What the framework adapters share: turning their ``compressor``/``budget`` fields into
ragzip objects, with ragzip's typed errors rather than the framework's validation errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ragzip.errors import ConfigError
from ragzip.middleware.base import Compressor
from ragzip.middleware.pipeline import Pipeline
from ragzip.middleware.registry import compressors
from ragzip.types import Budget

__all__ = ["resolve_compressor", "resolve_fields"]


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
