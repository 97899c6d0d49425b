"""Token-classification prompt pruning (LLMLingua-2): the ``token-prune`` compressor.

Modules: :mod:`.words` (word-level semantics, vectorized), :mod:`.model` (checkpoint loading
and batched scoring), :mod:`.compressor` (the compressor), :mod:`.llmlingua_backend` (the
llmlingua package, for parity), :mod:`.train` (``ragzip train-pruner``).
"""

from ragzip.compressors.token_prune.compressor import TokenPruneCompressor
from ragzip.compressors.token_prune.defaults import DEFAULT_PRUNER, resolve_pruner
from ragzip.compressors.token_prune.model import TokenScorer

__all__ = ["DEFAULT_PRUNER", "TokenPruneCompressor", "TokenScorer", "resolve_pruner"]
