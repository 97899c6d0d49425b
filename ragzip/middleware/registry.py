"""Moved to :mod:`ragzip.registry`; this name is kept so existing imports keep working."""

from ragzip.compressors.registry import compressors as compressors
from ragzip.registry import *  # noqa: F403
from ragzip.registry import __all__ as _all

__all__ = [*_all, "compressors"]
