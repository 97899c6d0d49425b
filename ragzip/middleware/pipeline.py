"""The middleware pipeline: retrieve -> filter -> compress -> assemble -> generate.

Example:
    >>> from ragzip.middleware.pipeline import Pipeline
    >>> pipe = Pipeline.from_config({
    ...     "retriever": {"type": "faiss"},
    ...     "compressor": {"type": "extractive"},
    ...     "generator": {"type": "transformers", "params": {"model": "smollm2-135m"}},
    ...     "budget": {"ratio": 4},
    ... })
    >>> pipe.retriever.add(["Paris is the capital of France.", "..."])
    >>> out = pipe.run("What is the capital of France?")
    >>> out.answer, out.compression.ratio
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from ragzip.compressors.base import BudgetLike, Compressor
from ragzip.compressors.registry import compressors
from ragzip.errors import ConfigError, InvalidInputError
from ragzip.generators.base import Generator, iterate_in_thread
from ragzip.prompt import PromptTemplate
from ragzip.retrievers.base import Retriever
from ragzip.types import Budget, CompressionResult, Document, ScoredDocument, as_documents

__all__ = ["Pipeline", "PipelineResult", "Prepared"]


@dataclass(frozen=True)
class Prepared:
    """A context ready for generation: what was retrieved, kept, and the prompt built of it."""

    query: str
    retrieved: tuple[ScoredDocument, ...]
    compression: CompressionResult
    messages: tuple[Mapping[str, str], ...]
    timings: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PipelineResult:
    """Everything one pipeline run produced."""

    query: str
    retrieved: tuple[ScoredDocument, ...]
    compression: CompressionResult
    messages: tuple[Mapping[str, str], ...]
    answer: str | None
    timings: Mapping[str, float] = field(default_factory=dict)
    generation: Any = None

    @property
    def context(self) -> str:
        return self.compression.text()

    def stats(self) -> dict[str, Any]:
        ratio = self.compression.ratio
        return {
            "retrieved_documents": len(self.retrieved),
            "tokens_before": self.compression.tokens_before,
            "tokens_after": self.compression.tokens_after,
            "tokenizer": self.compression.tokenizer,
            "ratio": round(ratio, 3) if ratio != float("inf") else None,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "answer": self.answer,
            "context": self.context,
            "stats": self.stats(),
            "compression": self.compression.to_dict(),
        }


class Pipeline:
    """Retrieval-augmented generation with compressed context.

    Args:
        compressor: Any compressor (or a registry spec).
        retriever: Where documents come from; optional when documents are passed to :meth:`run`.
        generator: The LLM; optional (then :meth:`run` stops after assembling the prompt).
        budget: Compression budget (ratio, tokens, must-keep strings).
        top_k: Documents retrieved.
        min_score: Coarse filter: retrieved documents scoring under this are dropped.
        prompt: How the prompt is assembled.
        max_tokens: Generation length.
    """

    def __init__(
        self,
        compressor: Compressor | str | Mapping[str, Any],
        retriever: Retriever | None = None,
        generator: Generator | None = None,
        *,
        budget: BudgetLike = 4.0,
        top_k: int = 10,
        min_score: float | None = None,
        prompt: PromptTemplate | None = None,
        max_tokens: int = 128,
    ) -> None:
        self.compressor: Compressor = (
            compressors.build(compressor) if isinstance(compressor, str | Mapping) else compressor
        )
        self.retriever = retriever
        self.generator = generator
        self.budget = Budget.of(budget)
        if top_k < 1:
            raise ConfigError(f"top_k must be >= 1, got {top_k}")
        self.top_k = top_k
        self.min_score = min_score
        self.prompt = prompt or PromptTemplate()
        self.max_tokens = max_tokens

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Pipeline:
        """Builds a pipeline from a dict (or a parsed YAML/JSON file) of component specs."""
        from ragzip.generators.registry import generators
        from ragzip.retrievers.registry import retrievers

        known = {
            "compressor",
            "retriever",
            "generator",
            "budget",
            "top_k",
            "min_score",
            "prompt",
            "max_tokens",
        }
        unknown = set(config) - known
        if unknown:
            raise ConfigError(f"unknown pipeline keys {sorted(unknown)}; known: {sorted(known)}")
        retriever = retrievers.build(config["retriever"]) if config.get("retriever") else None
        generator = generators.build(config["generator"]) if config.get("generator") else None
        prompt = PromptTemplate(**config["prompt"]) if config.get("prompt") else None
        return cls(
            config.get("compressor", "extractive"),
            retriever,
            generator,
            budget=config.get("budget", 4.0),
            top_k=int(config.get("top_k", 10)),
            min_score=config.get("min_score"),
            prompt=prompt,
            max_tokens=int(config.get("max_tokens", 128)),
        )

    @classmethod
    def from_file(cls, path: str) -> Pipeline:
        """Builds a pipeline from a JSON or YAML file holding the same keys as
        :meth:`from_config`."""
        from ragzip.registry import load_spec

        return cls.from_config(load_spec(path))

    def to_dict(self) -> dict[str, Any]:
        def spec(component: Any) -> Any:
            return component.to_dict() if component is not None else None

        return {
            "compressor": spec(self.compressor),
            "retriever": spec(self.retriever),
            "generator": spec(self.generator),
            "budget": self.budget.to_dict(),
            "top_k": self.top_k,
            "min_score": self.min_score,
            "prompt": self.prompt.to_dict(),
            "max_tokens": self.max_tokens,
        }

    # -- stages ------------------------------------------------------------------------------
    def retrieve(self, query: str) -> list[ScoredDocument]:
        if self.retriever is None:
            raise ConfigError("this pipeline has no retriever: pass documents to run()")
        hits: list[ScoredDocument] = self.retriever.retrieve(query, self.top_k)
        if self.min_score is not None:
            hits = [h for h in hits if h.score >= self.min_score]
        return hits

    def prepare(
        self,
        query: str,
        documents: Sequence[Document | str | Mapping[str, Any]] | None = None,
        budget: BudgetLike | None = None,
    ) -> Prepared:
        """Retrieves (unless documents are given), compresses and assembles the prompt.

        The result feeds :meth:`answer`, :meth:`stream_prepared` or :meth:`astream_prepared`,
        so a caller that checks or inspects the prepared context never repeats this work.
        """
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError("query must be a non-empty string")
        timings: dict[str, float] = {}
        start = time.perf_counter()
        if documents is None:
            retrieved = self.retrieve(query)
        else:
            retrieved = [ScoredDocument(d, 0.0, i) for i, d in enumerate(as_documents(documents))]
        timings["retrieve"] = time.perf_counter() - start
        start = time.perf_counter()
        compression = self.compressor.compress(
            query, [h.document for h in retrieved], budget if budget is not None else self.budget
        )
        timings["compress"] = time.perf_counter() - start
        messages = self.prompt.render(query, compression.documents)
        return Prepared(query, tuple(retrieved), compression, tuple(messages), timings)

    def answer(self, prepared: Prepared) -> PipelineResult:
        """Generates the answer for a prepared context; without a generator it is ``None``."""
        timings = dict(prepared.timings)
        answer, generation = None, None
        if self.generator is not None:
            start = time.perf_counter()
            reads_documents = self._soft_reader(prepared)
            if reads_documents is not None:
                # a generator that compresses documents itself (soft compression) gets them
                # as documents, laid out by this pipeline's prompt template
                generation = reads_documents(
                    prepared.query,
                    _as_inputs(prepared.compression),
                    max_tokens=self.max_tokens,
                    prompt=self.prompt,
                )
            else:
                generation = self.generator.generate(
                    list(prepared.messages), max_tokens=self.max_tokens
                )
            timings["generate"] = time.perf_counter() - start
            answer = generation.text.strip()
        timings["total"] = sum(timings.values())
        return PipelineResult(
            query=prepared.query,
            retrieved=prepared.retrieved,
            compression=prepared.compression,
            messages=prepared.messages,
            answer=answer,
            timings=timings,
            generation=generation,
        )

    def run(
        self,
        query: str,
        documents: Sequence[Document | str | Mapping[str, Any]] | None = None,
        *,
        budget: BudgetLike | None = None,
    ) -> PipelineResult:
        """Runs the whole pipeline; without a generator ``answer`` is ``None``."""
        return self.answer(self.prepare(query, documents, budget))

    async def arun(
        self,
        query: str,
        documents: Sequence[Document | str | Mapping[str, Any]] | None = None,
        *,
        budget: BudgetLike | None = None,
    ) -> PipelineResult:
        """Async twin of :meth:`run`."""
        return await asyncio.to_thread(self.run, query, documents, budget=budget)

    def stream(
        self,
        query: str,
        documents: Sequence[Document | str | Mapping[str, Any]] | None = None,
        *,
        budget: BudgetLike | None = None,
    ) -> Iterator[str]:
        """Yields the answer as it is generated."""
        if self.generator is None:
            raise ConfigError("this pipeline has no generator to stream from")
        yield from self.stream_prepared(self.prepare(query, documents, budget))

    def stream_prepared(self, prepared: Prepared) -> Iterator[str]:
        """Yields the answer for a prepared context as it is generated.

        A soft generator reads the kept documents as embeddings, laid out by this pipeline's
        prompt template, exactly as :meth:`answer` does.
        """
        if self.generator is None:
            raise ConfigError("this pipeline has no generator to stream from")
        streams_documents = getattr(self.generator, "stream_documents", None)
        if self._soft_reader(prepared) is not None and streams_documents is not None:
            return cast(
                Iterator[str],
                streams_documents(
                    prepared.query,
                    _as_inputs(prepared.compression),
                    max_tokens=self.max_tokens,
                    prompt=self.prompt,
                ),
            )
        return cast(
            Iterator[str],
            self.generator.stream(list(prepared.messages), max_tokens=self.max_tokens),
        )

    def astream_prepared(self, prepared: Prepared) -> AsyncIterator[str]:
        """:meth:`stream_prepared` driven by a worker thread (checked at once)."""
        return iterate_in_thread(self.stream_prepared(prepared))

    def _soft_reader(self, prepared: Prepared) -> Any:
        """The generator's document reader when it compresses documents itself, else None."""
        reader = getattr(self.generator, "generate_documents", None)
        return reader if reader is not None and prepared.compression.documents else None


def _as_inputs(compression: CompressionResult) -> list[Document]:
    return [Document(d.text, id=d.source_id, metadata=d.metadata) for d in compression.documents]
