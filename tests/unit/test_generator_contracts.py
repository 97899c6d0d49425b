"""The generator contract on the model-free EchoGenerator fake, directly and through the
OpenAI-compatible client talking to ragzip's own stdlib server on loopback. The same contract
runs on the real SmolLM2-135M in tests/integration/test_generator_contracts_smollm.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ragzip.generators import OpenAICompatibleGenerator, running_server
from ragzip.generators.base import BaseGenerator
from ragzip.testing.fakes import EchoGenerator
from ragzip.testing.generator_contracts import GeneratorContract


class TestEchoContract(GeneratorContract):
    @pytest.fixture
    def generator(self) -> BaseGenerator:
        return EchoGenerator()


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    with running_server(EchoGenerator(), model_name="echo") as base_url:
        yield base_url


class TestOpenAIClientOnEchoContract(GeneratorContract):
    work_methods = (*GeneratorContract.work_methods, "_send", "_asend")

    @pytest.fixture
    def generator(self, echo_url: str) -> Iterator[OpenAICompatibleGenerator]:
        client = OpenAICompatibleGenerator(echo_url, "echo", api_key="sk-test", timeout=10)
        yield client
        client.close()


def test_echo_is_not_registered() -> None:
    from ragzip.generators import generators

    assert "echo-fake" not in generators.names()
