"""Moved to :mod:`ragzip.budget`; this name is kept so existing imports keep working."""

from ragzip.budget import *  # noqa: F403
from ragzip.budget import __all__ as __all__
