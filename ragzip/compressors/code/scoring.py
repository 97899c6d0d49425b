"""Coarse relevance of code chunks to a query.

Two signals, as in LongCodeZip's coarse stage:

* **bi-encoder** similarity (cosine of ``minilm`` embeddings of the query and the chunk, the
  chunk's name split into words prefixed);
* **conditional perplexity**: how much a chunk makes the query more predictable for a small
  causal LM (default ``smollm2-135m``): the mean log-likelihood per query token given the chunk
  minus the same without it (LongCodeZip's approximated mutual information). The query is
  placed where code documents itself: right after the chunk's header (decorators and
  signature), as a docstring for Python-like headers that end in ``:`` and as a comment in the
  language's syntax otherwise. Scores are cached by content hash (an in-memory LRU, optionally
  backed by a shared :class:`~ragzip.cache.ByteCache` such as Redis).

The LM pass is the expensive part (a 3,000-line file has ~150 chunks), so only the ``lm_top``
best chunks by bi-encoder are re-scored by the LM; the blend is ``z(bi) + lm_weight * z(lm)``
over those, the rest keep their bi-encoder order below them.

Measured on code-needle (162 tasks, 2 CPU cores; figures in the README): with plain MiniLM the
blend ranks the target first far more often than either signal alone; with ``ragzip-code``
(MiniLM tuned by ``ragzip train-code``, the default encoder) the bi-encoder alone beats that
blend at a quarter of its cost, so ``"bi"`` is the default. Placing the query after the
whole chunk as a trailing comment (the first formulation tried) ranked worse than the
bi-encoder alone and cost more.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from ragzip.cache.base import ByteCache
from ragzip.cache.lru import LRU
from ragzip.cache.typed import FLOAT, TypedCache
from ragzip.encoders.bi_encoder import BiEncoder, get_bi_encoder
from ragzip.encoders.relevance import DEFAULT_CODE, shipped_or
from ragzip.lm import load_lm
from ragzip.registry import check_choice

__all__ = ["ChunkScorer", "LMScorer", "Scoring", "documented"]

Scoring = Literal["bi", "lm", "blend"]


class LMScorer:
    """Query log-likelihood gain given a code chunk, with a small causal LM.

    Args:
        model: Model name (``smollm2-135m`` offline, or any hub id / path).
        max_chunk_tokens: Chunks are cut to their first this many tokens.
        max_query_tokens: The query is scored on its first this many tokens (cost grows with
            ``lm_top x`` the query length).
        batch_size: Chunks per forward pass.
        cache_size: Entries of the LRU cache of scores.
        device: Torch device (``cpu`` by default).
        cache: A shared second level for the scores (a :class:`~ragzip.cache.ByteCache` or a
            :func:`~ragzip.cache.make_cache` spec such as ``"redis://host:6379/0"``).

    Example:
        >>> LMScorer().score("Parse a date.", ["def parse_date(s): ...", "x = 1"])
    """

    def __init__(
        self,
        model: str = "smollm2-135m",
        *,
        max_chunk_tokens: int = 256,
        max_query_tokens: int = 48,
        batch_size: int = 4,
        cache_size: int = 50_000,
        device: str = "cpu",
        cache: ByteCache | str | None = None,
    ) -> None:
        self.model_name = model
        self.max_chunk_tokens = max_chunk_tokens
        self.max_query_tokens = max_query_tokens
        self.batch_size = batch_size
        self.device = device
        backend = None
        if cache is not None:
            from ragzip.cache import make_cache

            backend = make_cache(cache)
        # Scores stored in a shared backend as 8-byte doubles under ``lmscore:KEY``.
        self._cache = TypedCache(backend, "lmscore", FLOAT, local=LRU(cache_size))
        self._lines: LRU[str, np.ndarray] = LRU(1024)
        self._model: Any = None
        self._tokenizer: Any = None

    def warm_up(self) -> None:
        if self._model is not None:
            return
        model, self._tokenizer, _ = load_lm(
            self.model_name, device=self.device, dtype=None, what="scoring LM", purpose="LM scoring"
        )
        self._model = model

    def line_surprisal(self, lines: Sequence[str], max_tokens: int = 512) -> np.ndarray:
        """Mean negative log-likelihood of each line's tokens given the lines before it.

        Lines past ``max_tokens`` tokens get ``nan``. Cached by content.
        """
        import torch

        key = self._key("\x00lines", "\n".join(lines))
        cached = self._lines.get(key)
        if cached is not None:
            return cached
        self.warm_up()
        tok = self._tokenizer
        ids: list[int] = []
        owner: list[int] = []
        for k, line in enumerate(lines):
            piece = tok(line + "\n", add_special_tokens=False)["input_ids"]
            ids += piece
            owner += [k] * len(piece)
        ids, owner = ids[:max_tokens], owner[:max_tokens]
        result = np.full(len(lines), np.nan)
        if ids:
            prefix = [tok.bos_token_id] if tok.bos_token_id is not None else []
            inputs = torch.tensor([prefix + ids])
            with torch.inference_mode():
                logits = self._model(input_ids=inputs.to(self.device)).logits[0].float().cpu()
            logprobs = torch.log_softmax(logits[:-1], dim=-1)
            targets = inputs[0, 1:]
            nll = -logprobs.gather(1, targets[:, None])[:, 0].numpy()
            if not prefix:  # the first token has no prediction
                nll = np.concatenate([[np.nan], nll])
            rows = np.asarray(owner)
            valid = ~np.isnan(nll)
            sums = np.bincount(rows[valid], weights=nll[valid], minlength=len(lines))
            counts = np.bincount(rows[valid], minlength=len(lines))
            seen = counts > 0
            result[seen] = sums[seen] / counts[seen]
        self._lines.put(key, result)
        return result

    def _key(self, query: str, chunk: str) -> str:
        digest = hashlib.sha1(usedforsecurity=False)
        for part in (self.model_name, str(self.max_chunk_tokens), query, chunk):
            digest.update(part.encode("utf-8", "surrogatepass") + b"\x00")
        return digest.hexdigest()

    def score(self, query: str, chunks: Sequence[str], comment: str = "#") -> np.ndarray:
        """Mean log-probability gain per query token given each chunk (higher: more relevant)."""
        scores = np.zeros(len(chunks), dtype=np.float64)
        if not chunks or not query.strip():
            return scores
        suffix = " ".join(query.split())
        chunks = [documented(c, comment) for c in chunks]
        base_key = self._key(query, "")
        keys = [self._key(query, c) for c in chunks]
        found = self._cache.get_many([base_key, *keys])  # one round trip to a shared backend
        todo = [i for i, key in enumerate(keys) if key not in found]
        todo.sort(key=lambda i: len(chunks[i]))  # similar lengths share a batch: little padding
        baseline = found.get(base_key)
        if todo or baseline is None:
            self.warm_up()
            if baseline is None:
                baseline = float(self._loglik([""], suffix)[0])
                self._cache.put(base_key, baseline)
            for at in range(0, len(todo), self.batch_size):
                batch = todo[at : at + self.batch_size]
                values = self._loglik([chunks[i] for i in batch], suffix)
                fresh = {keys[i]: float(v) - baseline for i, v in zip(batch, values, strict=True)}
                self._cache.put_many(fresh)
                found.update(fresh)
        for i, key in enumerate(keys):
            scores[i] = found.get(key, 0.0)
        return scores

    def _loglik(self, contexts: Sequence[str], suffix: str) -> list[float]:
        import torch

        tok = self._tokenizer
        target = tok(suffix, add_special_tokens=False)["input_ids"][: self.max_query_tokens]
        rows = []
        for text in contexts:
            ids = tok(text, add_special_tokens=False)["input_ids"][: self.max_chunk_tokens]
            if tok.bos_token_id is not None:
                ids = [tok.bos_token_id, *ids]
            elif not ids:
                ids = [tok.eos_token_id or 0]
            rows.append((ids, len(ids)))
        width = max(len(ids) for ids, _ in rows) + len(target)
        pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, (ids, _) in enumerate(rows):
            seq = ids + target
            input_ids[r, : len(seq)] = torch.tensor(seq)
            mask[r, : len(seq)] = 1
        with torch.inference_mode():
            logits = self._model(
                input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device)
            ).logits.float()
        logprobs = torch.log_softmax(logits, dim=-1)
        result = []
        t = torch.tensor(target)
        for r, (_, n) in enumerate(rows):
            predicted = logprobs[r, n - 1 : n - 1 + len(target)].cpu()
            result.append(float(predicted.gather(1, t[:, None]).mean()))
        return result


class ChunkScorer:
    """Scores chunks for a query by bi-encoder similarity, LM likelihood gain, or a blend.

    Args:
        mode: ``"bi"`` (bi-encoder only), ``"lm"`` (LM on the ``lm_top`` bi-encoder
            candidates) or ``"blend"`` (``z(bi) + lm_weight * z(lm)`` on those candidates).
        encoder: Bi-encoder name (``ragzip-code`` by default, falling back to ``minilm``
            when it is missing from the installation).
        lm: Causal LM name for ``lm``/``blend``.
        lm_top: Chunks re-scored by the LM (the best by bi-encoder).
        lm_weight: Weight of the LM z-score in the blend.
        max_chunk_tokens: LM context cut.
        cache: A shared cache (a :class:`~ragzip.cache.ByteCache` or a
            :func:`~ragzip.cache.make_cache` spec) behind the in-memory ones, for the LM
            scores and the bi-encoder's embeddings, e.g. ``"redis://host:6379/0"``.
    """

    def __init__(
        self,
        mode: Scoring = "bi",
        *,
        encoder: str = DEFAULT_CODE,
        lm: str = "smollm2-135m",
        lm_top: int = 8,
        lm_weight: float = 1.0,
        max_chunk_tokens: int = 256,
        cache: ByteCache | str | None = None,
    ) -> None:
        check_choice("mode", mode, ("bi", "lm", "blend"))
        self.mode = mode
        self.encoder_name = encoder
        self.lm_top = lm_top
        self.lm_weight = lm_weight
        self.shared_cache: ByteCache | None = None
        if cache is not None:
            from ragzip.cache import make_cache

            self.shared_cache = make_cache(cache)
        self.lm = LMScorer(lm, max_chunk_tokens=max_chunk_tokens, cache=self.shared_cache)
        self._encoder: BiEncoder | None = None

    @property
    def encoder(self) -> BiEncoder:
        if self._encoder is None:
            name = shipped_or(self.encoder_name, "minilm")
            if self.shared_cache is None:
                self._encoder = get_bi_encoder(name)
            else:
                self._encoder = get_bi_encoder(name, cache=self.shared_cache)
        return self._encoder

    def warm_up(self) -> None:
        self.encoder.warm_up()
        if self.mode != "bi":
            self.lm.warm_up()

    def similarity(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """Cosine similarity of each text to the query (bi-encoder)."""
        if not texts:
            return np.zeros(0, dtype=np.float64)
        vectors = self.encoder.encode([query, *texts])
        return (vectors[1:] @ vectors[0]).astype(np.float64)

    def score(
        self,
        query: str,
        texts: Sequence[str],
        comment: str = "#",
        prefixes: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Relevance of each chunk text to ``query`` (higher first; comparable within a call).

        ``prefixes`` (e.g. the chunk names in words) are put before the texts for the
        bi-encoder only; the LM reads the code as it is.
        """
        if prefixes is not None:
            bi = self.similarity(query, [p + t for p, t in zip(prefixes, texts, strict=True)])
        else:
            bi = self.similarity(query, texts)
        if self.mode == "bi" or len(texts) == 0 or not query.strip():
            return bi
        top = np.argsort(-bi, kind="stable")[: self.lm_top]
        lm = self.lm.score(query, [texts[i] for i in top], comment)
        fresh = _z(lm) if self.mode == "lm" else _z(bi[top]) + self.lm_weight * _z(lm)
        result = _z(bi) - 100.0  # outside the candidates: bi-encoder order, below them
        result[top] = fresh
        return result


_HEADER_LINES = 12


def documented(chunk: str, comment: str = "#") -> str:
    """The chunk's header followed by the opening of its documentation, for the LM to continue.

    ``def f(x):`` becomes ``def f(x):\\n    \"\"\"``; ``int f(x) {`` becomes
    ``int f(x) {\\n    // `` (the comment syntax of the language). Text without a recognisable
    header (module code, prose) is cut to its first lines and followed by a comment line.
    """
    lines = chunk.splitlines()
    header: list[str] = []
    for line in lines[:_HEADER_LINES]:
        header.append(line)
        stripped = line.strip()
        if not stripped or stripped.startswith(("@", "#", "//", "/*", "*")):
            continue
        if stripped.endswith((":", "{")):
            indent = re.match(r"\s*", line).group(0) + "    "  # type: ignore[union-attr]
            opener = '"""' if stripped.endswith(":") else f"{comment} "
            return "\n".join(header) + "\n" + indent + opener
    return "\n".join(lines[:_HEADER_LINES]).rstrip() + f"\n{comment} "


def _z(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return values
    spread = float(values.std())
    return (values - values.mean()) / spread if spread > 1e-9 else values - values.mean()
