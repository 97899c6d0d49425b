"""The generator contract on the real packaged SmolLM2-135M-Instruct: the local transformers
generator, the OpenAI-compatible client against ragzip's stdlib server wrapping it on loopback,
and the soft generator reading plain text; few tokens per call
(``GeneratorContract.max_tokens``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ragzip.generators import OpenAICompatibleGenerator, TransformersGenerator, running_server
from ragzip.testing.generator_contracts import GeneratorContract

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def local() -> Iterator[TransformersGenerator]:
    # One intra-op thread, as in test_generators_local.py (shared CI runners). Restored after.
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    generator = TransformersGenerator("smollm2-135m", device="cpu")
    generator.warm_up()
    yield generator
    generator.close()
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def served(local: TransformersGenerator) -> Iterator[str]:
    with running_server(local) as base_url:
        yield base_url


class TestTransformersContract(GeneratorContract):
    @pytest.fixture
    def generator(self, local: TransformersGenerator) -> TransformersGenerator:
        return local


@pytest.fixture(scope="module")
def client(served: str) -> Iterator[OpenAICompatibleGenerator]:
    generator = OpenAICompatibleGenerator(served, "smollm2-135m", timeout=60)
    yield generator
    generator.close()


class TestOpenAIClientOnTransformersContract(GeneratorContract):
    work_methods = (*GeneratorContract.work_methods, "_send", "_asend")

    @pytest.fixture
    def generator(self, client: OpenAICompatibleGenerator) -> OpenAICompatibleGenerator:
        return client


@pytest.fixture(scope="module")
def soft() -> Iterator[object]:
    """The soft generator on plain text: the same decoder, fed token embeddings step by step."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("peft")
    from ragzip.generators.soft import SoftGenerator

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    generator = SoftGenerator(device="cpu")
    generator.warm_up()
    yield generator
    torch.set_num_threads(threads)


class TestSoftContract(GeneratorContract):
    @pytest.fixture
    def generator(self, soft: object) -> object:
        return soft
