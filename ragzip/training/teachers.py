"""Teachers that label words keep/drop for training a pruner (LLMLingua-2's data distillation).

* :class:`SurprisalTeacher` (offline): a small causal LM (SmolLM2-135M, packaged) measures each
  word's information, ``-log p(word | question, title, preceding text)``; optionally
  (``question_weight``) words that the question makes less surprising gain weight too
  (LongLLMLingua's contrastive idea, a second pass). The most informative ``keep_rate`` of
  words are kept.
* :class:`UnigramTeacher` (offline, fast): a word's self-information under a unigram model of
  the corpus being labelled, ``-log p(word)``; no language-model pass, so thousands of
  passages are labelled in seconds on a CPU (the surprisal teacher needs seconds per passage
  there). The most informative ``keep_rate`` of words are kept.
* :class:`LLMTeacher`: an OpenAI-compatible chat model compresses the text extractively
  (LLMLingua-2's instruction: remove words, never reorder or change them); the original words
  it kept are found by an in-order alignment (:func:`align_extractive`).

Either way, words of a known answer are labelled keep (supervision from question-answer data).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ragzip._optional import require
from ragzip.lm import load_lm

__all__ = [
    "LLMTeacher",
    "Passage",
    "SurprisalTeacher",
    "Teacher",
    "UnigramTeacher",
    "align_extractive",
]

_NORM = re.compile(r"[^\w]+")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Passage:
    """A training text with optional question and answers."""

    text: str
    title: str = ""
    question: str = ""
    answers: tuple[str, ...] = field(default_factory=tuple)


class Teacher(Protocol):
    """Labels each word (character spans ``starts``/``ends``) of a passage keep or drop."""

    name: str

    def label(self, passage: Passage, starts: np.ndarray, ends: np.ndarray) -> np.ndarray: ...


def answer_words(passage: Passage, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Words overlapping an occurrence of one of the passage's answers."""
    from ragzip.compressors.token_prune.words import Words, forced_by_strings

    words = Words(starts, ends, np.zeros(starts.size), np.zeros(starts.size, dtype=bool))
    patterns = [re.escape(a) for a in passage.answers if a.strip()]
    return forced_by_strings(passage.text, words, (), [f"(?i){p}" for p in patterns])


def top_share(scores: np.ndarray, share: float) -> np.ndarray:
    """Marks the ``share`` highest scores (at least one when there is any)."""
    n = scores.size
    keep = np.zeros(n, dtype=bool)
    if n:
        k = max(1, round(share * n))
        keep[np.argsort(-scores, kind="stable")[:k]] = True
    return keep


