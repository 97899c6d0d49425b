"""Moved to :mod:`ragzip.compressors.router`; this name is kept so existing imports keep working."""

from ragzip.compressors.router import *  # noqa: F403
from ragzip.compressors.router import __all__ as __all__
