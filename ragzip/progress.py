"""ragzip's own progress bars: shown only where someone watches, and only for slow work.

A bar appears on an interactive terminal (or in a Jupyter kernel) once the work has taken
more than ``delay`` seconds (one by default); in logs, pipes and CI it stays silent, so
captured output holds no carriage-return noise.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

__all__ = ["interactive", "progress_bar"]


def interactive() -> bool:
    """Whether stderr is a terminal, or this runs in a Jupyter kernel."""
    stream = sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)()) or "ipykernel" in sys.modules


def progress_bar(
    iterable: Iterable[Any] | None = None,
    *,
    enabled: bool = True,
    delay: float = 1.0,
    **kwargs: Any,
) -> Any:
    """A ``tqdm`` bar over ``iterable`` that shows only when :func:`interactive` and slow.

    Args:
        iterable: What to iterate (``None``: update the bar by hand).
        enabled: The caller's own switch (``progress=False`` of a recipe).
        delay: Seconds before the bar first appears.
        **kwargs: Passed to ``tqdm`` (``total``, ``desc``, ``unit``, ``initial``, ...).
    """
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=not (enabled and interactive()), delay=delay, **kwargs)
