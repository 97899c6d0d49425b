"""Cross-encoder relevance scoring (query and passage read together)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ragzip._optional import require
from ragzip.models import resolve_model
from ragzip.text import scrub

__all__ = ["CrossEncoderScorer"]


class CrossEncoderScorer:
    """Scores (query, passage) pairs with a sentence-transformers ``CrossEncoder``.

    No cross-encoder ships offline; pass a hub id (e.g.
    ``cross-encoder/ms-marco-MiniLM-L-6-v2``) or a local directory. Loads on first use.

    Args:
        model: Hub id or local path.
        device: ``"cpu"``, ``"cuda"`` or ``None`` for automatic.
        batch_size: Pairs per forward pass.
        max_length: Tokens per pair.
    """

    def __init__(
        self, model: str, *, device: str | None = None, batch_size: int = 16, max_length: int = 256
    ) -> None:
        self.model_name = model
        self.device = device
        self.batch_size = batch_size
        self.max_length = max_length
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                st = require("sentence_transformers", "cross-encoder scoring")
                self._model = st.CrossEncoder(
                    resolve_model(self.model_name).path,
                    device=self.device,
                    max_length=self.max_length,
                )
        return self._model

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        """One relevance score per passage (higher is more relevant)."""
        if not passages:
            return np.zeros(0, dtype=np.float32)
        scores = self.model.predict(
            [(scrub(query), scrub(p[: 12 * self.max_length])) for p in passages],
            batch_size=self.batch_size,
            show_progress_bar=False,
        )
        arr = np.asarray(scores, dtype=np.float32)
        return arr if arr.ndim == 1 else arr[:, -1]
