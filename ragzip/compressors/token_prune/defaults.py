"""Names of token pruners: the trained default, the published LLMLingua-2 checkpoints, paths.

=====================  ======================================================================
name                   what it is
=====================  ======================================================================
``minilm-pruner``      ragzip's default: the BERT encoder of all-MiniLM-L6-v2 fine-tuned by
                       ``ragzip train-pruner``; trained on first use (a few minutes on CPU)
                       and cached under ``cache_dir()/models/token-prune-minilm``
``llmlingua2-xlmr``    microsoft/llmlingua-2-xlm-roberta-large-meetingbank (hub, internet)
``llmlingua2-mbert``   microsoft/llmlingua-2-bert-base-multilingual-cased-meetingbank (hub)
=====================  ======================================================================

Anything else is a local directory (e.g. one written by ``ragzip train-pruner``) or a hub id.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from ragzip.models import cache_dir, resolve_model

__all__ = ["DEFAULT_PRUNER", "PUBLISHED", "default_pruner_dir", "resolve_pruner"]

DEFAULT_PRUNER = "minilm-pruner"
PUBLISHED = {
    "llmlingua2-xlmr": "microsoft/llmlingua-2-xlm-roberta-large-meetingbank",
    "llmlingua2-mbert": "microsoft/llmlingua-2-bert-base-multilingual-cased-meetingbank",
}
_log = logging.getLogger(__name__)
_lock = threading.Lock()


def default_pruner_dir() -> Path:
    """Where the default pruner is cached (``$RAGZIP_CACHE_DIR/models/token-prune-minilm``)."""
    return cache_dir() / "models" / "token-prune-minilm"


def resolve_pruner(name: str) -> str:
    """A path or hub id for ``from_pretrained``; trains the default pruner on first use."""
    key = name.strip().lower()
    if key == DEFAULT_PRUNER:
        target = default_pruner_dir()
        if not (target / "config.json").is_file():
            with _lock:
                if not (target / "config.json").is_file():
                    from ragzip.training.pruner import TrainConfig, train_pruner

                    _log.warning("training the default token pruner once into %s", target)
                    train_pruner(TrainConfig(out=str(target)))
        return str(target)
    if key in PUBLISHED:
        return PUBLISHED[key]
    return resolve_model(name).path
