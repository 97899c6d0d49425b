"""ragzip's relevance models: a tuned sentence bi-encoder, and a cross model that scores a
passage and its tokens in one pass.

**The tuned bi-encoder** (``kind: bi-encoder``) is the default: LoRA adapters on the packaged
all-MiniLM-L6-v2, trained by ``ragzip train`` (:mod:`ragzip.training.bi_encoder`) to put the
sentences holding an answer first. It ships as ``ragzip-relevance``
(``ragzip/data/models/ragzip-relevance``, adapters only, with its ``MODEL_CARD.md``);
:class:`~ragzip.encoders.bi_encoder.BiEncoder` loads it by that name or any such folder by
path (:func:`tuned_encoder_dir`) and merges the adapters. Nothing trains on first use.

**The cross model** (``kind: cross``, ``ragzip train --kind cross``):

The question and a passage are read together (``[CLS] question [SEP] title: passage [SEP]``) by
the packaged all-MiniLM-L6-v2 encoder with ragzip's LoRA adapters merged in, and two small
heads read its output (Provence's design, on a model small enough for CPUs):

* a **passage head** on the mean of the token states: how relevant the passage is;
* a **token head** with two channels per token: ``keep``, the probability that the token's
  sentence holds the answer (aggregated to sentences for extractive selection), and
  ``answer``, the probability that the token belongs to the answer itself (aggregated to words
  for token pruning).

Passages longer than the model's window are read in windows; a passage's relevance is the best
window's. Trained on nq20's 700 training questions it did not beat the bi-encoder (see the
README), so none ships: it is loaded by path, for users who train it on more data.

Example:
    >>> model = RelevanceModel("my-cross-model")
    >>> [s.relevance for s in model.score("who wrote hamlet?", ["Hamlet is a tragedy by ..."])]
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ragzip._optional import require
from ragzip.errors import ConfigError, ModelNotFoundError
from ragzip.fastpath import resolve_dtype
from ragzip.lora import ADAPTER_CONFIG, ADAPTER_WEIGHTS, read_json
from ragzip.models import normalize_model_name, resolve_model, shipped_model_dir
from ragzip.models_cache import shared_model
from ragzip.text import scrub

__all__ = [
    "CHANNELS",
    "DEFAULT_CODE",
    "DEFAULT_RELEVANCE",
    "RELEVANCE_CONFIG",
    "SHIPPED",
    "PassageScores",
    "RelevanceModel",
    "Window",
    "build_net",
    "collate",
    "encode_windows",
    "is_relevance_model",
    "load_relevance",
    "resolve_relevance",
    "shipped_or",
    "tuned_encoder_dir",
]

_log = logging.getLogger(__name__)

DEFAULT_RELEVANCE = "ragzip-relevance"
#: The code compressor's tuned encoder (``ragzip train-code`` on public repositories).
DEFAULT_CODE = "ragzip-code"
#: Models shipped in ``ragzip/data/models``, by the names that load them.
SHIPPED = {
    DEFAULT_RELEVANCE: DEFAULT_RELEVANCE,
    "relevance": DEFAULT_RELEVANCE,
    DEFAULT_CODE: DEFAULT_CODE,
}
#: ragzip's description of a relevance model folder: base encoder, channels, window.
RELEVANCE_CONFIG = "relevance_config.json"
#: Token-head channels, by index.
CHANNELS = ("keep", "answer")
_NET: dict[str, type] = {}


def _folder(name: str) -> Path:
    shipped = SHIPPED.get(normalize_model_name(name))
    if shipped is not None:
        return shipped_model_dir(shipped)
    return Path(name).expanduser()


def _kind(folder: Path) -> str | None:
    if not (folder / RELEVANCE_CONFIG).is_file():
        return None
    return str(read_json(folder / RELEVANCE_CONFIG).get("kind", "cross"))


def resolve_relevance(name: str) -> Path:
    """The folder of a cross relevance model written by ``ragzip train --kind cross``.

    Raises:
        ModelNotFoundError: ``name`` is not such a folder (the message says how to get one).
    """
    folder = _folder(name)
    if _kind(folder) != "cross":
        raise ModelNotFoundError(
            f"no cross relevance model at {folder}: pass a directory written by "
            "`ragzip train --kind cross`"
        )
    return folder


def shipped_or(name: str, fallback: str) -> str:
    """``name``, or ``fallback`` (with a warning) when ``name`` is a shipped model that is
    missing from this installation (a trimmed package, an install from a bare sdist)."""
    if normalize_model_name(name) in SHIPPED and _kind(_folder(name)) is None:
        _log.warning("%s is missing from this installation; using %s", name, fallback)
        return fallback
    return name


def tuned_encoder_dir(name: str) -> Path | None:
    """The folder of a LoRA-tuned bi-encoder (``ragzip-relevance``, shipped, or a directory
    written by ``ragzip train``), or ``None`` when ``name`` is a plain model."""
    folder = _folder(name)
    return folder if _kind(folder) == "bi-encoder" else None


def is_relevance_model(name: str) -> bool:
    """Whether ``name`` is a cross relevance model folder (``ragzip train --kind cross``)."""
    return _kind(_folder(name)) == "cross"


def _net_class() -> type:
    """The model class, defined on first use so importing this module does not import torch."""
    if "net" not in _NET:
        torch = require("torch", "the relevance model")

        class RelevanceNet(torch.nn.Module):  # type: ignore[name-defined]
            """An encoder with a passage head (mean-pooled) and a 2-channel token head."""

            def __init__(self, encoder: Any) -> None:
                super().__init__()
                self.encoder = encoder
                hidden = int(encoder.config.hidden_size)
                self.passage_head = torch.nn.Linear(hidden, 1)
                self.token_head = torch.nn.Linear(hidden, len(CHANNELS))

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
                states = self.encoder(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    token_type_ids=token_type_ids,
                ).last_hidden_state
                mask = attention_mask.unsqueeze(-1).to(states.dtype)
                pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                return self.passage_head(pooled).squeeze(-1), self.token_head(states)

        _NET["net"] = RelevanceNet
    return _NET["net"]


def build_net(base: str, seed: int = 0) -> tuple[Any, Any]:
    """The tokenizer and a fresh model on ``base``'s pretrained encoder (seeded heads)."""
    torch = require("torch", "the relevance model")
    transformers = require("transformers", "the relevance model")
    path = resolve_model(base).path
    encoder = transformers.AutoModel.from_pretrained(
        path, dtype=torch.float32, add_pooling_layer=False
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = _net_class()(encoder)
    return transformers.AutoTokenizer.from_pretrained(path), net


def load_relevance(folder: Path) -> tuple[Any, Any, dict[str, Any]]:
    """Tokenizer, fp32 model (adapters merged, heads loaded) and config of a model folder.

    Raises:
        ModelNotFoundError: The folder lacks its adapters or heads.
    """
    from ragzip.lora import merge_lora

    info = read_json(folder / RELEVANCE_CONFIG)
    if not (folder / ADAPTER_CONFIG).is_file() or not (folder / ADAPTER_WEIGHTS).is_file():
        raise ModelNotFoundError(f"{folder} lacks {ADAPTER_CONFIG} or {ADAPTER_WEIGHTS}")
    tokenizer, net = build_net(str(info.get("base", "minilm")))
    merge_lora(net, folder, frozen_prefix="encoder.", hint="retrain it with `ragzip train`")
    net.eval()
    return tokenizer, net, info


@dataclass(frozen=True)
class PassageScores:
    """One passage's scores: its relevance and per-token channel probabilities.

    ``starts``/``ends`` are the tokens' character offsets in the passage text as given.
    """

    relevance: float
    starts: np.ndarray
    ends: np.ndarray
    keep: np.ndarray
    answer: np.ndarray

    def span_scores(
        self, spans: Sequence[tuple[int, int]], channel: str = "keep", reduce: str = "mean"
    ) -> np.ndarray:
        """One score per character span: the mean (or max) of a channel over its tokens;
        0 for a span no token falls in (beyond the model's window)."""
        values = self.keep if channel == "keep" else self.answer
        out = np.zeros(len(spans), dtype=np.float64)
        if not values.size:
            return out
        for i, (a, b) in enumerate(spans):
            inside = (self.starts < b) & (self.ends > a)
            if inside.any():
                picked = values[inside]
                out[i] = float(picked.max() if reduce == "max" else picked.mean())
        return out


class RelevanceModel:
    """Scores passages and their tokens for a question (see the module docstring).

    Args:
        model: A directory written by ``ragzip train --kind cross``.
        dtype: ``"auto"`` (bf16 only where a probe shows it faster than fp32), ``"fp32"``,
            ``"bf16"`` or ``"int8"`` (dynamic quantization of the linear layers).
        batch_size: Question-passage pairs per forward pass.
        max_length: Tokens per pair (capped by the model's own window).

    Raises:
        ConfigError: An unknown dtype.
    """

    def __init__(
        self,
        model: str,
        *,
        dtype: str = "auto",
        batch_size: int = 16,
        max_length: int = 256,
    ) -> None:
        resolve_dtype(dtype if dtype != "auto" else "fp32")  # validates without probing
        self.model_name = model
        self.dtype = dtype
        self.batch_size = batch_size
        self.max_length = max_length
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any, str] | None = None

    def _load(self) -> tuple[Any, Any, str]:
        if self._loaded is None:
            with self._lock:
                if self._loaded is None:
                    dtype = resolve_dtype(self.dtype)
                    tokenizer, net = (
                        shared_model("relevance", self.model_name, _load_shared, settings=dtype)
                        if dtype != "int8"
                        else _quantized(self.model_name)
                    )
                    self._loaded = (tokenizer, net, dtype)
        return self._loaded

    def warm_up(self) -> None:
        self.score("warm up", ["Warm up."])

    def score(
        self, query: str, passages: Sequence[str], titles: Sequence[str] | None = None
    ) -> list[PassageScores]:
        """Scores of each passage for ``query`` (titles, when given, are read as context)."""
        torch = require("torch", "the relevance model")
        tokenizer, net, dtype = self._load()
        q_ids, rows = encode_windows(tokenizer, query, passages, titles, self.max_length)
        logits = np.full(len(rows), -np.inf)
        probs: list[np.ndarray] = [np.zeros((0, len(CHANNELS)))] * len(rows)
        order = np.argsort([-r.ids.size for r in rows], kind="stable")
        with torch.inference_mode():
            for b in range(0, len(rows), self.batch_size):
                members = order[b : b + self.batch_size].tolist()
                batch = collate(tokenizer, q_ids, [rows[m] for m in members])
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16"):
                    passage, tokens = net(*[torch.from_numpy(x) for x in batch])
                passage = passage.float().numpy()
                tokens = torch.sigmoid(tokens.float()).numpy()
                head = len(q_ids) + 2
                for r, m in enumerate(members):
                    logits[m] = passage[r]
                    probs[m] = tokens[r, head : head + rows[m].ids.size]
        return [_gather(p, rows, logits, probs) for p in range(len(passages))]


