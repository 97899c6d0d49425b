"""Token-classification prompt pruning (LLMLingua-2): the ``token-prune`` compressor.

Modules: :mod:`.words` (word-level semantics, vectorized), :mod:`.model` (loading checkpoints,
or LoRA adapters merged into their base model, and batched scoring), :mod:`.compressor` (the
compressor), :mod:`.defaults` (pruner names and the packaged default, ``minilm-pruner``),
:mod:`.llmlingua_backend` (the llmlingua package, for parity). Pruners are trained by
``ragzip train-pruner`` (:mod:`ragzip.training.pruner`), never on first use.
"""

from ragzip.compressors.token_prune.compressor import TokenPruneCompressor
from ragzip.compressors.token_prune.defaults import DEFAULT_PRUNER, resolve_pruner
from ragzip.compressors.token_prune.model import TokenScorer

__all__ = ["DEFAULT_PRUNER", "TokenPruneCompressor", "TokenScorer", "resolve_pruner"]
