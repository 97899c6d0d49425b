"""Model names normalised, and the one bounded registry of shared models."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

from ragzip.encoders.bi_encoder import get_bi_encoder
from ragzip.errors import ConfigError
from ragzip.models import normalize_model_name, resolve_model
from ragzip.models_cache import (
    DEFAULT_MAX_LOADED_MODELS,
    ModelCache,
    loaded_models,
    max_loaded_models,
    set_max_loaded_models,
    shared_component,
    shared_model,
    spec_key,
)


@pytest.fixture
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelCache]:
    """A private process-wide registry for the test (the real one is left as it was)."""
    import ragzip.models_cache as models_cache

    registry = ModelCache()
    monkeypatch.setattr(models_cache, "_default", registry)
    yield registry


# -- names --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("minilm", "minilm"),
        ("MiniLM", "minilm"),
        ("MINILM", "minilm"),
        (" minilm ", "minilm"),
        ("\tMiniLM\n", "minilm"),
        ("all-MiniLM-L6-v2", "minilm"),  # an alias of the packaged model
        ("SmolLM2-135M", "smollm2-135m"),
        ("sentence-transformers/all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"),
        (" Qwen/Qwen2.5-7B-Instruct ", "Qwen/Qwen2.5-7B-Instruct"),
        ("/models/My-Encoder", "/models/My-Encoder"),
    ],
)
def test_normalize_model_name(name: str, expected: str) -> None:
    assert normalize_model_name(name) == expected


@pytest.mark.parametrize("name", ["", "   ", "\n", None, 3, b"minilm", ["minilm"]])
def test_bad_model_names_are_config_errors(name: object) -> None:
    with pytest.raises(ConfigError, match="model name"):
        normalize_model_name(name)


def test_resolve_model_accepts_any_spelling_of_a_short_name() -> None:
    assert resolve_model(" MiniLM ") == resolve_model("minilm")


# -- the LRU itself, with cheap objects ---------------------------------------------------------
def test_get_or_load_loads_once_per_key() -> None:
    cache = ModelCache(4)
    calls: list[str] = []

    def load(key: str) -> object:
        calls.append(key)
        return object()

    first = cache.get_or_load("a", lambda: load("a"))
    assert cache.get_or_load("a", lambda: load("a")) is first
    assert calls == ["a"] and len(cache) == 1 and "a" in cache


def test_never_holds_more_than_its_bound() -> None:
    cache = ModelCache(3)
    for i in range(20):
        cache.get_or_load(i, object)
        assert len(cache) <= 3
    assert cache.keys() == [17, 18, 19]


def test_least_recently_used_is_evicted_first() -> None:
    cache = ModelCache(3)
    for key in "abc":
        cache.get_or_load(key, object)
    cache.get_or_load("a", object)  # a is now the most recently used
    cache.get_or_load("d", object)  # evicts b
    assert cache.keys() == ["c", "a", "d"]
    cache.get_or_load("c", object)
    cache.get_or_load("e", object)  # evicts a
    assert cache.keys() == ["d", "c", "e"]


def test_an_evicted_entry_is_loaded_again() -> None:
    cache = ModelCache(1)
    first = cache.get_or_load("a", object)
    cache.get_or_load("b", object)
    assert "a" not in cache
    assert cache.get_or_load("a", object) is not first


def test_resize_drops_the_least_recently_used() -> None:
    cache = ModelCache(5)
    for key in "abcde":
        cache.get_or_load(key, object)
    cache.resize(2)
    assert cache.max_entries == 2 and cache.keys() == ["d", "e"]


def test_failed_load_stores_nothing_and_is_retried() -> None:
    cache = ModelCache(2)

    def fail() -> object:
        raise OSError("no such model")

    with pytest.raises(OSError, match="no such model"):
        cache.get_or_load("a", fail)
    assert len(cache) == 0
    assert cache.get_or_load("a", lambda: 7) == 7


@pytest.mark.parametrize("bound", [0, -1, 1.5, "8", True, None])
def test_bad_bounds_are_config_errors(bound: object) -> None:
    with pytest.raises(ConfigError, match="max_entries"):
        ModelCache(bound)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_entries"):
        ModelCache(2).resize(bound)  # type: ignore[arg-type]


def test_threads_share_one_load_and_stay_within_the_bound() -> None:
    cache = ModelCache(4)
    calls: list[int] = []
    calls_lock = threading.Lock()
    release = threading.Event()
    errors: list[BaseException] = []
    results: dict[int, list[object]] = {k: [] for k in range(8)}

    def load(key: int) -> object:
        with calls_lock:
            calls.append(key)
        release.wait(5)
        return object()

    def worker(seed: int) -> None:
        try:
            for step in range(40):
                key = (seed + step) % 8
                value = cache.get_or_load(key, lambda key=key: load(key))
                results[key].append(value)
                assert len(cache) <= 4
        except BaseException as exc:  # reported below, in the main thread
            errors.append(exc)

    # Many threads ask for one key while its load is blocked: it must load once.
    waiters = [
        threading.Thread(target=lambda: results[0].append(cache.get_or_load(0, lambda: load(0))))
        for _ in range(6)
    ]
    for t in waiters:
        t.start()
    while not calls:
        release.wait(0.001)
    release.set()
    for t in waiters:
        t.join(5)
    assert calls == [0]
    assert len({id(v) for v in results[0]}) == 1

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors
    assert len(cache) <= 4


# -- the process-wide registry --------------------------------------------------------------------
def test_bound_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, fresh_registry: ModelCache
) -> None:
    import ragzip.models_cache as models_cache

    monkeypatch.setattr(models_cache, "_default", None)
    monkeypatch.setenv("RAGZIP_MAX_LOADED_MODELS", "3")
    assert max_loaded_models() == 3
    monkeypatch.setattr(models_cache, "_default", None)
    monkeypatch.delenv("RAGZIP_MAX_LOADED_MODELS")
    assert max_loaded_models() == DEFAULT_MAX_LOADED_MODELS
    monkeypatch.setattr(models_cache, "_default", None)
    monkeypatch.setenv("RAGZIP_MAX_LOADED_MODELS", "many")
    with pytest.raises(ConfigError, match="RAGZIP_MAX_LOADED_MODELS"):
        loaded_models()


def test_set_max_loaded_models(fresh_registry: ModelCache) -> None:
    for i in range(6):
        shared_model("thing", f"model-{i}", lambda name: name)
    set_max_loaded_models(2)
    assert max_loaded_models() == 2 and len(loaded_models()) == 2
    with pytest.raises(ConfigError):
        set_max_loaded_models(0)


def test_shared_model_keys_on_the_normalised_name(fresh_registry: ModelCache) -> None:
    seen: list[str] = []

    def load(name: str) -> list[str]:
        seen.append(name)
        return [name]

    one = shared_model("thing", "MiniLM", load)
    assert shared_model("thing", " minilm ", load) is one
    assert shared_model("other-kind", "minilm", load) is not one
    assert shared_model("thing", "minilm", load, ("cuda",)) is not one
    assert seen == ["minilm", "minilm", "minilm"]
    with pytest.raises(ConfigError):
        shared_model("thing", "  ", load)


def test_bi_encoder_spellings_share_one_instance(fresh_registry: ModelCache) -> None:
    spellings = ["minilm", "MiniLM", "MINILM", " minilm ", "all-MiniLM-L6-v2"]
    encoders = [get_bi_encoder(s) for s in spellings]
    assert all(e is encoders[0] for e in encoders)
    assert encoders[0].model_name == "minilm"
    assert len(fresh_registry) == 1
    assert get_bi_encoder("minilm", quantize="int8") is not encoders[0]  # other settings
    vectors = encoders[0].encode(["a sentence about towers"])  # the packaged model loads
    assert vectors.shape == (1, 384)
    assert np.isclose(np.linalg.norm(vectors[0]), 1.0, atol=1e-4)


def test_bi_encoders_beyond_the_bound_are_evicted(fresh_registry: ModelCache) -> None:
    fresh_registry.resize(2)
    first = get_bi_encoder("minilm")
    get_bi_encoder("minilm", batch_size=4)
    get_bi_encoder("minilm", batch_size=8)
    assert len(fresh_registry) == 2
    assert get_bi_encoder("MiniLM") is not first  # evicted, then built again


def test_bad_bi_encoder_name_is_a_config_error(fresh_registry: ModelCache) -> None:
    with pytest.raises(ConfigError):
        get_bi_encoder("   ")
    assert len(fresh_registry) == 0


# -- components built once per spec -------------------------------------------------------------
def test_spec_key_normalises_the_model_parameter() -> None:
    assert spec_key({"type": "t", "params": {"model": " SmolLM2-135M "}}) == spec_key(
        {"params": {"model": "smollm2-135m"}, "type": "t"}
    )
    assert spec_key({"type": "t", "params": {"model": "a/B"}}) != spec_key(
        {"type": "t", "params": {"model": "a/b"}}
    )
    with pytest.raises(ConfigError, match="model name"):
        spec_key({"type": "t", "params": {"model": " "}})
    with pytest.raises(ConfigError, match="name or a dict"):
        spec_key(3)  # type: ignore[arg-type]


def test_shared_component_builds_once_per_spec(fresh_registry: ModelCache) -> None:
    built: list[str] = []

    def build(tag: str) -> list[str]:
        built.append(tag)
        return [tag]

    one = shared_component("generator", "transformers", lambda: build("a"))
    assert shared_component("generator", {"type": "transformers"}, lambda: build("b")) is one
    assert shared_component("compressor", "transformers", lambda: build("c")) is not one
    assert built == ["a", "c"] and len(fresh_registry) == 2
    own = ModelCache(1)  # an owner's own cache: apart from the process-wide one
    assert shared_component("generator", "transformers", lambda: build("d"), own) == ["d"]
    assert len(own) == 1 and len(fresh_registry) == 2
