"""A standalone proxy's settings: :class:`ServerSettings` from any settings-like object.

:class:`~ragzip.adapters.proxy.ChatProxy` runs on the sidecar's settings; built on its own it
takes the fields it knows from whatever object it is given (another app's settings, a simple
namespace), plus a ready compressor or budget.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ragzip.adapters.rest.settings import ServerSettings
from ragzip.compressors.base import BudgetLike, Compressor
from ragzip.errors import ConfigError

__all__ = ["SETTING_FIELDS", "server_settings"]

# Fields of other settings objects that a standalone proxy takes over.
SETTING_FIELDS = (
    "upstream_url", "upstream_api_key", "request_timeout_s", "compressor", "budget",
    "max_concurrency", "max_queue", "max_documents", "max_tokens_per_request", "max_body_bytes",
    "max_json_depth", "retry_after_s", "allow_regex", "allow_request_params", "compressors",
    "request_compressors", "log_documents",
)  # fmt: skip


def server_settings(
    settings: Any, compressor: Compressor | None = None, budget: BudgetLike | None = None
) -> ServerSettings:
    """``settings`` as :class:`ServerSettings` (taking the fields it has), with the overrides.

    Raises:
        ConfigError: the fields do not make valid server settings.
    """
    if isinstance(settings, ServerSettings) and compressor is None and budget is None:
        return settings
    fields = {
        name: _plain(getattr(settings, name))
        for name in SETTING_FIELDS
        if getattr(settings, name, None) is not None
    }
    if getattr(settings, "allow_request_compressor", True) is False:
        fields["request_compressors"] = []
    if compressor is not None:
        fields["compressor"] = compressor.name
    if budget is not None:
        fields["budget"] = _plain(budget)
    try:
        return ServerSettings(**fields)
    except ValueError as exc:
        raise ConfigError(f"invalid proxy settings: {exc}") from exc


def _plain(value: Any) -> Any:
    """Pydantic models, budgets and mappings as plain values."""
    if hasattr(value, "model_dump"):
        return value.model_dump(exclude_none=True)
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return {k: v for k, v in value.to_dict().items() if v not in (None, [], ())}
    if isinstance(value, Mapping):
        return dict(value)
    return value
