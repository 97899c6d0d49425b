"""Lazy imports of optional heavy dependencies with errors that say what to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from ragzip.errors import MissingDependencyError

# module -> (pip package, ragzip extra)
_HINTS: dict[str, tuple[str, str]] = {
    "torch": ("torch", "ml"),
    "transformers": ("transformers", "ml"),
    "sentence_transformers": ("sentence-transformers", "ml"),
    "faiss": ("faiss-cpu", "ml"),
    "bm25s": ("bm25s", "ml"),
    "gguf": ("gguf", "ml"),
    "httpx": ("httpx", "base install"),
    "tiktoken": ("tiktoken", "ml"),
    "fastapi": ("fastapi", "server"),
    "uvicorn": ("uvicorn", "server"),
    "langchain_core": ("langchain-core", "langchain"),
    "llmlingua": ("llmlingua", "llmlingua"),
    "tree_sitter": ("tree-sitter", "code"),
    "yaml": ("pyyaml", "base install"),
    "llama_index": ("llama-index-core", "llamaindex"),
    "redis": ("redis", "redis"),
    "peft": ("peft", "soft"),
    "safetensors": ("safetensors", "ml"),
}


def require(module: str, purpose: str = "") -> ModuleType:
    """Imports ``module`` or raises :class:`MissingDependencyError` naming the extra.

    Args:
        module: Dotted module name, e.g. ``"faiss"``.
        purpose: What needs it, for the message ("the FAISS retriever").
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        package, extra = _HINTS.get(top, (top, ""))
        what = f" for {purpose}" if purpose else ""
        hint = (
            f"pip install 'ragzip[{extra}]'"
            if extra and extra != "base install"
            else f"pip install {package}"
        )
        raise MissingDependencyError(
            f"{package} is needed{what} but cannot be imported ({exc}). Install it: {hint}"
        ) from exc
