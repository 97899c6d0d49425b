"""Text encoders: bi-encoders for relevance scoring and retrieval, cross-encoders for reranking."""

from ragzip.encoders.bi_encoder import BiEncoder, EmbeddingCache, get_bi_encoder

__all__ = ["BiEncoder", "EmbeddingCache", "get_bi_encoder"]
