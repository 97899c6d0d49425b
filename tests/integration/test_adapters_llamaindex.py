"""RagzipNodePostprocessor on real llama-index-core nodes with the extractive compressor
(packaged MiniLM)."""

from __future__ import annotations

import copy
import json

import pytest
from llama_index.core.schema import (
    ImageNode,
    MetadataMode,
    NodeWithScore,
    QueryBundle,
    TextNode,
)

from ragzip.adapters.llamaindex import RagzipNodePostprocessor
from ragzip.compressors.extractive import ExtractiveCompressor
from ragzip.errors import ConfigError, InvalidInputError
from ragzip.middleware.pipeline import Pipeline
from ragzip.testing import DOCUMENTS, QUESTIONS, KeywordCompressor
from ragzip.types import Budget

pytestmark = pytest.mark.integration

QUESTION = QUESTIONS[3]  # How high is Mount Kilimanjaro? -> 5,895 metres


@pytest.fixture(scope="module")
def postprocessor() -> RagzipNodePostprocessor:
    return RagzipNodePostprocessor(ExtractiveCompressor(encoder="minilm"), budget=4)


def nodes() -> list[NodeWithScore]:
    return [
        NodeWithScore(
            node=TextNode(text=d.text, id_=d.id, metadata=copy.deepcopy(dict(d.metadata))),
            score=1.0 - i / 10,
        )
        for i, d in enumerate(DOCUMENTS)
    ]


def test_postprocess_compresses_and_keeps_node_identity(
    postprocessor: RagzipNodePostprocessor,
) -> None:
    given = nodes()
    snapshot = copy.deepcopy(given)
    out = postprocessor.postprocess_nodes(given, query_bundle=QueryBundle(QUESTION.question))
    assert [n.node.model_dump() for n in given] == [n.node.model_dump() for n in snapshot]
    assert [n.score for n in given] == [n.score for n in snapshot]
    text = " ".join(n.node.get_content() for n in out)
    assert QUESTION.answer in text
    assert len(text.split()) * 3 < sum(len(d.text.split()) for d in DOCUMENTS)
    order = [n.node.node_id for n in given]
    ids = [n.node.node_id for n in out]
    assert ids == sorted(ids, key=order.index)  # input order
    for item in out:
        source = next(n for n in given if n.node.node_id == item.node.node_id)
        assert item.node is not source.node
        assert item.score == source.score
        provenance = item.node.metadata["ragzip"]
        assert {k: v for k, v in item.node.metadata.items() if k != "ragzip"} == (
            source.node.metadata
        )
        assert provenance["source_id"] == source.node.node_id
        assert provenance["compressor"] == "extractive"
        assert provenance["ratio"] >= 4
        for start, end in provenance["spans"]:
            assert source.node.get_content()[start:end].strip() in item.node.get_content()
        assert "ragzip" not in item.node.get_content(metadata_mode=MetadataMode.LLM)
        assert "ragzip" not in item.node.get_content(metadata_mode=MetadataMode.EMBED)


async def test_async_equals_sync_and_query_str(postprocessor: RagzipNodePostprocessor) -> None:
    sync = postprocessor.postprocess_nodes(nodes(), query_str=QUESTION.question)
    async_ = await postprocessor.apostprocess_nodes(nodes(), query_str=QUESTION.question)
    assert [(n.node.node_id, n.node.get_content()) for n in async_] == [
        (n.node.node_id, n.node.get_content()) for n in sync
    ]


def test_non_text_nodes_pass_through_and_empty_input(
    postprocessor: RagzipNodePostprocessor,
) -> None:
    image = NodeWithScore(node=ImageNode(image="aGk=", id_="img"), score=0.5)
    text_only = [n for n in nodes() if not isinstance(n.node, ImageNode)]
    out = postprocessor.postprocess_nodes([image, *text_only], query_str=QUESTION.question)
    assert out[0] is image  # ImageNode is a TextNode subclass but carries no text to compress
    assert postprocessor.postprocess_nodes([], query_str=QUESTION.question) == []
    with pytest.raises(InvalidInputError):
        postprocessor.postprocess_nodes(["text"], query_str="q")  # type: ignore[list-item]


def test_construction_from_names_pipelines_and_errors() -> None:
    assert RagzipNodePostprocessor("truncate").compressor.name == "truncate"
    pipe = Pipeline(KeywordCompressor(tokenizer="words"), budget={"tokens": 9})
    built = RagzipNodePostprocessor(pipe)
    assert built.compressor is pipe.compressor and built.budget == Budget(tokens=9)
    assert RagzipNodePostprocessor.class_name() == "RagzipNodePostprocessor"
    with pytest.raises(ConfigError):
        RagzipNodePostprocessor(3.5)
    with pytest.raises(InvalidInputError):
        RagzipNodePostprocessor("truncate", budget=0)


def test_to_dict_and_to_json_round_trip() -> None:
    built = RagzipNodePostprocessor(
        "truncate", budget=Budget(ratio=2, tokens=50, keep=("Fleming",), keep_patterns=(r"\d+",))
    )
    data = built.to_dict()
    assert data["class_name"] == "RagzipNodePostprocessor"
    assert data["compressor"] == built.compressor.to_dict()
    assert data["budget"] == built.budget.to_dict()
    assert json.loads(built.to_json()) == data
    for again in (
        RagzipNodePostprocessor.from_dict(data),
        RagzipNodePostprocessor.from_json(built.to_json()),
    ):
        assert isinstance(again, RagzipNodePostprocessor)
        assert again.compressor.to_dict() == built.compressor.to_dict()
        assert again.budget == built.budget
    assert data["class_name"] == "RagzipNodePostprocessor"  # from_dict left its input alone


def test_round_trip_of_a_model_compressor_compresses_alike(
    postprocessor: RagzipNodePostprocessor,
) -> None:
    again = RagzipNodePostprocessor.from_json(postprocessor.to_json())
    assert isinstance(again.compressor, ExtractiveCompressor)
    assert again.compressor.to_dict() == postprocessor.compressor.to_dict()
    out = again.postprocess_nodes(nodes(), query_str=QUESTION.question)
    assert [n.node.get_content() for n in out] == [
        n.node.get_content()
        for n in postprocessor.postprocess_nodes(nodes(), query_str=QUESTION.question)
    ]


async def test_a_missing_query_is_a_typed_error(postprocessor: RagzipNodePostprocessor) -> None:
    for call in (
        lambda: postprocessor.postprocess_nodes(nodes()),
        lambda: postprocessor.postprocess_nodes(nodes(), query_bundle=QueryBundle("  ")),
        lambda: postprocessor.postprocess_nodes(nodes(), query_str=""),
    ):
        with pytest.raises(InvalidInputError, match=r"pass query_bundle=.* or query_str="):
            call()
    with pytest.raises(InvalidInputError, match=r"pass query_bundle=.* or query_str="):
        await postprocessor.apostprocess_nodes(nodes())
    with pytest.raises(ValueError):  # what llama-index's own postprocessors raise
        postprocessor.postprocess_nodes([])
