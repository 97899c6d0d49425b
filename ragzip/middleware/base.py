"""Moved to :mod:`ragzip.compressors.base`; this name is kept so existing imports keep working."""

from ragzip.compressors.base import *  # noqa: F403
from ragzip.compressors.base import __all__ as __all__
