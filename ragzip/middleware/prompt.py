"""Moved to :mod:`ragzip.prompt`; this name is kept so existing imports keep working."""

from ragzip.prompt import *  # noqa: F403
from ragzip.prompt import __all__ as __all__
