"""Opening text files that may be gzip-compressed (``.gz``), as data sets often are."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import TextIO

__all__ = ["open_text"]


def open_text(path: str | Path) -> TextIO:
    """``path`` opened for reading as UTF-8 text, decompressed when its name ends in ``.gz``.

    Raises:
        OSError: As :func:`open` (a missing file, a folder, no permission).
    """
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")
