"""What a request may choose: server configuration decides what is loaded, read or called.

A request may pick a compressor by name among those the server offers and set the
parameters that compressor declares safe (:attr:`BaseCompressor.request_params`: ratios,
thresholds, switches, keep strings). Anything that names a model, file, URL, generator or
cache comes only from the server's settings. Keep patterns from requests are literal strings
unless the server enables regexes.

Example:
    >>> policy = RequestPolicy(ServerSettings(compressors={"fast": {"type": "truncate"}}))
    >>> policy.spec({"type": "extractive", "params": {"context_window": 1}})
    {'type': 'extractive', 'params': {'context_window': 1}}
    >>> policy.spec({"type": "abstractive", "params": {"cache_path": "/tmp/x"}})
    Traceback (most recent call last):
    ConfigError: compressor 'abstractive' does not take ['cache_path'] from a request ...
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from ragzip.adapters.rest.settings import ServerSettings
from ragzip.compressors.registry import compressors
from ragzip.errors import ConfigError, UnknownComponentError
from ragzip.types import Budget

__all__ = ["RequestPolicy", "Spec"]

Spec = str | dict[str, Any]


def _as_dict(spec: str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(spec, str):
        return {"type": spec, "params": {}}
    return {"type": spec.get("type"), "params": dict(spec.get("params") or {})}


class RequestPolicy:
    """Resolves a request's compressor choice and budget against the server's settings.

    Args:
        settings: The server settings (``compressor``, ``compressors``,
            ``request_compressors``, ``allow_request_params``, ``allow_regex``).
        extra_names: Names of ready compressors the app was given (offered too).
    """

    def __init__(self, settings: ServerSettings, extra_names: Collection[str] = ()) -> None:
        self.settings = settings
        self.presets = {name: _as_dict(spec) for name, spec in settings.compressors.items()}
        self.extra_names = frozenset(extra_names)
        default = settings.compressor
        if isinstance(default, str) and default in self.presets:
            self.default: dict[str, Any] = self.presets[default]
        else:
            self.default = _as_dict(default)

    def offered(self) -> list[str]:
        """The compressor names a request may choose."""
        chosen = self.settings.request_compressors
        if chosen is not None:
            return sorted({*chosen, str(self.default["type"])})
        return sorted(
            {*self.presets, *self.extra_names, *compressors.names(), str(self.default["type"])}
        )

    def spec(self, requested: str | Mapping[str, Any] | None) -> dict[str, Any]:
        """The server-trusted spec to build for a request's ``compressor`` field.

        Raises:
            UnknownComponentError: the name is not offered by this server.
            ConfigError: the request sets a parameter it may not set.
        """
        if requested is None:
            return self.default
        if isinstance(requested, Mapping):
            extra = set(requested) - {"type", "params"}
            if extra:
                raise ConfigError(
                    f"unknown keys in the compressor spec: {sorted(extra)}; a spec is "
                    "{'type': NAME, 'params': {...}}"
                )
        asked = _as_dict(requested)
        name = asked["type"]
        if not isinstance(name, str):
            raise ConfigError(f"a compressor spec needs a string 'type', got {name!r}")
        offered = self.offered()
        if name not in offered:
            raise UnknownComponentError(
                f"compressor {name!r} is not offered by this server; offered: "
                f"{', '.join(offered)} (the server's request_compressors setting)"
            )
        base = self.presets.get(name) or {"type": name, "params": {}}
        params = asked["params"]
        if params:
            self._check_params(name, str(base["type"]), params)
        return {"type": base["type"], "params": {**base["params"], **params}}

    def _check_params(self, name: str, kind: str, params: Mapping[str, Any]) -> None:
        if not self.settings.allow_request_params:
            raise ConfigError(
                "this server does not accept compressor params from requests "
                "(allow_request_params is off): send the compressor by name only"
            )
        allowed: frozenset[str] = getattr(compressors.get(kind), "request_params", frozenset())
        refused = sorted(set(params) - allowed)
        if refused:
            may = ", ".join(sorted(allowed)) or "nothing"
            raise ConfigError(
                f"compressor {name!r} does not take {refused} from a request: models, files, "
                f"URLs, generators and caches come from the server's configuration; a request "
                f"may set: {may}"
            )

    def budget(self, budget: Budget) -> Budget:
        """A request's budget; its keep patterns become literal strings unless regexes are on."""
        if self.settings.allow_regex or not budget.keep_patterns:
            return budget
        keep = tuple(dict.fromkeys((*budget.keep, *budget.keep_patterns)))
        return Budget(ratio=budget.ratio, tokens=budget.tokens, keep=keep)
