"""A Hugging Face token-classification checkpoint as a word keep-probability scorer.

:class:`TokenScorer` loads a pruner on first use (:func:`load_pruner`: any
``AutoModelForTokenClassification`` checkpoint by hub id, local path or ragzip short name, or
LoRA adapters and a head merged into their base model, as ``ragzip train-pruner`` writes them
and as the default pruner ships), tokenizes each text once with character offsets, cuts it into
chunks at sentence ends that fit the model, runs all chunks of all texts in length-sorted
batches and turns the token probabilities into :class:`~.words.Words`.

Loading (three checkpoint kinds) and scoring share the model's tokenizer settings and
fast-path choice, hence one module a little over 350 lines.
"""

from __future__ import annotations

import re
import string
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from ragzip._optional import require
from ragzip.compressors.token_prune.defaults import (
    ADAPTER_CONFIG,
    LABELS,
    PRUNER_CONFIG,
    resolve_pruner,
)
from ragzip.compressors.token_prune.words import Words, chunk_bounds, group_words
from ragzip.errors import ConfigError, ModelNotFoundError
from ragzip.fastpath import DTYPES, Dtype, resolve_dtype
from ragzip.lora import merge_lora, read_json
from ragzip.models import resolve_model

__all__ = ["Dtype", "ScoredText", "TokenScorer", "load_pruner"]

_PUNCT = set(string.punctuation)
_SURROGATE = re.compile("[\ud800-\udfff]")


def load_pruner(path: str) -> tuple[Any, Any]:
    """The tokenizer and fp32 token-classification model of a pruner.

    Args:
        path: A checkpoint directory or hub id, or a directory of LoRA adapters (peft's
            ``adapter_config.json`` and ``adapter_model.safetensors``, with ragzip's
            ``pruner_config.json`` naming the base model and labels), which are merged into
            the base model here.

    Raises:
        ConfigError: The adapters are of a kind this loader does not merge.
        ModelNotFoundError: The adapter folder lacks its weights or head.
    """
    if (Path(path) / ADAPTER_CONFIG).is_file():
        return _load_lora(Path(path))
    torch = require("torch", "token pruning")
    transformers = require("transformers", "token pruning")
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModelForTokenClassification.from_pretrained(path, dtype=torch.float32)
    return tokenizer, model


def _load_lora(folder: Path) -> tuple[Any, Any]:
    """The base model named by the folder with its LoRA adapters merged and its head loaded."""
    torch = require("torch", "token pruning")
    transformers = require("transformers", "token pruning")
    adapter = read_json(folder / ADAPTER_CONFIG)
    info = read_json(folder / PRUNER_CONFIG)
    base = resolve_model(str(info.get("base") or adapter["base_model_name_or_path"])).path
    labels = list(info.get("labels", LABELS))
    config = transformers.AutoConfig.from_pretrained(
        base,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
    )
    model = transformers.AutoModelForTokenClassification.from_config(config, dtype=torch.float32)
    encoder = transformers.AutoModel.from_pretrained(base, dtype=torch.float32)
    missing, _ = model.base_model.load_state_dict(encoder.state_dict(), strict=False)
    if missing:
        raise ModelNotFoundError(f"{base} lacks encoder weights {missing[:3]} of its pruner")
    merge_lora(
        model,
        folder,
        frozen_prefix=f"{model.base_model_prefix}.",
        hint="train it with `ragzip train-pruner --mode lora`",
    )
    return transformers.AutoTokenizer.from_pretrained(base), model


@dataclass(frozen=True)
class ScoredText:
    """The words of one text with the chunk each word came from."""

    words: Words
    chunk: np.ndarray  # chunk number (within this text) of each word
    pieces: tuple[str, ...] = ()  # word strings as the tokenizer spells them


