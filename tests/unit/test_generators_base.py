"""The generator base class: validation, stop strings, async twins (on a deterministic fake)."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterator

import pytest

from ragzip.errors import InvalidInputError
from ragzip.generators import (
    BaseGenerator,
    Generation,
    GenerationRequest,
    Generator,
    StopFilter,
    TransformersGenerator,
    generators,
    normalize_messages,
    truncate_at_stop,
)


class WordEcho(BaseGenerator):
    """Answers with the last message's words, one delta per word; records cancellation."""

    name = "word-echo"

    def __init__(self) -> None:
        self.requests: list[GenerationRequest] = []
        self.closed = threading.Event()

    def _words(self, request: GenerationRequest) -> list[str]:
        words = request.messages[-1]["content"].split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)][: request.max_tokens]

    def _generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        words = self._words(request)
        return Generation("".join(words), "echo", 1, len(words), "length", 0.0)

    def _stream(self, request: GenerationRequest) -> Iterator[str]:
        self.requests.append(request)
        try:
            yield from self._words(request)
        finally:
            self.closed.set()


def test_generate_validates_times_and_passes_a_request():
    gen = WordEcho()
    out = gen.generate("say hello world", max_tokens=2)
    assert out.text == "say hello"
    assert out.seconds >= 0
    (request,) = gen.requests
    assert request.messages == ({"role": "user", "content": "say hello world"},)
    assert (request.max_tokens, request.temperature, request.stop, request.greedy) == (
        2,
        0.0,
        (),
        True,
    )


def test_stop_strings_cut_the_text_and_set_finish_reason():
    out = WordEcho().generate("one two. three four", stop=[". ", "four"])
    assert out.text == "one two"
    assert out.finish_reason == "stop"
    assert WordEcho().generate("one two", stop="zzz").finish_reason == "length"


def test_stream_equals_generate_with_and_without_stop():
    gen = WordEcho()
    prompt = "alpha beta gamma. delta epsilon"
    for stop in (None, ["gamma."], ["a. d"], ["nothing"]):
        assert "".join(gen.stream(prompt, stop=stop)) == gen.generate(prompt, stop=stop).text


def test_stream_stops_pulling_deltas_after_a_stop_string():
    gen = WordEcho()
    assert list(gen.stream("a b c d e", stop=[" c"])) == ["a", " b"]
    assert gen.closed.is_set()


@pytest.mark.parametrize(
    "messages",
    ["", "   ", [], [{"role": "user"}], [{"content": "x"}], [{"role": "", "content": "x"}],
     [{"role": "user", "content": 3}], ["just a string"], {"role": "user", "content": "x"},
     b"bytes", 42],
)  # fmt: skip
def test_malformed_messages_raise_invalid_input(messages):
    with pytest.raises(InvalidInputError):
        WordEcho().generate(messages)


@pytest.mark.parametrize(
    "kwargs",
    [{"max_tokens": 0}, {"max_tokens": 1.5}, {"max_tokens": True}, {"temperature": -0.1},
     {"temperature": float("nan")}, {"temperature": "hot"}, {"stop": [""]}, {"stop": [None]}],
)  # fmt: skip
def test_bad_options_raise_invalid_input_at_call_time(kwargs):
    gen = WordEcho()
    with pytest.raises(InvalidInputError):
        gen.generate("q", **kwargs)
    with pytest.raises(InvalidInputError):
        gen.stream("q", **kwargs)  # no next() needed
    assert gen.requests == []


def test_normalize_messages_copies_and_never_mutates():
    original = [{"role": "system", "content": "s", "name": "x"}, {"role": "user", "content": "u"}]
    out = normalize_messages(original)
    assert out == [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    out[0]["content"] = "changed"
    assert original[0]["content"] == "s"


def test_truncate_at_stop_picks_the_earliest_occurrence():
    assert truncate_at_stop("abc\nxyz END", ["END", "\n"]) == ("abc", True)
    assert truncate_at_stop("abc", []) == ("abc", False)
    assert truncate_at_stop("STOPabc", ["STOP"]) == ("", True)


def test_stop_filter_agrees_with_truncate_on_any_split():
    rng = random.Random(0)
    alphabet = "ab \n."
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))
        stops = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 3))) for _ in range(2)]
        cuts = sorted(rng.sample(range(len(text) + 1), k=rng.randint(0, min(5, len(text) + 1))))
        pieces = [text[i:j] for i, j in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        f = StopFilter(stops)
        out = "".join(f.feed(p) for p in pieces) + f.flush()
        assert out == truncate_at_stop(text, stops)[0], (text, stops, pieces)


async def test_async_twins_match_the_sync_methods():
    gen = WordEcho()
    sync = gen.generate("x y z", stop=["z"])
    out = await gen.agenerate("x y z", stop=["z"])
    assert (out.text, out.finish_reason) == (sync.text, sync.finish_reason)
    assert [d async for d in gen.astream("x y z")] == list(gen.stream("x y z"))


async def test_astream_checks_arguments_at_call_time():
    with pytest.raises(InvalidInputError):
        WordEcho().astream("q", max_tokens=-1)


async def test_leaving_astream_early_closes_the_backend_stream():
    gen = WordEcho()
    deltas = gen.astream(" ".join(["w"] * 200), max_tokens=200)
    assert await deltas.__anext__() == "w"
    await deltas.aclose()
    assert await asyncio.to_thread(gen.closed.wait, 5)


async def test_astream_runs_concurrently_with_the_event_loop():
    gen = WordEcho()
    results = await asyncio.gather(
        *[asyncio.to_thread(lambda: "".join(gen.stream("p q r"))) for _ in range(4)],
        gen.agenerate("p q r"),
    )
    assert results[:4] == ["p q r"] * 4
    assert results[4].text == "p q r"


def test_generators_satisfy_the_protocol_and_build_from_the_registry():
    assert isinstance(WordEcho(), Generator)
    local = generators.build({"type": "transformers", "params": {"model": "smollm2-135m"}})
    assert isinstance(local, TransformersGenerator) and isinstance(local, Generator)
    assert local.to_dict() == {
        "type": "transformers",
        "params": {
            "model": "smollm2-135m",
            "device": None,
            "dtype": "auto",
            "batch_size": 1,
            "batch_wait_ms": 10.0,
        },
    }
    assert {"openai", "transformers", "transformers-seq2seq"} <= set(generators.names())


def test_generation_is_frozen_and_serializable():
    g = Generation("t", "m", 1, 2, "stop", 0.5)
    with pytest.raises(AttributeError):
        g.text = "x"  # type: ignore[misc]
    assert g.to_dict()["completion_tokens"] == 2
