"""Moved to :mod:`ragzip.tokens`; this name is kept so existing imports keep working."""

from ragzip.tokens import *  # noqa: F403
from ragzip.tokens import __all__ as __all__