class TokenScorer:
    """Keep probabilities per word from a token-classification model.

    Args:
        model: Hub id, local directory or short name of a token-classification checkpoint.
        dtype: ``"auto"`` (bf16 only where a probe finds it faster than fp32), ``"fp32"``;
            ``"bf16"`` runs under CPU bfloat16 autocast; ``"int8"`` applies dynamic int8
            quantization to the linear layers.
        batch_size: Chunks per forward pass.
        max_length: Tokens per chunk including the two special tokens (capped by the model).
        chunk_end_tokens: Token strings a chunk may end at (sentence ends).
        keep_label: Index of the "keep" class in the model's output.

    Example:
        >>> scorer = TokenScorer("microsoft/llmlingua-2-bert-base-multilingual-cased-meetingbank")
        >>> scorer.score(["Some long text. More text."])[0].words.probs
    """

    def __init__(
        self,
        model: str,
        *,
        dtype: Dtype = "auto",
        batch_size: int = 16,
        max_length: int = 512,
        chunk_end_tokens: Sequence[str] = (".", "\n"),
        keep_label: int = 1,
    ) -> None:
        if dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        self.model_name = model
        self.dtype = dtype
        self._dtype = dtype  # "auto" is resolved when the model loads
        self.batch_size = batch_size
        self.max_length = max_length
        self.chunk_end_tokens = tuple(chunk_end_tokens)
        self.keep_label = keep_label
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any] | None = None
        self._tables: dict[str, np.ndarray] = {}

    # -- loading -----------------------------------------------------------------------------
    def _load(self) -> tuple[Any, Any]:
        if self._loaded is None:
            with self._lock:
                if self._loaded is None:
                    self._loaded = self._load_model()
        return self._loaded

    def _load_model(self) -> tuple[Any, Any]:
        torch = require("torch", "token pruning")
        tokenizer, model = load_pruner(resolve_pruner(self.model_name))
        if not getattr(tokenizer, "is_fast", False):
            raise ConfigError(f"{self.model_name}: token pruning needs a fast tokenizer")
        model.eval()
        self._dtype = cast(Dtype, resolve_dtype(self.dtype))
        if self._dtype == "int8":
            model = torch.ao.quantization.quantize_dynamic(
                model, {torch.nn.Linear}, dtype=torch.qint8
            )
        self._build_tables(tokenizer, model)
        return tokenizer, model

    def _build_tables(self, tokenizer: Any, model: Any) -> None:
        size = max(len(tokenizer), int(model.config.vocab_size))
        tokens = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        tokens = [t if isinstance(t, str) else "" for t in tokens] + [""] * (size - len(tokens))
        sentencepiece = sum(t.startswith("▁") for t in tokens) > len(tokens) // 10
        prefix = "▁" if sentencepiece else "##"
        arr = np.array(tokens, dtype=object)
        if sentencepiece:  # a word starts at "▁" and at punctuation (LLMLingua-2's rule)
            begins = np.array([t.startswith("▁") or t in _PUNCT for t in tokens], dtype=bool)
            pure = np.array([t.lstrip("▁") for t in tokens], dtype=object)
        else:
            begins = np.array([not t.startswith("##") for t in tokens], dtype=bool)
            pure = np.array([t[2:] if t.startswith("##") else t for t in tokens], dtype=object)
        self._tables = {
            "tokens": arr,
            "pure": pure,
            "begins": begins,
            "digit": np.array([bool(re.search(r"\d", t)) for t in tokens], dtype=bool),
            "end": np.isin(arr, np.array(self.chunk_end_tokens, dtype=object)),
        }
        self._prefix = prefix
        limit = min(
            self.max_length,
            int(getattr(model.config, "max_position_embeddings", self.max_length)),
            int(tokenizer.model_max_length or self.max_length),
        )
        if getattr(model.config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
            limit = min(limit, int(model.config.max_position_embeddings) - 2)
        self._chunk_tokens = max(1, limit - 2)

    @property
    def tokenizer(self) -> Any:
        return self._load()[0]

    @property
    def model(self) -> Any:
        return self._load()[1]

    def warm_up(self) -> None:
        self.score(["Warm up."])

    # -- scoring -----------------------------------------------------------------------------
    def forward(self, chunks: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Keep probability of every token of each chunk of token ids (no special tokens)."""
        torch = require("torch", "token pruning")
        tokenizer, model = self._load()
        cls = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else None
        sep = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else None
        pad = tokenizer.pad_token_id or 0
        head = 1 if cls is not None else 0
        lengths = np.array([c.size for c in chunks], dtype=np.int64)
        order = np.argsort(-lengths, kind="stable")
        out: list[np.ndarray] = [np.zeros(0)] * len(chunks)
        with torch.inference_mode():
            for b in range(0, len(chunks), self.batch_size):
                members = order[b : b + self.batch_size]
                width = int(lengths[members].max()) + head + (1 if sep is not None else 0)
                ids = np.full((members.size, width), pad, dtype=np.int64)
                mask = np.zeros((members.size, width), dtype=np.int64)
                for row, m in enumerate(members.tolist()):
                    body = chunks[m]
                    seq = np.concatenate(
                        ([cls] if cls is not None else [], body, [sep] if sep is not None else [])
                    )
                    ids[row, : seq.size] = seq
                    mask[row, : seq.size] = 1
                inputs = {
                    "input_ids": torch.from_numpy(ids),
                    "attention_mask": torch.from_numpy(mask),
                }
                if self._dtype == "bf16":
                    with torch.autocast("cpu", dtype=torch.bfloat16):
                        logits = model(**inputs).logits
                else:
                    logits = model(**inputs).logits
                probs = torch.softmax(logits.float(), dim=-1)[..., self.keep_label].numpy()
                for row, m in enumerate(members.tolist()):
                    out[m] = probs[row, head : head + lengths[m]].astype(np.float64)
        return out

    def encode(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Token ids and character offsets ``(n, 2)`` of ``text`` (no special tokens)."""
        tokenizer = self.tokenizer
        enc = tokenizer(
            _SURROGATE.sub("\ufffd", text),  # same length: offsets still index ``text``
            add_special_tokens=False,
            return_offsets_mapping=True,
            verbose=False,
        )
        ids = np.asarray(enc["input_ids"], dtype=np.int64)
        offsets = np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2)
        return ids, offsets

    def score(
        self,
        texts: Sequence[str],
        *,
        force_tokens: Sequence[str] = (),
        force_digits: bool = False,
        token_to_word: str = "mean",
        with_pieces: bool = False,
    ) -> list[ScoredText]:
        """Words of each text with their keep probabilities.

        Args:
            texts: Texts to score (all chunks of all texts are batched together).
            force_tokens: Token strings that always start a word and are kept (prob 1.0).
            force_digits: Tokens holding a digit count as probability 1.0.
            token_to_word: ``"mean"`` or ``"first"`` token probability per word.
            with_pieces: Also return each word as the tokenizer spells it (for GPT-token
                weighting with LLMLingua-2's exact semantics).
        """
        self._load()
        tables = self._tables
        force_ids = np.zeros(0, dtype=np.int64)
        if force_tokens:
            force_ids = np.flatnonzero(np.isin(tables["pure"], list(force_tokens)))
        encoded = [self.encode(t) for t in texts]
        chunks: list[np.ndarray] = []
        spans: list[list[tuple[int, int]]] = []
        for ids, _ in encoded:
            bounds = chunk_bounds(tables["end"][ids], self._chunk_tokens) if ids.size else []
            spans.append(bounds)
            chunks.extend(ids[a:b] for a, b in bounds)
        probs = self.forward(chunks) if chunks else []
        results = []
        cursor = 0
        for (ids, offsets), bounds in zip(encoded, spans, strict=True):
            if not bounds:
                empty = group_words(np.zeros(0, bool), np.zeros(0), np.zeros(0), np.zeros(0))
                results.append(ScoredText(empty, np.zeros(0, dtype=np.int64)))
                continue
            token_probs = np.concatenate(probs[cursor : cursor + len(bounds)])
            cursor += len(bounds)
            begins = tables["begins"][ids].copy()
            starts_of_chunks = np.array([a for a, _ in bounds], dtype=np.int64)
            begins[starts_of_chunks] = True
            forced_tok = np.isin(ids, force_ids) if force_ids.size else np.zeros(ids.size, bool)
            begins |= forced_tok
            token_forced = forced_tok | (tables["digit"][ids] if force_digits else False)
            words = group_words(
                begins, token_probs, offsets[:, 0], offsets[:, 1], token_forced, token_to_word
            )
            word_of_token = np.cumsum(begins) - 1
            forced_words = np.zeros(len(words), dtype=bool)
            forced_words[word_of_token[forced_tok]] = True
            words = Words(words.starts, words.ends, words.probs, forced_words)
            chunk_of_token = np.repeat(np.arange(len(bounds)), [b - a for a, b in bounds])
            chunk = chunk_of_token[np.flatnonzero(begins)]
            pieces: tuple[str, ...] = ()
            if with_pieces:
                pure = tables["pure"][ids]
                pieces = tuple("".join(p) for p in np.split(pure, np.flatnonzero(begins)[1:]))
            results.append(ScoredText(words, chunk, pieces))
        return results
