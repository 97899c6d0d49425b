"""Deterministic fakes for plumbing tests (pipelines, adapters, the contract suites themselves).

They need no model and no network, and none is in a registry: they exist to exercise the code
around a compressor, retriever or generator, never to stand in for the quality of a real one.

* :class:`KeywordCompressor`: keeps the sentences sharing the most words with the query.
* :class:`EchoGenerator`: answers with the words of the last message, one delta per word.
* :class:`HashingEncoder`: a bag of hashed words, an encoder a
  :class:`~ragzip.retrievers.FaissRetriever` takes instead of a model.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence

import numpy as np

from ragzip.compressors.base import BaseCompressor, MethodOutput, Request
from ragzip.generators.base import BaseGenerator, Generation, GenerationRequest
from ragzip.text import segment
from ragzip.tokens import DEFAULT_COUNTER
from ragzip.types import CompressedDocument, Span

__all__ = ["EchoGenerator", "HashingEncoder", "KeywordCompressor"]

_WORD = re.compile(r"\w+")
_STOPWORD_TEXT = (
    "a an and are as at be by did do does for from how in is it its of on or the to was were "
    "what when where which who whom why with"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def keywords(text: str) -> set[str]:
    """Lower-cased words of ``text`` without stopwords and one-letter words."""
    return {w for w in _WORD.findall(text.lower()) if len(w) > 1 and w not in _STOPWORDS}


class KeywordCompressor(BaseCompressor):
    """Keeps the sentences that share the most words with the query, within the budget.

    Sentences containing must-keep strings or patterns come first; then sentences by the
    number of query words they contain (ties in input order) while they fit. Each kept
    document carries its sentences' spans and, as score, its best sentence's overlap.

    Args:
        min_overlap: Sentences sharing fewer query words are never kept (unless must-keep).
        max_sentence_words: Longer sentences are split (see :func:`ragzip.text.segment`).
        tokenizer: Token counter name.

    Example:
        >>> KeywordCompressor(tokenizer="words").compress("capital of France", docs, 4).text()
    """

    name = "keyword-fake"

    def __init__(
        self,
        *,
        min_overlap: int = 1,
        max_sentence_words: int = 60,
        tokenizer: str = DEFAULT_COUNTER,
    ) -> None:
        super().__init__(tokenizer=tokenizer)
        self.min_overlap = min_overlap
        self.max_sentence_words = max_sentence_words

    def params(self) -> dict[str, object]:
        return {
            **super().params(),
            "min_overlap": self.min_overlap,
            "max_sentence_words": self.max_sentence_words,
        }

    def _compress(self, request: Request) -> MethodOutput:
        query_words = keywords(request.query)
        units: list[tuple[int, Span, str, int]] = []  # (document, span, text, overlap)
        for i, doc in enumerate(request.documents):
            for span in segment(doc.text, self.max_sentence_words):
                text = doc.text[span.start : span.end]
                units.append((i, span, text, len(query_words & keywords(text))))
        forced = [u for u in units if request.budget.must_keep(u[2])]
        is_forced = {(u[0], u[1]) for u in forced}
        ranked = sorted(
            (u for u in units if u[3] >= self.min_overlap and (u[0], u[1]) not in is_forced),
            key=lambda u: -u[3],
        )
        chosen: list[tuple[int, Span, str, int]] = []
        used = 0
        for unit in forced + ranked:
            size = request.count(unit[2])
            if used + size <= request.limit:
                chosen.append(unit)
                used += size
        by_document: dict[int, list[tuple[int, Span, str, int]]] = {}
        for unit in chosen:
            by_document.setdefault(unit[0], []).append(unit)
        kept = []
        for i, members in by_document.items():
            members.sort(key=lambda u: u[1].start)
            doc = request.documents[i]
            kept.append(
                CompressedDocument(
                    text=" ".join(u[2] for u in members),
                    source_id=doc.id,
                    spans=tuple(u[1] for u in members),
                    score=float(max(u[3] for u in members)),
                    metadata=doc.metadata,
                )
            )
        return MethodOutput(kept, {"sentences_kept": len(chosen)})


class EchoGenerator(BaseGenerator):
    """Answers with the words of the last message, one stream delta per word.

    Tokens are whitespace-separated words: ``max_tokens`` cuts the echo after that many words
    (``finish_reason="length"`` once the limit is reached, as a model that has not yet ended its
    turn), ``prompt_tokens`` counts the words of every message. Sampling settings are accepted
    and ignored, so every call is deterministic.

    Args:
        model: The model name the generations report.

    Example:
        >>> EchoGenerator().generate("say hello world", max_tokens=2).text
        'say hello'
    """

    name = "echo-fake"

    def __init__(self, *, model: str = "echo") -> None:
        self.model = model

    def params(self) -> dict[str, object]:
        return {"model": self.model}

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    @staticmethod
    def _words(request: GenerationRequest) -> list[str]:
        words = request.messages[-1]["content"].split()
        return [w if i == 0 else " " + w for i, w in enumerate(words)]

    def _generate(self, request: GenerationRequest) -> Generation:
        words = self._words(request)
        kept = words[: request.max_tokens]
        return Generation(
            text="".join(kept),
            model=self.model,
            prompt_tokens=sum(self.count_tokens(m["content"]) for m in request.messages),
            completion_tokens=len(kept),
            finish_reason="length" if len(words) >= request.max_tokens else "stop",
            seconds=0.0,
        )

    def _stream(self, request: GenerationRequest) -> Iterator[str]:
        yield from self._words(request)[: request.max_tokens]


class HashingEncoder:
    """A bag of hashed lower-cased words (stopwords left out) as a unit-length embedding.

    A model-free text encoder: texts sharing words get similar vectors, enough to check what a
    dense retriever does with ids, ranks, persistence and errors; not what a real embedding
    model finds. A text without words gets the zero vector.

    Args:
        dimension: Length of the vectors.
    """

    def __init__(self, dimension: int = 256) -> None:
        self.model_name = f"hashing-{dimension}"
        self._dimension = dimension

    @property
    def dimension(self) -> int:
        return self._dimension

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                if word in _STOPWORDS:
                    continue
                digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
                out[row, int.from_bytes(digest, "little") % self._dimension] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)
