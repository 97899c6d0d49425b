"""What every compressor result keeps, checked by :func:`check_result`.

The compressor contract suite (:mod:`ragzip.testing.contracts`) runs it on every result; call
it from your own tests to check one result. Unlike the suite, this module needs no pytest.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

from ragzip.compressors.base import Compressor
from ragzip.tokens import TokenCounter, get_counter
from ragzip.types import Budget, CompressionResult, Document

__all__ = ["check_result", "compressor_counter", "summary"]


def compressor_counter(
    compressor: Compressor, result: CompressionResult | None = None
) -> TokenCounter:
    """The compressor's token counter (a :class:`BaseCompressor` has one), else the one its
    results name."""
    counter = getattr(compressor, "counter", None)
    if isinstance(counter, TokenCounter):
        return counter
    if result is None:
        result = compressor.compress("", [], 1.0)
    return get_counter(result.tokenizer)


def check_result(
    compressor: Compressor,
    result: CompressionResult,
    documents: Sequence[Document],
    budget: Budget,
) -> None:
    """Asserts the invariants every result keeps, whatever the input.

    * it is a :class:`CompressionResult` named after the compressor, with builtin numbers;
    * ``tokens_before``/``tokens_after`` are honest recounts, and ``tokens_after`` is within
      ``budget.limit(tokens_before)``;
    * kept documents refer to input ids, in input order, none of them blank, and
      ``dropped_ids`` lists exactly the other inputs, in order;
    * spans lie inside their source, and the text of each span is in the kept text (unless the
      document was cut to fit, ``metadata["truncated"]``);
    * ``to_dict()`` is JSON-serializable.

    Args:
        compressor: The compressor that produced ``result``.
        result: What it returned.
        documents: The input documents, with their ids.
        budget: The budget it was given.
    """
    assert isinstance(result, CompressionResult), f"expected a CompressionResult, got {result!r}"
    assert result.compressor == compressor.name, (result.compressor, compressor.name)
    assert type(result.tokens_before) is int and type(result.tokens_after) is int
    counter = compressor_counter(compressor, result)
    before = sum(counter.count(d.text) for d in documents)
    after = sum(counter.count(d.text) for d in result.documents)
    assert result.tokens_before == before, f"tokens_before {result.tokens_before} != {before}"
    assert result.tokens_after == after, f"tokens_after {result.tokens_after} != recount {after}"
    limit = budget.limit(before)
    assert after <= limit, f"{after} tokens kept, over the limit of {limit} ({budget})"

    position = {d.id: i for i, d in enumerate(documents)}
    kept_positions = []
    for doc in result.documents:
        assert doc.source_id in position, f"unknown source id {doc.source_id!r}"
        assert doc.text.strip(), f"blank document kept for {doc.source_id!r}"
        assert doc.score is None or type(doc.score) is float, f"score {doc.score!r} not a float"
        kept_positions.append(position[doc.source_id])
        source = documents[position[doc.source_id]].text
        for span in doc.spans:
            assert 0 <= span.start <= span.end <= len(source), f"span {span} outside source"
            if not doc.metadata.get("truncated"):
                piece = source[span.start : span.end]
                assert piece in doc.text, f"span {span} ({piece[:60]!r}) not in the kept text"
    assert kept_positions == sorted(kept_positions), "kept documents are not in input order"
    kept_ids = {d.source_id for d in result.documents}
    expected_dropped = [d.id for d in documents if d.id not in kept_ids]
    assert list(result.dropped_ids) == expected_dropped, (result.dropped_ids, expected_dropped)
    assert "total" in result.timings and result.timings["total"] >= 0
    assert all(type(v) is float for v in result.timings.values()), dict(result.timings)
    as_dict = result.to_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict, "to_dict() is not plain JSON"
    if result.tokens_after:
        assert math.isclose(result.ratio, result.tokens_before / result.tokens_after)


def summary(result: CompressionResult) -> list[tuple[str, str]]:
    """What a result kept, as ``(source id, text)`` pairs: what two equal results share."""
    return [(d.source_id, d.text) for d in result.documents]
