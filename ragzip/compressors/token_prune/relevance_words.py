"""Word keep scores from ragzip's relevance model, for token pruning with the question.

The relevance model reads the question with each text and gives every token two
probabilities: that it is part of the answer, and that its sentence holds the answer. A word's
score is the mean over its tokens of ``answer + sentence_weight * keep``: answer words first,
then the words of answer-bearing sentences (what keeps the kept text readable), the rest last.
Words follow the BERT tokenizer's split (whitespace and punctuation), as the pruner's words do.
"""

from __future__ import annotations

import string
from collections.abc import Sequence

import numpy as np

from ragzip.compressors.token_prune.model import ScoredText
from ragzip.compressors.token_prune.words import Words, group_words
from ragzip.encoders.relevance import RelevanceModel

__all__ = ["relevance_words"]

_PUNCT = frozenset(string.punctuation)


def relevance_words(
    model: RelevanceModel,
    query: str,
    texts: Sequence[str],
    *,
    sentence_weight: float = 0.5,
    force_digits: bool = False,
    token_to_word: str = "mean",
) -> list[ScoredText]:
    """Words of each text with their scores (see the module docstring)."""
    results = []
    for text, scored in zip(texts, model.score(query, texts), strict=True):
        starts, ends = scored.starts, scored.ends
        pieces = [text[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
        punct = np.array([bool(p) and set(p) <= _PUNCT for p in pieces], dtype=bool)
        gap = np.ones(starts.size, dtype=bool)
        gap[1:] = starts[1:] != ends[:-1]
        begins = gap | punct | np.roll(punct, 1)
        digits = np.array([any(c.isdigit() for c in p) for p in pieces], dtype=bool)
        probs = scored.answer + sentence_weight * scored.keep
        words = group_words(
            begins, probs, starts, ends, digits if force_digits else None, token_to_word
        )
        forced = np.zeros(len(words), dtype=bool)
        results.append(ScoredText(Words(words.starts, words.ends, words.probs, forced), forced))
    return results
