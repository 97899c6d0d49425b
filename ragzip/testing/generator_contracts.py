"""The contract every ragzip generator keeps, as a reusable pytest suite.

Subclass :class:`GeneratorContract` in a test module and provide a ``generator`` fixture;
pytest then runs every ``test_*`` method of the contract against it::

    import pytest
    from ragzip.testing.generator_contracts import GeneratorContract

    class TestMyGenerator(GeneratorContract):
        @pytest.fixture
        def generator(self):
            return MyGenerator(...)

What is checked, all under greedy decoding (``temperature=0``) and a few tokens, so that a
small real model on a CPU keeps it quick: ``generate`` returns a frozen :class:`Generation`
with its text, model and token counts; ``stream`` joins to ``generate``'s text; stop strings
cut both alike; ``max_tokens`` is respected; ``agenerate``/``astream`` equal their sync twins;
``generate_batch`` answers in order; invalid input raises
:class:`~ragzip.errors.InvalidInputError` before the backend does any work; ``with`` closes and
a closed generator may be used again; ``to_dict()`` round-trips through the registry. The
greedy answer to a prompt is generated once per generator object and reused across tests
(:func:`~ragzip.testing.generator_checks.greedy`); the determinism test checks afresh that the
reuse is sound.

This module imports pytest (``pip install 'ragzip[dev]'``); the invariants of one generation
are :func:`~ragzip.testing.generator_checks.check_generation` (re-exported here).
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import math
from typing import Any, ClassVar

import pytest

from ragzip.errors import InvalidInputError
from ragzip.generators.base import Generation, Generator, MessagesLike
from ragzip.generators.registry import generators
from ragzip.testing.generator_checks import (
    BackendSpy,
    check_generation,
    collect,
    greedy,
    joined,
    stop_inside,
)

__all__ = ["GeneratorContract", "check_generation"]


class GeneratorContract:
    """Contract tests for one generator; subclasses provide the ``generator`` fixture.

    The ``messages`` fixture is the prompt of most tests (a short question); ``prompts`` gives
    two different ones for batches and concurrent calls. Override them for a model that needs
    other prompts.

    Attributes:
        max_tokens: Tokens generated per call: few, so that real models stay quick.
        reports_usage: Whether generations carry prompt and completion token counts.
        batch_matches_single: Whether ``generate_batch`` gives exactly the texts of single
            calls (a backend whose padded batches change greedy results sets ``False``; the
            order is then checked by the first word only).
        work_methods: Methods that do the backend's work; the invalid-input test makes them
            fail if called. A backend with other entry points (an HTTP client's send) adds
            them.
    """

    max_tokens: ClassVar[int] = 4
    reports_usage: ClassVar[bool] = True
    batch_matches_single: ClassVar[bool] = True
    work_methods: ClassVar[tuple[str, ...]] = ("_generate", "_stream", "_generate_batch")

    @pytest.fixture
    def generator(self) -> Generator:
        raise NotImplementedError("subclasses of GeneratorContract provide a generator fixture")

    @pytest.fixture
    def messages(self) -> MessagesLike:
        return [
            {"role": "system", "content": "Answer in one short sentence."},
            {"role": "user", "content": "What is the capital of France?"},
        ]

    @pytest.fixture
    def prompts(self) -> list[MessagesLike]:
        return ["Name a primary colour.", [{"role": "user", "content": "Who wrote Hamlet?"}]]

    @pytest.fixture
    def answer(self, generator: Generator, messages: MessagesLike) -> Generation:
        return greedy(generator, messages, self.max_tokens)

    # -- generate ----------------------------------------------------------------------------
    def test_is_a_generator(self, generator: Generator) -> None:
        assert isinstance(generator, Generator)
        assert isinstance(getattr(generator, "name", None), str) and generator.name  # type: ignore[attr-defined]

    def test_generate_returns_a_generation(self, answer: Generation) -> None:
        check_generation(answer, self.max_tokens, usage=self.reports_usage)
        assert answer.text.strip(), "an empty answer to a plain question"
        with pytest.raises(dataclasses.FrozenInstanceError):
            answer.text = "changed"  # type: ignore[misc]

    def test_greedy_generation_is_deterministic(
        self, generator: Generator, messages: MessagesLike, answer: Generation
    ) -> None:
        again = generator.generate(messages, max_tokens=self.max_tokens)
        assert again.text == answer.text
        assert again.completion_tokens == answer.completion_tokens

    def test_a_prompt_string_is_one_user_message(self, generator: Generator) -> None:
        prompt = "What is the capital of Italy?"
        as_string = generator.generate(prompt, max_tokens=self.max_tokens)
        as_message = generator.generate(
            [{"role": "user", "content": prompt}], max_tokens=self.max_tokens
        )
        assert as_string.text == as_message.text
        assert as_string.prompt_tokens == as_message.prompt_tokens

    def test_max_tokens_is_respected(
        self, generator: Generator, messages: MessagesLike, answer: Generation
    ) -> None:
        for max_tokens in (1, 3):
            short = generator.generate(messages, max_tokens=max_tokens)
            check_generation(short, max_tokens, usage=self.reports_usage)
            assert answer.text.startswith(short.text), (short.text, answer.text)
        streamed = joined(generator.stream(messages, max_tokens=3))
        assert streamed == short.text
        if self.reports_usage and answer.completion_tokens == self.max_tokens:
            assert answer.finish_reason in ("length", None), answer.finish_reason

    def test_does_not_mutate_messages(self, generator: Generator) -> None:
        messages = [
            {"role": "system", "content": "Be brief.", "name": "rules"},
            {"role": "user", "content": "Say hello."},
        ]
        snapshot = copy.deepcopy(messages)
        generator.generate(messages, max_tokens=2)
        list(generator.stream(messages, max_tokens=2))
        assert messages == snapshot

    def test_unicode_prompts(self, generator: Generator) -> None:
        for prompt in ("東京は日本の首都ですか？ 🚀", "Ünïcödé e\u0301 a\u0308 — réponds !"):
            check_generation(generator.generate(prompt, max_tokens=2), 2, usage=self.reports_usage)

    # -- stream and stop strings -------------------------------------------------------------
    def test_stream_joins_to_generate(
        self, generator: Generator, messages: MessagesLike, answer: Generation
    ) -> None:
        assert joined(generator.stream(messages, max_tokens=self.max_tokens)) == answer.text

    def test_stop_strings_cut_generate_and_stream_alike(
        self, generator: Generator, messages: MessagesLike, answer: Generation
    ) -> None:
        stop = stop_inside(answer.text)
        if stop is None:
            pytest.skip(f"the answer {answer.text!r} is too short to cut")
        expected = answer.text[: answer.text.index(stop)]
        cut = generator.generate(messages, max_tokens=self.max_tokens, stop=[stop, "\x00never"])
        assert cut.text == expected, (stop, cut.text, expected)
        assert cut.finish_reason == "stop"
        streamed = generator.stream(messages, max_tokens=self.max_tokens, stop=stop)  # a str
        assert "".join(streamed) == expected
        untouched = generator.generate(messages, max_tokens=self.max_tokens, stop=["\x00never"])
        assert untouched.text == answer.text

    def test_a_stream_can_be_left_early(self, generator: Generator, messages: MessagesLike) -> None:
        deltas = generator.stream(messages, max_tokens=self.max_tokens)
        assert isinstance(next(deltas), str)
        deltas.close()  # type: ignore[attr-defined]
        check_generation(generator.generate(messages, max_tokens=1), 1, usage=self.reports_usage)

    # -- async -------------------------------------------------------------------------------
    def test_async_equals_sync(
        self, generator: Generator, messages: MessagesLike, answer: Generation
    ) -> None:
        stop = stop_inside(answer.text)

        async def run() -> tuple[Generation, list[str], Generation | None, list[str]]:
            first = await generator.agenerate(messages, max_tokens=self.max_tokens)
            deltas = await collect(generator.astream(messages, max_tokens=self.max_tokens))
            if stop is None:
                return first, deltas, None, []
            cut = await generator.agenerate(messages, max_tokens=self.max_tokens, stop=[stop])
            cut_deltas = await collect(
                generator.astream(messages, max_tokens=self.max_tokens, stop=[stop])
            )
            return first, deltas, cut, cut_deltas

        first, deltas, cut, cut_deltas = asyncio.run(run())
        check_generation(first, self.max_tokens, usage=self.reports_usage)
        assert first.text == answer.text
        assert first.completion_tokens == answer.completion_tokens
        assert all(isinstance(d, str) and d for d in deltas), deltas
        assert "".join(deltas) == answer.text
        if cut is not None and stop is not None:
            expected = answer.text[: answer.text.index(stop)]
            assert cut.text == expected and cut.finish_reason == "stop"
            assert "".join(cut_deltas) == expected

    def test_concurrent_async_calls_keep_their_answers(
        self, generator: Generator, prompts: list[MessagesLike]
    ) -> None:
        async def run() -> list[Generation]:
            calls = (generator.agenerate(p, max_tokens=self.max_tokens) for p in prompts)
            return list(await asyncio.gather(*calls))

        concurrent = asyncio.run(run())
        sequential = [greedy(generator, p, self.max_tokens) for p in prompts]
        assert [g.text for g in concurrent] == [g.text for g in sequential]

    # -- batches -----------------------------------------------------------------------------
    def test_generate_batch_answers_in_order(
        self, generator: Generator, prompts: list[MessagesLike]
    ) -> None:
        batch = getattr(generator, "generate_batch", None)
        if batch is None:
            pytest.skip(f"{type(generator).__name__} has no generate_batch")
        results = batch(prompts, max_tokens=self.max_tokens)
        assert isinstance(results, list) and len(results) == len(prompts)
        for result in results:
            check_generation(result, self.max_tokens, usage=self.reports_usage)
        single = [greedy(generator, p, self.max_tokens) for p in prompts]
        if self.batch_matches_single:
            assert [r.text for r in results] == [s.text for s in single]
        else:
            firsts = [(r.text.split() or [""])[0] for r in results]
            assert firsts == [(s.text.split() or [""])[0] for s in single]
        assert batch([], max_tokens=self.max_tokens) == []
        (alone,) = batch(prompts[:1], max_tokens=self.max_tokens)
        assert alone.text == single[0].text

    # -- invalid input -----------------------------------------------------------------------
    @pytest.mark.parametrize(
        ("messages_arg", "options"),
        [
            ("", {}),
            ("   \n", {}),
            (None, {}),
            (b"bytes", {}),
            (42, {}),
            ([], {}),
            ({"role": "user", "content": "a single dict"}, {}),
            ([{"role": "user"}], {}),
            ([{"content": "no role"}], {}),
            ([{"role": "", "content": "empty role"}], {}),
            ([{"role": "user", "content": 5}], {}),
            (["a list of strings"], {}),
            ("ok", {"max_tokens": 0}),
            ("ok", {"max_tokens": -1}),
            ("ok", {"max_tokens": 1.5}),
            ("ok", {"max_tokens": True}),
            ("ok", {"max_tokens": "8"}),
            ("ok", {"temperature": -0.5}),
            ("ok", {"temperature": math.nan}),
            ("ok", {"temperature": math.inf}),
            ("ok", {"temperature": "hot"}),
            ("ok", {"stop": [""]}),
            ("ok", {"stop": [1]}),
            ("ok", {"stop": ""}),
        ],
    )
    def test_invalid_input_raises_before_any_work(
        self,
        generator: Generator,
        monkeypatch: pytest.MonkeyPatch,
        messages_arg: Any,
        options: dict[str, Any],
    ) -> None:
        spy = BackendSpy(monkeypatch, generator, self.work_methods)
        with pytest.raises(InvalidInputError):
            generator.generate(messages_arg, **options)
        with pytest.raises(InvalidInputError):
            generator.stream(messages_arg, **options)  # at the call, not on the first next()
        with pytest.raises(InvalidInputError):
            asyncio.run(generator.agenerate(messages_arg, **options))
        with pytest.raises(InvalidInputError):
            generator.astream(messages_arg, **options)  # at the call, not on the first item
        batch = getattr(generator, "generate_batch", None)
        if batch is not None:
            with pytest.raises(InvalidInputError):
                batch(["a valid prompt", messages_arg], **options)  # checked before any runs
        assert spy.calls == [], f"the backend ran for an invalid request: {spy.calls}"

    def test_a_batch_must_be_a_list(
        self, generator: Generator, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        batch = getattr(generator, "generate_batch", None)
        if batch is None:
            pytest.skip(f"{type(generator).__name__} has no generate_batch")
        spy = BackendSpy(monkeypatch, generator, self.work_methods)
        for bad in ("one prompt", {"role": "user", "content": "x"}, None, 3):
            with pytest.raises(InvalidInputError):
                batch(bad, max_tokens=2)
        assert spy.calls == []

    # -- lifecycle and configuration ---------------------------------------------------------
    def test_context_manager_closes_and_close_is_repeatable(
        self, generator: Generator, messages: MessagesLike, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        close = getattr(generator, "close", None)
        if close is None or not hasattr(generator, "__enter__"):
            pytest.skip(f"{type(generator).__name__} is not a context manager")
        closed: list[bool] = []

        def spying_close() -> None:
            closed.append(True)
            close()

        monkeypatch.setattr(generator, "close", spying_close)
        with generator as entered:  # type: ignore[attr-defined]
            assert entered is generator
            check_generation(entered.generate(messages, max_tokens=1), 1, usage=self.reports_usage)
        assert closed == [True], "leaving the with block did not close the generator"
        generator.close()
        generator.close()
        again = generator.generate(messages, max_tokens=1)  # a closed generator reopens
        check_generation(again, 1, usage=self.reports_usage)

    def test_to_dict_round_trips_through_the_registry(self, generator: Generator) -> None:
        to_dict = getattr(generator, "to_dict", None)
        if to_dict is None:
            pytest.skip(f"{type(generator).__name__} has no to_dict")
        spec = to_dict()
        assert set(spec) == {"type", "params"}, spec
        assert json.loads(json.dumps(spec)) == spec, "to_dict() is not plain JSON"
        assert "api_key" not in spec["params"], "to_dict() must not carry secrets"
        if spec["type"] not in generators.names():
            pytest.skip(f"{spec['type']!r} is not in the generator registry")
        if generators.get(spec["type"]) is not type(generator):
            pytest.skip(f"{spec['type']!r} is registered to another class")
        rebuilt = generators.build(spec)
        assert type(rebuilt) is type(generator)
        assert rebuilt.to_dict() == spec  # type: ignore[attr-defined]
