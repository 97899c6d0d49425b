"""The abstractive compressor's settings: one frozen config behind the constructor keywords.

Building the compressor loads no model (the generator and encoders load on first use).
"""

from __future__ import annotations

import dataclasses
import inspect
import json

import pytest

from ragzip.compressors.abstractive import DEFAULT_PROMPT, AbstractiveCompressor
from ragzip.compressors.abstractive.config import DEFAULT_GENERATOR, AbstractiveConfig
from ragzip.compressors.registry import compressors
from ragzip.errors import ConfigError

FIELDS = [f.name for f in dataclasses.fields(AbstractiveConfig)]


def test_the_constructor_takes_every_setting_by_keyword_with_the_config_defaults() -> None:
    signature = inspect.signature(AbstractiveCompressor)
    params = list(signature.parameters)
    assert params == [*FIELDS, "tokenizer"]
    defaults = AbstractiveConfig()
    for name in FIELDS:
        assert signature.parameters[name].default == getattr(defaults, name), name
    described = compressors.describe("abstractive")["params"]
    assert described["max_summary_words"] == 64 and described["prompt"] == DEFAULT_PROMPT


def test_params_are_the_config_and_round_trip_through_the_registry() -> None:
    spec = {"type": "test-lead", "params": {}}
    comp = AbstractiveCompressor(
        spec, max_summary_words=32, guard_action="drop", fill=True, tokenizer="words"
    )
    assert comp.config == AbstractiveConfig(
        generator=spec, max_summary_words=32, guard_action="drop", fill=True
    )
    params = comp.params()
    assert list(params) == ["tokenizer", *FIELDS]
    assert params == {"tokenizer": "words", **comp.config.to_params()}
    as_dict = comp.to_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict
    rebuilt = compressors.build(as_dict)
    assert isinstance(rebuilt, AbstractiveCompressor)
    assert rebuilt.config == comp.config and rebuilt.to_dict() == as_dict


def test_from_config_and_attribute_reads() -> None:
    config = AbstractiveConfig(sentinel="NOTHING", guard_threshold=0.4, min_summary_words=4)
    comp = AbstractiveCompressor.from_config(config, tokenizer="words")
    assert comp.config == config and comp.tokenizer == "words"
    assert (comp.sentinel, comp.guard_threshold, comp.min_summary_words) == ("NOTHING", 0.4, 4)
    assert comp.generator is None and comp.generator_spec == DEFAULT_GENERATOR
    with pytest.raises(AttributeError):
        comp.no_such_setting  # noqa: B018
    with pytest.raises(dataclasses.FrozenInstanceError):
        comp.config.guard = False  # type: ignore[misc]


def test_the_callers_generator_spec_is_copied() -> None:
    spec = {"type": "openai", "params": {"base_url": "http://x/v1", "model": "m"}}
    comp = AbstractiveCompressor(spec)
    spec["type"] = "changed"
    assert comp.generator_spec["type"] == "openai"  # type: ignore[index]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"prompt": "no fields"},
        {"prompt": "{documents} only"},
        {"guard_action": "keep"},
        {"guard_threshold": 1.5},
        {"lexical_weight": -0.1},
        {"min_summary_words": 0},
        {"min_summary_words": 10, "max_summary_words": 5},
        {"prefilter_tokens": 0},
        {"tokens_per_word": 0},
    ],
)
def test_invalid_settings_raise_config_error(kwargs) -> None:
    with pytest.raises(ConfigError):
        AbstractiveConfig(**kwargs)
    with pytest.raises(ConfigError):
        AbstractiveCompressor(**kwargs)
