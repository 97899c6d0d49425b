"""Word-level semantics of LLMLingua-2, vectorized with numpy.

A token-classification model gives each subword token a keep probability. LLMLingua-2 turns
them into decisions on *words*: a word starts at every token that does not continue the
previous one (``##`` in WordPiece, no ``▁`` in SentencePiece, except punctuation), its
probability is the mean (or first) of its tokens' probabilities, forced words get 1.0, and the
words above a percentile threshold are kept. Everything here works on whole arrays: no Python
loop runs per token.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ragzip.errors import ConfigError
from ragzip.patterns import match_spans

__all__ = [
    "Words",
    "chunk_bounds",
    "forced_by_strings",
    "group_words",
    "join_kept",
    "llmlingua_keep",
    "select_within",
]


@dataclass(frozen=True)
class Words:
    """The words of one text: character spans, keep probabilities and forced flags."""

    starts: np.ndarray  # int64 character offsets into the text
    ends: np.ndarray
    probs: np.ndarray  # float64 keep probability per word
    forced: np.ndarray  # bool, must be kept

    def __len__(self) -> int:
        return int(self.starts.size)

    def texts(self, text: str) -> list[str]:
        return [text[s:e] for s, e in zip(self.starts.tolist(), self.ends.tolist(), strict=True)]


def chunk_bounds(end_mask: np.ndarray, max_len: int) -> list[tuple[int, int]]:
    """Splits ``n`` tokens into chunks of at most ``max_len``, each ending at the last token
    flagged in ``end_mask`` (sentence ends) within reach, as LLMLingua-2 does.

    Returns:
        ``[(start, stop), ...]`` token index ranges covering ``0..n``.
    """
    n = int(end_mask.size)
    if max_len < 1:
        raise ConfigError(f"max_len must be an integer >= 1, got {max_len!r}")
    ends = np.flatnonzero(end_mask)
    bounds = []
    start = 0
    while start < n:
        if n - start <= max_len:
            bounds.append((start, n))
            break
        last = start + max_len - 1  # the chunk may end at this token at the latest
        k = int(np.searchsorted(ends, last, side="right")) - 1
        stop = int(ends[k]) + 1 if k >= 0 and ends[k] > start else last + 1
        bounds.append((start, stop))
        start = stop
    return bounds


def group_words(
    begins: np.ndarray,
    token_probs: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    token_forced: np.ndarray | None = None,
    mode: str = "mean",
) -> Words:
    """Aggregates subword probabilities to words.

    Args:
        begins: Bool per token, whether it starts a new word (the first token always does).
        token_probs: Keep probability per token.
        starts: Character start per token.
        ends: Character end per token.
        token_forced: Bool per token whose probability counts as 1.0 (e.g. digits).
        mode: ``"mean"`` or ``"first"`` token probability.
    """
    if mode not in ("mean", "first"):
        raise ConfigError(f"token_to_word must be 'mean' or 'first', got {mode!r}")
    n = int(begins.size)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Words(empty, empty, np.zeros(0), np.zeros(0, dtype=bool))
    begins = begins.astype(bool).copy()
    begins[0] = True
    probs = token_probs.astype(np.float64)
    if token_forced is not None:
        probs = np.where(token_forced, 1.0, probs)
    word = np.cumsum(begins) - 1
    count = int(word[-1]) + 1
    first = np.flatnonzero(begins)
    last = np.append(first[1:] - 1, n - 1)
    if mode == "mean":
        sizes = np.bincount(word, minlength=count)
        word_probs = np.bincount(word, weights=probs, minlength=count) / sizes
    else:
        word_probs = probs[first]
    return Words(
        starts[first].astype(np.int64),
        ends[last].astype(np.int64),
        word_probs,
        np.zeros(count, dtype=bool),
    )


def forced_by_strings(
    text: str, words: Words, strings: Sequence[str] = (), patterns: Sequence[str] = ()
) -> np.ndarray:
    """Flags the words that overlap an occurrence of a must-keep string or pattern.

    Raises:
        InvalidInputError: a pattern ran past its time limit (see :mod:`ragzip.patterns`).
    """
    if not len(words) or not (strings or patterns):
        return np.zeros(len(words), dtype=bool)
    spans = [span for s in strings if s for span in _occurrences(s, text)]
    spans += match_spans(patterns, text)
    delta = np.zeros(len(text) + 1, dtype=np.int64)
    for start, end in spans:
        delta[start] += 1
        delta[end] -= 1
    covered = np.concatenate(([0], np.cumsum(np.cumsum(delta)[:-1] > 0)))
    # a word overlaps when some covered character lies in [start, end)
    return np.asarray((covered[words.ends] - covered[words.starts]) > 0)


def _occurrences(needle: str, text: str) -> list[tuple[int, int]]:
    """Spans of the non-overlapping occurrences of ``needle`` in ``text``, left to right."""
    spans = []
    at = text.find(needle)
    while at >= 0:
        spans.append((at, at + len(needle)))
        at = text.find(needle, at + len(needle))
    return spans


def llmlingua_keep(probs: np.ndarray, weights: np.ndarray, reduce_rate: float) -> np.ndarray:
    """LLMLingua-2's keep rule for one chunk: the threshold is the ``int(100 * reduce_rate + 1)``
    percentile of word probabilities repeated by their (GPT) token counts; words strictly above
    it are kept (and words at 1.0 when the threshold is 1.0)."""
    if probs.size == 0:
        return np.zeros(0, dtype=bool)
    if reduce_rate <= 0:
        return np.ones(probs.size, dtype=bool)
    repeated = np.repeat(probs, np.maximum(weights.astype(np.int64), 0))
    if repeated.size == 0:
        return np.zeros(probs.size, dtype=bool)
    threshold = np.percentile(repeated, int(100 * reduce_rate + 1))
    return (probs > threshold) | ((threshold == 1.0) & (probs == threshold))


def select_within(
    priority: np.ndarray, costs: np.ndarray, limit: float, forced: np.ndarray | None = None
) -> np.ndarray:
    """Keeps the highest-priority words whose costs fit ``limit`` (forced words first).

    Words are taken in priority order; one that does not fit is skipped and later, cheaper
    words may still fill the rest. Ties go to the earlier word. Returns a bool mask in word order.
    """
    n = int(priority.size)
    keep = np.zeros(n, dtype=bool)
    if n == 0 or limit <= 0:
        return keep
    rank = priority.astype(np.float64)
    if forced is not None:
        rank = np.where(forced, np.inf, rank)
    order = np.lexsort((np.arange(n), -rank))
    left = float(limit)
    for _ in range(16):  # each round takes the best prefix that fits, skipping what cannot
        open_ = order[~keep[order] & (costs[order] <= left)]
        fits = np.cumsum(costs[open_]) <= left
        if not fits.any():
            break
        keep[open_[fits]] = True
        left -= float(costs[open_[fits]].sum())
    return keep


def drop_repeats(keep: np.ndarray, word_texts: Sequence[str], tokens: Sequence[str]) -> np.ndarray:
    """Drops a kept force-token word when the previous kept word is the same token
    (LLMLingua-2's ``drop_consecutive``)."""
    if not tokens or not keep.any():
        return keep
    kept = np.flatnonzero(keep)
    texts = np.array([word_texts[i] for i in kept.tolist()], dtype=object)
    is_token = np.isin(texts, np.array(list(tokens), dtype=object))
    same_as_prev = np.zeros(kept.size, dtype=bool)
    same_as_prev[1:] = texts[1:] == texts[:-1]
    result = keep.copy()
    result[kept[is_token & same_as_prev]] = False
    return result


def join_kept(
    text: str, words: Words, keep: np.ndarray, groups: np.ndarray | None = None
) -> tuple[str, list[tuple[int, int]]]:
    """Builds the pruned text and the character spans of its runs.

    Consecutive kept words (of the same group, e.g. the same selected sentence) are copied with
    the original text between them, so each run is a verbatim slice of the source; runs are
    joined by a newline when the text between them held one (structure survives), else a space.
    """
    idx = np.flatnonzero(keep)
    if idx.size == 0:
        return "", []
    split = np.diff(idx) != 1
    if groups is not None:
        split |= np.diff(groups[idx]) != 0
    breaks = np.flatnonzero(split) + 1
    run_first = idx[np.concatenate(([0], breaks))]
    run_last = idx[np.concatenate((breaks - 1, [idx.size - 1]))]
    spans = list(
        zip(
            words.starts[run_first].tolist(),
            words.ends[run_last].tolist(),
            strict=True,
        )
    )
    parts = [text[spans[0][0] : spans[0][1]]]
    for (_, prev_end), (start, end) in itertools.pairwise(spans):
        parts.append("\n" if "\n" in text[prev_end:start] else " ")
        parts.append(text[start:end])
    return "".join(parts), spans
