"""Mixed code and prose retrieved from a real FAISS index and routed through the pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragzip.compressors.router import RouterCompressor
from ragzip.middleware.pipeline import Pipeline
from ragzip.retrievers.faiss_index import FaissRetriever
from ragzip.testing import CompressorContract
from ragzip.types import Budget, Document

pytestmark = pytest.mark.integration
pytest.importorskip("tree_sitter")

FIXTURES = Path(__file__).parent.parent / "fixtures" / "code"

PROSE = [
    Document(
        "Inventory policy. Items are restocked every Monday by the warehouse team. A restock "
        "adds the delivered amount to the quantity on hand; negative amounts are refused and "
        "reported to the supervisor. Empty items are flagged in the weekly report.",
        id="policy",
        metadata={"title": "Inventory policy"},
    ),
    Document(
        "Holiday schedule. The office closes on public holidays and the last week of December. "
        "Staff may carry five unused days into the next year.",
        id="holidays",
        metadata={"title": "Holidays"},
    ),
]


class TestRouterContract(CompressorContract):
    large_document_chars = 60_000

    @pytest.fixture(scope="class")
    def compressor(self) -> RouterCompressor:
        return RouterCompressor({"code": {"type": "code", "params": {"scoring": "bi"}}})


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    sources = [
        Document(p.read_text(encoding="utf-8"), id=p.name, metadata={"path": p.name})
        for p in sorted(FIXTURES.iterdir())
        if p.suffix in (".py", ".go", ".java")
    ]
    index = FaissRetriever("minilm", use_gpu=False)
    index.add([*sources, *PROSE])
    router = {"type": "router", "params": {
        "routes": {"code": {"type": "code", "params": {"scoring": "bi"}}, "prose": "extractive"},
        "allocation": "relevance", "tokenizer": "words"}}  # fmt: skip
    pipe = Pipeline(router, retriever=index, budget=Budget(ratio=2), top_k=4)
    return pipe


def test_code_and_prose_are_routed_under_one_budget(pipeline: Pipeline) -> None:
    out = pipeline.run("How is an item restocked, and what amounts are refused?")
    result = out.compression
    routes = result.info["routes"]
    assert routes["inventory.py"] == "code" and routes["policy"] == "prose"
    kept = {d.source_id: d for d in result.documents}
    assert "def restock(self, amount: int) -> None:" in kept["inventory.py"].text
    assert kept["inventory.py"].metadata["compressor"] == "code"
    assert kept["policy"].metadata["compressor"] == "extractive"
    assert "negative amounts are refused" in kept["policy"].text
    assert result.tokens_after <= Budget(ratio=2).limit(result.tokens_before)
    assert "restock" in out.context
