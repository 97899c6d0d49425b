"""Segment-wise soft compression (CompLLM, ARC-Encoder) with cached segments.

``SoftCompressor`` turns documents into decoder input embeddings, segment by segment, through
a cache shared across queries and replicas; :class:`ragzip.generators.soft.SoftGenerator`
answers from them; ``ragzip train-soft`` (:func:`train.train_soft`) trains the encoder by
distillation. torch is imported only when a model is loaded.
"""

from ragzip.encoders.soft.compressor import SoftCompressor
from ragzip.encoders.soft.config import SoftConfig
from ragzip.encoders.soft.context import SoftContext, SoftDocument

__all__ = ["SoftCompressor", "SoftConfig", "SoftContext", "SoftDocument"]