class SurprisalTeacher:
    """Offline teacher: word information under a small causal LM.

    Args:
        model: Causal LM short name, hub id or path (default: packaged SmolLM2-135M).
        keep_rate: Share of words labelled keep.
        question_weight: Weight of the surprisal the question removes from a word (0: one pass).
        max_tokens: Longest passage scored in one pass (LM tokens).
    """

    name = "surprisal"

    def __init__(
        self,
        model: str = "smollm2-135m",
        *,
        keep_rate: float = 0.5,
        question_weight: float = 0.0,
        max_tokens: int = 1024,
    ) -> None:
        self.model_name = model
        self.keep_rate = keep_rate
        self.question_weight = question_weight
        self.max_tokens = max_tokens
        self._loaded: tuple[Any, Any] | None = None

    def _load(self) -> tuple[Any, Any]:
        if self._loaded is None:
            loaded = load_lm(
                self.model_name,
                device="cpu",
                dtype="float32",
                frozen=True,
                what="teacher model",
                purpose="the surprisal teacher",
            )
            self._loaded = (loaded.tokenizer, loaded.model)
        return self._loaded

    def word_information(
        self, text: str, prefix: str, starts: np.ndarray, ends: np.ndarray
    ) -> np.ndarray:
        """``-log p`` (nats) of each word given ``prefix`` and the preceding text."""
        torch = require("torch", "the surprisal teacher")
        tok, lm = self._load()
        enc = tok(prefix + text, return_offsets_mapping=True, add_special_tokens=False)
        ids = np.asarray(enc["input_ids"], dtype=np.int64)[: self.max_tokens]
        offsets = np.asarray(enc["offset_mapping"], dtype=np.int64)[: ids.size] - len(prefix)
        with torch.inference_mode():
            logits = lm(input_ids=torch.from_numpy(ids)[None]).logits[0].float()
            logp = torch.log_softmax(logits[:-1], dim=-1)
            nll = -logp.gather(1, torch.from_numpy(ids[1:])[:, None])[:, 0].numpy()
        token_end = offsets[1:, 1] - 1  # a token belongs to the word holding its last char
        info = np.zeros(starts.size)
        inside = token_end >= 0
        word = np.searchsorted(starts, token_end, side="right") - 1
        valid = inside & (word >= 0)
        valid[valid] &= token_end[valid] < ends[word[valid]]
        np.add.at(info, word[valid], nll[valid])
        return info

    def label(self, passage: Passage, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        if starts.size == 0:
            return np.zeros(0, dtype=bool)
        title = f"{passage.title}. " if passage.title else ""
        asked = f"Question: {passage.question}\n{title}" if passage.question else title
        score = self.word_information(passage.text, asked, starts, ends)
        if passage.question and self.question_weight:  # contrastive: costs a second pass
            plain = self.word_information(passage.text, title, starts, ends)
            score = score + self.question_weight * np.maximum(0.0, plain - score)
        return top_share(score, self.keep_rate) | answer_words(passage, starts, ends)


class UnigramTeacher:
    """Offline, fast teacher: word self-information under a unigram model of the corpus.

    A word scores ``-log p(word)``, ``p`` being its add-one smoothed, lower-cased frequency in
    the texts given to :meth:`fit` (Selective Context's self-information, without context).
    Frequent words (articles, prepositions) score low, names, numbers and rare terms high;
    words without letters or digits (punctuation) score 0.

    Args:
        texts: Texts to estimate the word frequencies on (usually the passages to label).
        keep_rate: Share of words labelled keep.

    Example:
        >>> teacher = UnigramTeacher([p.text for p in passages], keep_rate=0.5)
        >>> teacher.label(passages[0], starts, ends)
    """

    name = "unigram"

    def __init__(self, texts: Iterable[str] = (), *, keep_rate: float = 0.5) -> None:
        self.keep_rate = keep_rate
        self.counts: Counter[str] = Counter()
        self.total = 0
        self.fit(texts)

    def fit(self, texts: Iterable[str]) -> UnigramTeacher:
        """Adds the words of ``texts`` to the frequencies; returns ``self``."""
        for text in texts:
            words = _WORD.findall(text.lower())
            self.counts.update(words)
            self.total += len(words)
        return self

    def information(self, word: str) -> float:
        """``-log p(word)`` in nats (0 for a word without letters or digits)."""
        key = _norm(word)
        if not key:
            return 0.0
        return math.log(self.total + len(self.counts) + 1) - math.log(self.counts[key] + 1)

    def label(self, passage: Passage, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        words = [passage.text[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
        score = np.array([self.information(w) for w in words], dtype=np.float64)
        return top_share(score, self.keep_rate) | answer_words(passage, starts, ends)


_INSTRUCTION = (
    "Compress the text below by deleting words that are not needed to understand it, so that "
    "about {percent}% of the words remain. Only delete words: do not reorder, change, add or "
    "paraphrase any word. Keep names, numbers and facts{question}. Answer with the remaining "
    "words only."
)


def _norm(word: str) -> str:
    return _NORM.sub("", word.lower())


def align_extractive(
    original: Sequence[str], compressed: Sequence[str], window: int = 64
) -> np.ndarray:
    """Marks the original words that an extractive compression kept.

    Each compressed word is matched to the next equal original word (case and punctuation
    ignored) within ``window`` words of the last match; unmatched compressed words (a teacher
    that changed a word) are skipped.
    """
    keep = np.zeros(len(original), dtype=bool)
    norm = [_norm(w) for w in original]
    pos = 0
    for word in compressed:
        target = _norm(word)
        if not target:
            continue
        for j in range(pos, min(len(norm), pos + window)):
            if norm[j] == target:
                keep[j] = True
                pos = j + 1
                break
    return keep


class LLMTeacher:
    """Teacher asking an OpenAI-compatible chat model to compress extractively.

    Args:
        generate: A function from a prompt to the model's answer, or a
            :class:`~ragzip.generators.openai_compat.OpenAICompatibleGenerator`.
        keep_rate: Share of words the model is asked to keep.
    """

    name = "llm"

    def __init__(self, generate: Callable[[str], str] | Any, *, keep_rate: float = 0.5) -> None:
        self.generate = generate
        self.keep_rate = keep_rate

    def _ask(self, prompt: str) -> str:
        if callable(self.generate):
            return str(self.generate(prompt))
        answer = self.generate.generate(prompt, max_tokens=1024, temperature=0.0)
        return str(answer.text)

    def label(self, passage: Passage, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        question = f", especially what answers: {passage.question}" if passage.question else ""
        instruction = _INSTRUCTION.format(percent=round(100 * self.keep_rate), question=question)
        answer = self._ask(f"{instruction}\n\nText:\n{passage.text}")
        words = [passage.text[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
        compressed = re.findall(r"\w+|[^\w\s]", answer)
        return align_extractive(words, compressed) | answer_words(passage, starts, ends)
