"""Components that share computed artifacts through ragzip.cache: a second replica reuses them."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from ragzip.cache import MemoryCache, make_cache
from ragzip.compressors.abstractive.cache import SummaryCache

pytestmark = pytest.mark.integration


def _spec(redis_url: str) -> str:
    return f"{redis_url}?prefix=test:{uuid.uuid4().hex[:8]}:"


def test_summary_cache_second_level_is_shared() -> None:
    backend = MemoryCache()
    first, second = SummaryCache(backend=backend), SummaryCache(backend=backend)
    first.put("k", "a summary with a lone surrogate \udc80")
    assert second.get("k") == "a summary with a lone surrogate \udc80"
    assert second.hits == 1 and len(second) == 1  # copied into the local LRU
    assert second.get("missing") is None and second.misses == 1
    backend.put("summary:bad", b"\xff\xfe not utf-8")
    assert second.get("bad") is None
    assert SummaryCache(max_items=0, backend=backend).get("k") is None  # disabled stays off


def test_bi_encoder_replicas_share_embeddings_through_redis(redis_url: str) -> None:
    pytest.importorskip("sentence_transformers")
    from ragzip.encoders import BiEncoder

    spec = _spec(redis_url)
    texts = ["The cat sat on the mat.", "Redis shares embeddings.", "The cat sat on the mat."]
    first = BiEncoder("minilm", cache=spec)
    vectors = first.encode(texts)
    second = BiEncoder("minilm", cache=make_cache(spec), cache_size=0)
    again = second.encode(texts)
    assert second._model is None  # every vector came from Redis: the model never loaded
    assert again.dtype == np.float32 and again.shape == vectors.shape
    np.testing.assert_array_equal(again, vectors)
    third = BiEncoder("minilm", cache=MemoryCache())  # a different backend: computes
    np.testing.assert_allclose(third.encode(texts[:1]), vectors[:1], atol=1e-5)


def test_lm_scorer_replicas_share_scores(redis_url: str) -> None:
    pytest.importorskip("transformers")
    from ragzip.compressors.code import LMScorer

    spec = _spec(redis_url)
    chunks = ["def parse_date(s):\n    return s.split('-')", "x = 1"]
    first = LMScorer("smollm2-135m", max_chunk_tokens=32, cache=spec)
    scores = first.score("Parse a date.", chunks)
    second = LMScorer("smollm2-135m", max_chunk_tokens=32, cache=spec)
    again = second.score("Parse a date.", chunks)
    assert second._model is None
    np.testing.assert_array_equal(again, scores)
