"""Micro-batching of concurrent generation requests: :mod:`ragzip.batching`, re-exported here."""

from __future__ import annotations

from ragzip.batching import BatcherClosedError, MicroBatcher

__all__ = ["BatcherClosedError", "MicroBatcher"]
