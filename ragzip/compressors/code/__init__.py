"""Code compression (LongCodeZip-style): syntax-aware chunks, coarse ranking, block pruning."""

from ragzip.compressors.code.chunking import Chunk, chunk_code, detect_language
from ragzip.compressors.code.compressor import CodeCompressor
from ragzip.compressors.code.scoring import ChunkScorer, LMScorer

__all__ = ["Chunk", "ChunkScorer", "CodeCompressor", "LMScorer", "chunk_code", "detect_language"]
