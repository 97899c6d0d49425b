"""Registries that build components by name from plain config.

A spec is ``{"type": NAME, "params": {...}}`` (or just ``NAME``); the same dict comes back from
``component.to_dict()``, so a pipeline can be written in Python, YAML or a REST request and
round-trips. Parameters are checked against the constructor's type hints before anything is
built, so a wrong type fails with a message that names the parameter and the expected type.

Each kind has its registry beside its contract: :mod:`ragzip.compressors.registry`,
:mod:`ragzip.generators.registry`, :mod:`ragzip.retrievers.registry`.

Example:
    >>> from ragzip.compressors.registry import compressors
    >>> c = compressors.build({"type": "extractive", "params": {"context_window": 1}})
    >>> compressors.names()
"""

from __future__ import annotations

import collections.abc
import importlib
import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar, Union

from ragzip.errors import ConfigError, UnknownComponentError

__all__ = ["Registry", "check_choice", "load_spec", "validate_params"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Names -> classes (or factories), filled by the :meth:`register` decorator.

    Modules listed in ``builtins`` are imported on first lookup, so registering costs nothing
    at import time and optional dependencies are only needed by what is used.
    """

    def __init__(self, kind: str, builtins: Mapping[str, str]) -> None:
        self.kind = kind
        self._builtins = dict(builtins)  # name -> module that registers it
        self._classes: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        def decorator(cls: type[T]) -> type[T]:
            existing = self._classes.get(name)
            if existing is not None and existing is not cls:
                raise ConfigError(f"{self.kind} {name!r} is already registered to {existing}")
            self._classes[name] = cls
            return cls

        return decorator

    def names(self) -> list[str]:
        return sorted(set(self._classes) | set(self._builtins))

    def get(self, name: str) -> Callable[..., T]:
        if not isinstance(name, str):
            raise ConfigError(f"{self.kind} type must be a string, got {name!r}")
        if name not in self._classes and name in self._builtins:
            importlib.import_module(self._builtins[name])
        if name not in self._classes:
            raise UnknownComponentError(
                f"unknown {self.kind} {name!r}; available: {', '.join(self.names())}"
            )
        return self._classes[name]

    def build(self, spec: str | Mapping[str, Any], **overrides: Any) -> T:
        """Builds a component from ``NAME`` or ``{"type": NAME, "params": {...}}``."""
        if isinstance(spec, str):
            spec = {"type": spec}
        if not isinstance(spec, Mapping):
            raise ConfigError(f"a {self.kind} spec is a name or a dict, got {type(spec).__name__}")
        extra = set(spec) - {"type", "params"}
        if extra:
            raise ConfigError(
                f"unknown keys in {self.kind} spec: {sorted(extra)}; a spec is "
                f"{{'type': NAME, 'params': {{...}}}}: put constructor arguments under 'params'"
            )
        if "type" not in spec:
            raise ConfigError(f"a {self.kind} spec needs a 'type'; available: {self.names()}")
        params = spec.get("params") or {}
        if not isinstance(params, Mapping):
            raise ConfigError(f"'params' must be a dict, got {type(params).__name__}")
        cls = self.get(spec["type"])
        params = {**params, **overrides}
        validate_params(cls, params, f"{self.kind} {spec['type']!r}")
        return cls(**params)

    def describe(self, name: str) -> dict[str, Any]:
        """Name, summary and parameters (with defaults) of one registered component."""
        cls = self.get(name)
        doc = inspect.getdoc(cls) or ""
        params = {}
        for pname, param in inspect.signature(cls).parameters.items():
            if param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
                continue
            default = None if param.default is inspect.Parameter.empty else param.default
            params[pname] = default if _jsonable(default) else repr(default)
        return {"type": name, "summary": doc.split("\n")[0], "params": params}


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list | tuple | dict)


def validate_params(cls: Callable[..., Any], params: Mapping[str, Any], what: str) -> None:
    """Raises :class:`ConfigError` for unknown parameters or values of the wrong type."""
    signature = inspect.signature(cls)
    accepted = {
        name: p
        for name, p in signature.parameters.items()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    unknown = [k for k in params if k not in accepted]
    if unknown and not takes_any:
        raise ConfigError(f"{what} has no parameter(s) {unknown}; it takes: {sorted(accepted)}")
    try:
        hints = typing.get_type_hints(cls.__init__ if inspect.isclass(cls) else cls)
    except Exception:  # unresolvable annotations: skip type checks rather than fail
        hints = {}
    for key, value in params.items():
        hint = hints.get(key)
        if hint is not None and not _matches(value, hint):
            raise ConfigError(
                f"{what}: parameter {key!r} expects {_describe(hint)}, got {value!r} "
                f"({type(value).__name__})"
            )


def check_choice(name: str, value: object, allowed: Sequence[object]) -> None:
    """Raises :class:`ConfigError` naming ``name`` and the accepted values unless ``value`` is
    one of ``allowed`` (for constructors called directly; the registry checks ``Literal`` hints
    before building).

    Example:
        >>> check_choice("elision", "count", ("count", "short", "none"))
    """
    if value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise ConfigError(f"{name} must be one of {choices}; got {value!r}")


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin is Literal:
        return value in args
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (list, tuple, typing.Sequence, collections.abc.Sequence):
        if not isinstance(value, list | tuple):
            return False
        inner = [a for a in args if a is not Ellipsis]
        return not inner or all(_matches(v, inner[0]) for v in value)
    if origin in (dict, Mapping, collections.abc.Mapping):
        return isinstance(value, Mapping)
    if inspect.isclass(hint):
        return isinstance(value, hint)
    return True  # callables, protocols and other hints are not checked here


def _describe(hint: Any) -> str:
    """A readable type: ``one of 'a', 'b'`` for a ``Literal``, ``int or None`` for a union."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(hint))
    if hint is type(None):
        return "None"
    if origin is not None:
        return str(hint).replace("typing.", "")
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def load_spec(path: str | Path) -> dict[str, Any]:
    """Reads a component spec from a JSON or YAML file."""
    import json

    text = Path(path).read_text(encoding="utf-8")
    if str(path).endswith((".yaml", ".yml")):
        from ragzip._optional import require

        data = require("yaml", "YAML config files").safe_load(text)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping, got {type(data).__name__}")
    return data