@dataclass(frozen=True)
class Window:
    """Token ids of one window of a passage, their character offsets in the passage text
    (negative inside the title prefix) and how many leading tokens belong to the prefix."""

    passage: int
    ids: np.ndarray
    offsets: np.ndarray
    prefix_tokens: int


def encode_windows(
    tokenizer: Any,
    query: str,
    passages: Sequence[str],
    titles: Sequence[str] | None,
    max_length: int,
) -> tuple[list[int], list[Window]]:
    """The question's token ids and every passage's windows, each fitting ``max_length``
    with the question and 3 special tokens (shared by training and scoring).

    Raises:
        ConfigError: ``titles`` given with another length than ``passages``.
    """
    if titles is not None and len(titles) != len(passages):
        raise ConfigError("titles and passages must have the same length")
    limit = min(max_length, int(getattr(tokenizer, "model_max_length", max_length) or max_length))
    q_ids = tokenizer(scrub(query), add_special_tokens=False, verbose=False)["input_ids"]
    q_ids = list(q_ids[: max(1, limit // 4)])
    room = max(8, limit - len(q_ids) - 3)
    rows: list[Window] = []
    for p, text in enumerate(passages):
        prefix = f"{titles[p]}: " if titles is not None and titles[p] else ""
        enc = tokenizer(
            scrub(prefix + text),
            add_special_tokens=False,
            return_offsets_mapping=True,
            verbose=False,
        )
        ids = np.asarray(enc["input_ids"], dtype=np.int64)
        offsets = np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2) - len(prefix)
        body = int(np.searchsorted(offsets[:, 0], 0)) if prefix else 0
        for a in range(0, max(1, ids.size), room):
            rows.append(Window(p, ids[a : a + room], offsets[a : a + room], max(0, body - a)))
    return q_ids, rows


def collate(
    tokenizer: Any, q_ids: Sequence[int], rows: Sequence[Window]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Input ids, attention mask and token types of ``[CLS] q [SEP] window [SEP]`` rows; the
    window's tokens start at column ``len(q_ids) + 2``."""
    cls, sep, pad = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    width = len(q_ids) + 3 + max(r.ids.size for r in rows)
    ids = np.full((len(rows), width), pad or 0, dtype=np.int64)
    types = np.zeros_like(ids)
    mask = np.zeros_like(ids)
    for r, row in enumerate(rows):
        seq = [cls, *q_ids, sep, *row.ids.tolist(), sep]
        ids[r, : len(seq)] = seq
        types[r, len(q_ids) + 2 : len(seq)] = 1
        mask[r, : len(seq)] = 1
    return ids, mask, types


def _gather(
    p: int, rows: list[Window], logits: np.ndarray, probs: list[np.ndarray]
) -> PassageScores:
    mine = [i for i, r in enumerate(rows) if r.passage == p]
    starts = np.concatenate([rows[i].offsets[rows[i].prefix_tokens :, 0] for i in mine])
    ends = np.concatenate([rows[i].offsets[rows[i].prefix_tokens :, 1] for i in mine])
    tok = np.concatenate([probs[i][rows[i].prefix_tokens :] for i in mine]).astype(np.float64)
    tok = tok.reshape(-1, len(CHANNELS))
    relevance = float(max(logits[i] for i in mine)) if mine else float("-inf")
    return PassageScores(relevance, starts, ends, tok[:, 0], tok[:, 1])


def _load_shared(name: str) -> tuple[Any, Any]:
    tokenizer, net, _ = load_relevance(resolve_relevance(name))
    return tokenizer, net


def _quantized(name: str) -> tuple[Any, Any]:
    torch = require("torch", "the relevance model")
    tokenizer, net = _load_shared(name)
    return tokenizer, torch.ao.quantization.quantize_dynamic(
        net, {torch.nn.Linear}, dtype=torch.qint8
    )
