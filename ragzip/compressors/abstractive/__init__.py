"""Abstractive compression (RECOMP, abstractive): the ``abstractive`` compressor.

Modules: :mod:`.compressor` (prefilter, summarise, guard, fit), :mod:`.guard` (faithfulness
guard), :mod:`.parsing` (reading the generator's output), :mod:`.cache` (summaries by content),
:mod:`.distill` (training a small summarizer from a teacher). A local T5/BART summarizer is the
``transformers-seq2seq`` generator (:mod:`ragzip.generators.seq2seq`).
"""

from ragzip.compressors.abstractive.cache import SummaryCache, summary_key
from ragzip.compressors.abstractive.compressor import (
    DEFAULT_GENERATOR,
    DEFAULT_PROMPT,
    AbstractiveCompressor,
)
from ragzip.compressors.abstractive.guard import GuardReport, SourceSentence, guard
from ragzip.compressors.abstractive.parsing import clean_summary, is_sentinel

__all__ = [
    "DEFAULT_GENERATOR",
    "DEFAULT_PROMPT",
    "AbstractiveCompressor",
    "GuardReport",
    "SourceSentence",
    "SummaryCache",
    "clean_summary",
    "guard",
    "is_sentinel",
    "summary_key",
]
