"""Moved to :mod:`ragzip.encoders.soft` (the soft runtime sits below the generators that use it);
this name is kept so existing imports keep working."""

from ragzip.encoders.soft import *  # noqa: F403
from ragzip.encoders.soft import __all__ as __all__
