"""retrieve -> compress -> assemble -> generate, on real components: FAISS with MiniLM, the
extractive compressor, SmolLM2 locally and behind an OpenAI-compatible server on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from importlib import resources

import pytest

from ragzip.cli.main import main
from ragzip.errors import ConfigError, InvalidInputError
from ragzip.generators import OpenAICompatibleGenerator, TransformersGenerator, running_server
from ragzip.middleware.pipeline import Pipeline
from ragzip.retrievers.faiss_index import FaissRetriever
from ragzip.types import Budget, Document

pytestmark = pytest.mark.integration


def corpus() -> list[Document]:
    text = (resources.files("ragzip") / "data" / "demo_corpus.jsonl").read_text()
    return [Document.from_any(json.loads(line)) for line in text.splitlines()]


@pytest.fixture(scope="module")
def retriever() -> FaissRetriever:
    index = FaissRetriever("minilm")
    index.add(corpus())
    return index


@pytest.fixture(scope="module")
def local() -> Iterator[TransformersGenerator]:
    gen = TransformersGenerator("smollm2-135m")
    gen.warm_up()
    yield gen


def test_pipeline_compresses_and_answers(retriever: FaissRetriever, local) -> None:
    pipe = Pipeline("extractive", retriever, local, budget=Budget(ratio=4), top_k=5, max_tokens=24)
    out = pipe.run("Who designed the Eiffel Tower?")
    assert out.retrieved[0].document.id == "eiffel"
    assert "Gustave Eiffel" in out.context
    assert out.compression.ratio >= 4
    assert out.answer and "Eiffel" in out.answer
    stats = out.stats()
    assert {"retrieve", "compress", "generate", "total"} <= set(stats["timings"])
    assert "Gustave Eiffel" in out.messages[-1]["content"]


def test_pipeline_through_an_openai_compatible_server(retriever: FaissRetriever, local) -> None:
    with running_server(local, model_name="smollm2-135m") as base_url:
        remote = OpenAICompatibleGenerator(base_url, "smollm2-135m", timeout=120)
        pipe = Pipeline("extractive", retriever, remote, budget=4, top_k=5, max_tokens=16)
        out = pipe.run("When did Apollo 11 land on the Moon?")
        streamed = "".join(pipe.stream("When did Apollo 11 land on the Moon?"))
    assert "1969" in out.context
    assert out.answer is not None and out.answer.strip() == streamed.strip()


def test_from_config_round_trip_and_async(retriever: FaissRetriever) -> None:
    config = {
        "compressor": {"type": "extractive", "params": {"tokenizer": "words"}},
        "retriever": {"type": "faiss"},
        "budget": {"ratio": 3},
        "top_k": 4,
    }
    pipe = Pipeline.from_config(config)
    pipe.retriever = retriever
    again = Pipeline.from_config({k: v for k, v in pipe.to_dict().items() if v is not None})
    assert again.to_dict()["compressor"] == pipe.to_dict()["compressor"]
    out = asyncio.run(pipe.arun("Which river carries the most water?"))
    assert out.answer is None and "Amazon" in out.context
    docs = ["Mitochondria make ATP.", "Bees make honey."]
    direct = pipe.run("What makes ATP?", docs, budget=Budget(ratio=2))
    assert direct.context == "Mitochondria make ATP."


def test_pipeline_errors_are_typed() -> None:
    with pytest.raises(ConfigError):
        Pipeline.from_config({"compressor": "extractive", "colour": "blue"})
    pipe = Pipeline("truncate")
    with pytest.raises(ConfigError, match="no retriever"):
        pipe.run("question")
    with pytest.raises(InvalidInputError):
        pipe.run("  ", ["doc"])


def test_demo_runs_offline(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "demo",
            "--question",
            "Which organelle produces ATP in the cell?",
            "--max-tokens",
            "24",
            "--no-compare",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "retrieved" in out and "kept" in out and "A: " in out
    assert "Mitochondri" in out


def test_from_yaml_file(tmp_path, retriever: FaissRetriever) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        "compressor:\n  type: extractive\n  params: {tokenizer: words, context_window: 1}\n"
        "budget: {ratio: 2}\ntop_k: 3\n"
    )
    pipe = Pipeline.from_file(str(path))
    assert pipe.compressor.to_dict()["params"]["context_window"] == 1
    assert pipe.top_k == 3 and pipe.budget.ratio == 2.0
    out = pipe.run("What pigment absorbs light?", [d.text for d in corpus()[:4]])
    assert "chlorophyll" in out.context
