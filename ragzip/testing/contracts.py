"""The contract every ragzip compressor keeps, as a reusable pytest suite.

Subclass :class:`CompressorContract` in a test module and provide a ``compressor`` fixture;
pytest then runs every ``test_*`` method of the contract against it::

    import pytest
    from ragzip.testing import CompressorContract

    class TestMyCompressor(CompressorContract):
        @pytest.fixture
        def compressor(self):
            return MyCompressor(tokenizer="words")

This module imports pytest (``pip install 'ragzip[dev]'``); the fakes and fixtures of
:mod:`ragzip.testing` do not. Assertion messages are spelled out; for pytest's detailed diffs
as well, call ``pytest.register_assert_rewrite("ragzip.testing.contracts")`` in your
``conftest.py`` before importing it.

The invariants of a single result are :func:`~ragzip.testing.compressor_checks.check_result`
(re-exported here); the retriever and generator contracts are in
:mod:`ragzip.testing.retriever_contracts` and :mod:`ragzip.testing.generator_contracts`.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import re
from typing import Any, ClassVar

import pytest

from ragzip.compressors.base import Compressor
from ragzip.compressors.registry import compressors
from ragzip.errors import InvalidInputError
from ragzip.testing.compressor_checks import check_result, compressor_counter, summary
from ragzip.testing.fixtures import (
    DOCUMENTS,
    INVALID_UTF8,
    QUESTIONS,
    UNICODE_TEXTS,
    large_document,
)
from ragzip.text import decode_text, segment
from ragzip.types import Budget, CompressionResult, Document

__all__ = ["CompressorContract", "check_result"]


class CompressorContract:
    """Contract tests for one compressor; subclasses provide the ``compressor`` fixture.

    The ``documents`` and ``query`` fixtures default to :mod:`ragzip.testing.fixtures`;
    override them to run the contract on texts of your domain (at least three documents with
    distinct ids and a few sentences each).

    Attributes:
        large_document_chars: Size of the document of :meth:`test_large_document_completes`.
        tiny_budget_may_be_empty: Whether a budget smaller than any sentence may give an empty
            result. Set it to ``False`` for compressors that always return some text.
    """

    large_document_chars: ClassVar[int] = 5_000_000
    tiny_budget_may_be_empty: ClassVar[bool] = True

    @pytest.fixture
    def compressor(self) -> Compressor:
        raise NotImplementedError("subclasses of CompressorContract provide a compressor fixture")

    @pytest.fixture
    def documents(self) -> list[Document]:
        return list(DOCUMENTS)

    @pytest.fixture
    def query(self) -> str:
        return QUESTIONS[0].question

    # -- shape -------------------------------------------------------------------------------
    def test_is_a_compressor(self, compressor: Compressor) -> None:
        assert isinstance(compressor, Compressor)
        assert isinstance(compressor.name, str) and compressor.name

    # -- budgets -----------------------------------------------------------------------------
    @pytest.mark.parametrize("ratio", [1.0, 2.0, 4.0, 10.0])
    def test_ratio_budget_is_respected(
        self, compressor: Compressor, documents: list[Document], query: str, ratio: float
    ) -> None:
        budget = Budget(ratio=ratio)
        result = compressor.compress(query, documents, budget)
        check_result(compressor, result, documents, budget)

    @pytest.mark.parametrize("tokens", [0, 1, 7, 40, 100_000])
    def test_token_budget_is_respected(
        self, compressor: Compressor, documents: list[Document], query: str, tokens: int
    ) -> None:
        budget = Budget(tokens=tokens)
        result = compressor.compress(query, documents, budget)
        check_result(compressor, result, documents, budget)
        if tokens == 0:
            assert result.documents == () and result.tokens_after == 0

    @pytest.mark.parametrize(("ratio", "tokens"), [(2.0, 20), (20.0, 100_000)])
    def test_stricter_of_ratio_and_tokens_wins(
        self,
        compressor: Compressor,
        documents: list[Document],
        query: str,
        ratio: float,
        tokens: int,
    ) -> None:
        budget = Budget(ratio=ratio, tokens=tokens)
        result = compressor.compress(query, documents, budget)
        check_result(compressor, result, documents, budget)
        assert result.tokens_after <= min(tokens, result.tokens_before / ratio)

    def test_budget_forms_are_equivalent(
        self, compressor: Compressor, documents: list[Document], query: str
    ) -> None:
        expected = summary(compressor.compress(query, documents, Budget(ratio=4.0)))
        for form in (4, 4.0, {"ratio": 4}):
            assert summary(compressor.compress(query, documents, form)) == expected, form

    def test_budget_smaller_than_any_sentence(
        self, compressor: Compressor, documents: list[Document], query: str
    ) -> None:
        counter = compressor_counter(compressor)
        sizes = [counter.count(d.text[s.start : s.end]) for d in documents for s in segment(d.text)]
        assert min(sizes) >= 3, "fixture sentences are too short for this test"
        budget = Budget(tokens=min(sizes) - 1)
        result = compressor.compress(query, documents, budget)
        check_result(compressor, result, documents, budget)
        if not self.tiny_budget_may_be_empty:
            assert result.documents, "an empty result for a budget smaller than any sentence"

    def test_must_keep_strings_survive_when_they_fit(
        self, compressor: Compressor, documents: list[Document], query: str
    ) -> None:
        # A phrase from the last sentence of the last document, a word pattern from the
        # second to last: far from the query in the default fixtures.
        last = documents[-1].text
        span = segment(last)[-1]
        phrase = " ".join(last[span.start : span.end].split()[:4])
        other = documents[-2].text
        other_span = segment(other)[-1]
        word = max(other[other_span.start : other_span.end].split(), key=len).strip(".,;:!?")
        pattern = rf"\b{re.escape(word)}\b"
        budget = Budget(ratio=2.0, keep=(phrase,), keep_patterns=(pattern,))
        counter = compressor_counter(compressor)
        needed = counter.count(last[span.start : span.end]) + counter.count(
            other[other_span.start : other_span.end]
        )
        limit = budget.limit(sum(counter.count(d.text) for d in documents))
        if needed > limit // 2:
            pytest.skip("the must-keep sentences of these documents do not fit this budget")
        result = compressor.compress(query, documents, budget)
        check_result(compressor, result, documents, budget)
        assert phrase in result.text(), f"must-keep {phrase!r} was dropped"
        assert re.search(pattern, result.text()), f"must-keep pattern {pattern!r} was dropped"

    # -- order, ids, inputs ------------------------------------------------------------------
    def test_kept_documents_follow_input_order(
        self, compressor: Compressor, documents: list[Document], query: str
    ) -> None:
        for docs in (documents, documents[::-1]):
            for ratio in (1.5, 3.0):
                budget = Budget(ratio=ratio)
                check_result(compressor, compressor.compress(query, docs, budget), docs, budget)

    def test_accepts_strings_dicts_and_documents(
        self, compressor: Compressor, documents: list[Document], query: str
    ) -> None:
        budget = Budget(ratio=2.0)
        as_strings = [d.text for d in documents]
        positional = [Document(d.text, id=str(i)) for i, d in enumerate(documents)]
        result = compressor.compress(query, as_strings, budget)
        check_result(compressor, result, positional, budget)
        as_dicts = [d.to_dict() for d in documents]
        from_dicts = compressor.compress(query, as_dicts, budget)
        check_result(compressor, from_dicts, documents, budget)
        from_documents = compressor.compress(query, documents, budget)
        assert summary(from_dicts) == summary(from_documents)

    def test_duplicate_ids_still_identify_documents(
        self, compressor: Compressor, documents: list[Document], query: str
    ) -> None:
        same_id = [Document(d.text, id="same", metadata=d.metadata) for d in documents]
        result = compressor.compress(query, same_id, Budget(ratio=1.5))
        ids = [d.source_id for d in result.documents]
        assert len(set(ids)) == len(ids), f"kept documents share ids: {ids}"
        assert all(i == "same" or i.startswith("same#") for i in ids), ids
        assert len(set(result.dropped_ids)) == len(result.dropped_ids)
        assert len(ids) + len(result.dropped_ids) == len(same_id)

    def test_does_not_mutate_inputs(
        self, compressor: Compressor, documents: list[Document], query: str
    ) -> None:
        as_dicts: list[dict[str, Any]] = [
            {**d.to_dict(), "metadata": {**dict(d.metadata), "nested": {"tags": ["a", "b"]}}}
            for d in documents
        ]
        budget = Budget(ratio=3.0, keep=("the",), keep_patterns=(r"\d+",))
        snapshots = (
            copy.deepcopy(as_dicts),
            copy.deepcopy([d.to_dict() for d in documents]),
            budget.to_dict(),
        )
        compressor.compress(query, as_dicts, budget)
        compressor.compress(query, documents, budget)
        assert as_dicts == snapshots[0], "input dicts were modified"
        assert [d.to_dict() for d in documents] == snapshots[1], "input documents were modified"
        assert budget.to_dict() == snapshots[2]

    def test_invalid_input_raises_invalid_input_error(
        self, compressor: Compressor, documents: list[Document], query: str
    ) -> None:
        bad: list[tuple[Any, Any, Any]] = [
            (query, None, 2.0),
            (query, "a single string", 2.0),
            (query, [b"bytes are not text"], 2.0),
            (query, [{"no_text": 1}], 2.0),
            (123, documents, 2.0),
            (query, documents, 0.5),
            (query, documents, "four"),
        ]
        for args in bad:
            with pytest.raises(InvalidInputError):
                compressor.compress(*args)

    # -- degenerate input --------------------------------------------------------------------
    def test_empty_document_list(self, compressor: Compressor, query: str) -> None:
        result = compressor.compress(query, [], Budget(ratio=2.0))
        assert result.documents == () and result.dropped_ids == ()
        assert result.tokens_before == 0 and result.tokens_after == 0
        assert result.ratio == 1.0 and result.text() == ""

    def test_whitespace_only_documents(self, compressor: Compressor, query: str) -> None:
        blank = [Document(t, id=f"blank{i}") for i, t in enumerate(["", " ", "\n\t \r\n"])]
        result = compressor.compress(query, blank, Budget(ratio=2.0))
        assert result.documents == () and result.tokens_after == 0
        assert result.tokens_before == 0
        assert list(result.dropped_ids) == [d.id for d in blank]

    def test_whitespace_documents_among_real_ones(
        self, compressor: Compressor, documents: list[Document], query: str
    ) -> None:
        mixed = [Document("  \n ", id="blank0"), *documents, Document("", id="blank1")]
        budget = Budget(ratio=2.0)
        result = compressor.compress(query, mixed, budget)
        check_result(compressor, result, mixed, budget)
        assert {"blank0", "blank1"} <= set(result.dropped_ids)

    def test_empty_query(self, compressor: Compressor, documents: list[Document]) -> None:
        budget = Budget(ratio=3.0)
        check_result(compressor, compressor.compress("", documents, budget), documents, budget)

    def test_unicode_and_invalid_utf8(self, compressor: Compressor, query: str) -> None:
        decoded = decode_text(INVALID_UTF8)
        assert "\ufffd" in decoded
        docs = [Document(decoded, id="bytes")] + [
            Document(t, id=f"unicode{i}") for i, t in enumerate(UNICODE_TEXTS)
        ]
        for q in (query, "Quelle est la réponse ? 答えは何ですか 🚀", decoded):
            for budget in (Budget(ratio=2.0), Budget(tokens=10)):
                check_result(compressor, compressor.compress(q, docs, budget), docs, budget)

    def test_lone_surrogates(
        self, compressor: Compressor, documents: list[Document], query: str
    ) -> None:
        """JSON may carry lone surrogates (``"\\ud800"``), so a REST request can hand them over."""
        docs = [Document("Broken \ud800 surrogate. Another \udcff sentence here.", id="s")]
        docs += documents
        for q in (query, "question \udcff?"):
            budget = Budget(ratio=2.0)
            check_result(compressor, compressor.compress(q, docs, budget), docs, budget)

    def test_large_document_completes(
        self, compressor: Compressor, documents: list[Document], query: str
    ) -> None:
        large = large_document(self.large_document_chars)
        docs = [*documents, large]
        budget = Budget(ratio=4.0)
        result = compressor.compress(query, docs, budget)
        check_result(compressor, result, docs, budget)
        assert result.tokens_before > 0

    # -- async, determinism, immutability, configuration -------------------------------------
    def test_async_equals_sync(
        self, compressor: Compressor, documents: list[Document], query: str
    ) -> None:
        budget = Budget(ratio=3.0)
        queries = [query, *(q.question for q in QUESTIONS)]

        async def run_all() -> list[CompressionResult]:
            return list(
                await asyncio.gather(*(compressor.acompress(q, documents, budget) for q in queries))
            )

        concurrent = asyncio.run(run_all())
        sequential = [compressor.compress(q, documents, budget) for q in queries]
        for a, s in zip(concurrent, sequential, strict=True):
            assert summary(a) == summary(s)
            assert (a.tokens_before, a.tokens_after) == (s.tokens_before, s.tokens_after)
            assert a.dropped_ids == s.dropped_ids

    def test_is_deterministic(
        self, compressor: Compressor, documents: list[Document], query: str
    ) -> None:
        first = compressor.compress(query, documents, Budget(ratio=2.5))
        second = compressor.compress(query, documents, Budget(ratio=2.5))
        assert summary(first) == summary(second)
        assert [d.spans for d in first.documents] == [d.spans for d in second.documents]

    def test_result_is_frozen(
        self, compressor: Compressor, documents: list[Document], query: str
    ) -> None:
        result = compressor.compress(query, documents, Budget(ratio=1.5))
        assert result.documents, "expected some text at ratio 1.5"
        with pytest.raises(dataclasses.FrozenInstanceError):
            result.tokens_after = 0  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            result.documents[0].text = "changed"  # type: ignore[misc]
        assert isinstance(result.documents, tuple) and isinstance(result.dropped_ids, tuple)
        with pytest.raises(TypeError):
            result.info["new"] = 1  # type: ignore[index]
        with pytest.raises(TypeError):
            result.timings["new"] = 1.0  # type: ignore[index]
        with pytest.raises(TypeError):
            result.documents[0].metadata["new"] = 1  # type: ignore[index]

    def test_to_dict_round_trips_through_the_registry(self, compressor: Compressor) -> None:
        spec = compressor.to_dict()
        assert set(spec) == {"type", "params"}, spec
        assert json.loads(json.dumps(spec)) == spec, "to_dict() is not plain JSON"
        if spec["type"] not in compressors.names():
            pytest.skip(f"{spec['type']!r} is not in the compressor registry")
        if compressors.get(spec["type"]) is not type(compressor):
            pytest.skip(f"{spec['type']!r} is registered to another class")
        rebuilt = compressors.build(compressor.to_dict())
        assert type(rebuilt) is type(compressor)
        assert rebuilt.to_dict() == spec
