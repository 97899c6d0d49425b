"""The ``ragzip`` command's terminal: one log format on stderr, dependencies kept quiet.

The command owns its process, so it sets up logging here (the library never does). Without
``--verbose``, libraries ragzip loads (transformers, huggingface_hub, ...) print no load
reports, progress bars or deprecation notices; ragzip's own warnings still show, in the same
format as every log line. ragzip's own progress bars appear only on a terminal and for work
that takes more than a second (:mod:`ragzip.progress`).
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import Any

__all__ = ["LOG_FORMAT", "setup", "uvicorn_log_config"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
DATE_FORMAT = "%H:%M:%S"
# Environment switches read by the libraries when they are first imported.
_QUIET_ENV = {
    "TRANSFORMERS_VERBOSITY": "error",  # load reports, advisory warnings
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # download, weight loading and shard-writing bars
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    # Default of every tqdm bar (GGUF conversion bars and the like); ragzip's own bars set
    # ``disable`` explicitly (ragzip.progress), which overrides it.
    "TQDM_DISABLE": "1",
}


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes (it may be replaced)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _quiet_loaded_libraries() -> None:
    """The same switches for libraries imported before :func:`setup` ran."""
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()


def setup(verbose: bool = False) -> None:
    """Logs go to stderr in :data:`LOG_FORMAT`; dependencies are silenced unless ``verbose``.

    Call it before the libraries are imported (``tqdm`` reads ``TQDM_DISABLE`` once, when it
    is imported); libraries already loaded get their own switches.

    Args:
        verbose: Show ragzip's info logs and everything the libraries print.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Stderr)]:
        root.removeHandler(old)  # calling setup twice keeps one handler
    handler = _Stderr()
    handler.setFormatter(logging.Formatter(LOG_FORMAT, DATE_FORMAT))
    root.addHandler(handler)
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    logging.captureWarnings(True)  # warnings.warn() lines take the same format
    if verbose:
        return
    for key, value in _QUIET_ENV.items():
        os.environ.setdefault(key, value)
    _quiet_loaded_libraries()
    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("ignore", module=r"(?!ragzip)")  # others' warnings; ragzip's stay
    for name in ("transformers", "huggingface_hub", "sentence_transformers", "urllib3", "httpx"):
        logging.getLogger(name).setLevel(logging.ERROR)


def uvicorn_log_config(level: str) -> dict[str, Any]:
    """A uvicorn ``log_config`` that writes its server and access lines in our format."""
    formatter = {"format": LOG_FORMAT, "datefmt": DATE_FORMAT}
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "ragzip",
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"ragzip": formatter},
        "handlers": {"stderr": handler},
        "loggers": {
            name: {"handlers": ["stderr"], "level": level.upper(), "propagate": False}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "ragzip")
        },
    }
