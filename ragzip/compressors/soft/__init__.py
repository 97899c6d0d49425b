"""Segment-wise soft compression (CompLLM, ARC-Encoder) with cached segments.

``SoftCompressor`` turns documents into decoder input embeddings, segment by segment, through
a cache shared across queries and replicas; :class:`ragzip.generators.soft.SoftGenerator`
answers from them; ``ragzip train-soft`` (:func:`train.train_soft`) trains the encoder by
distillation. torch is imported only when a model is loaded.
"""

from ragzip.compressors.soft.compressor import SoftCompressor
from ragzip.compressors.soft.config import SoftConfig
from ragzip.compressors.soft.context import SoftContext, SoftDocument

__all__ = ["SoftCompressor", "SoftConfig", "SoftContext", "SoftDocument"]
