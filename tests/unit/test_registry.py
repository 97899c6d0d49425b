"""Registries: building components by name, parameter validation, describe(), spec files."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pytest

from ragzip.compressors.registry import compressors
from ragzip.compressors.truncate import TruncateCompressor
from ragzip.errors import ConfigError, UnknownComponentError
from ragzip.registry import Registry, load_spec, validate_params


class Widget:
    """A widget for tests.

    More text that describe() leaves out.
    """

    def __init__(
        self,
        size: int = 1,
        *,
        scale: float = 1.0,
        name: str | None = None,
        mode: Literal["fast", "slow"] = "fast",
        tags: Sequence[str] = (),
        options: dict[str, Any] | None = None,
        flag: bool = False,
    ) -> None:
        self.size, self.scale, self.name, self.mode = size, scale, name, mode
        self.tags, self.options, self.flag = tags, options, flag


class Anything:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


@pytest.fixture
def widgets() -> Registry[Any]:
    registry: Registry[Any] = Registry("widget", {})
    registry.register("widget")(Widget)
    registry.register("anything")(Anything)
    return registry


# -- the compressor registry ----------------------------------------------------------------
def test_builtin_compressors_are_listed() -> None:
    assert {"extractive", "document-rank", "truncate"} <= set(compressors.names())


def test_unknown_name_lists_the_available_ones() -> None:
    with pytest.raises(UnknownComponentError) as caught:
        compressors.build("no-such-method")
    message = str(caught.value)
    assert "unknown compressor 'no-such-method'" in message
    for name in ("extractive", "document-rank", "truncate"):
        assert name in message
    assert not message.startswith('"')  # KeyError would quote it
    assert isinstance(caught.value, KeyError) and isinstance(caught.value, ConfigError)


def test_build_from_a_string_and_from_a_spec() -> None:
    assert isinstance(compressors.build("truncate"), TruncateCompressor)
    built = compressors.build({"type": "truncate", "params": {"tokenizer": "words"}})
    assert built.tokenizer == "words"
    assert compressors.build({"type": "truncate", "params": None}).tokenizer == "approx"
    overridden = compressors.build({"type": "truncate"}, tokenizer="words")
    assert overridden.tokenizer == "words"


def test_build_extractive_is_cheap_and_round_trips() -> None:
    spec = {"type": "extractive", "params": {"context_window": 1, "min_relevance": 0.3}}
    comp = compressors.build(spec)
    assert comp._sentence_encoder is None  # no model loaded by the constructor
    assert comp.context_window == 1 and comp.min_relevance == 0.3
    assert compressors.build(comp.to_dict()).to_dict() == comp.to_dict()
    assert json.loads(json.dumps(comp.to_dict())) == comp.to_dict()


@pytest.mark.parametrize(
    ("params", "parameter", "expected"),
    [
        ({"context_window": "1"}, "context_window", "int"),
        ({"context_window": True}, "context_window", "int"),
        ({"context_window": 1.5}, "context_window", "int"),
        ({"doc_weight": "high"}, "doc_weight", "float"),
        ({"include_title": "yes"}, "include_title", "bool"),
        ({"min_relevance": "0.3"}, "min_relevance", "float"),
        ({"cross_encoder": 3}, "cross_encoder", "str"),
    ],
)
def test_wrong_parameter_type_names_the_parameter(
    params: dict[str, Any], parameter: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        compressors.build({"type": "extractive", "params": params})
    message = str(caught.value)
    assert f"parameter {parameter!r}" in message and expected in message
    assert "extractive" in message


def test_literal_parameters_are_checked() -> None:
    with pytest.raises(ConfigError, match="allocation"):
        compressors.build({"type": "document-rank", "params": {"allocation": "random"}})
    comp = compressors.build({"type": "document-rank", "params": {"allocation": "proportional"}})
    assert comp.allocation == "proportional"


@pytest.mark.parametrize(
    ("kind", "params", "accepted"),
    [
        ("code", {"elision": "bogus"}, ("'count'", "'short'", "'none'")),
        ("code", {"block_split": "words"}, ("'lines'", "'perplexity'")),
        ("code", {"scoring": "cross"}, ("'bi'", "'lm'", "'blend'")),
        ("code", {"fine_share": 1.5}, ("(0, 1]",)),
        ("code", {"fine_share": 0}, ("(0, 1]",)),
        ("token-prune", {"mode": "bogus"}, ("'rate'", "'threshold'", "'llmlingua'")),
        ("token-prune", {"token_to_word": "last"}, ("'mean'", "'first'")),
        ("token-prune", {"allocation": "even"}, ("'relevance'", "'dynamic'", "'global'")),
        ("router", {"allocation": "random"}, ("'size'", "'relevance'")),
        ("extractive", {"quantize": "int4"}, ("'int8'",)),
    ],
)
def test_bad_compressor_options_are_config_errors(
    kind: str, params: dict[str, Any], accepted: tuple[str, ...]
) -> None:
    """A bad option is a ConfigError (the REST sidecar answers 422, not 500) that names the
    parameter and what it accepts."""
    with pytest.raises(ConfigError) as caught:
        compressors.build({"type": kind, "params": params})
    message = str(caught.value)
    assert next(iter(params)) in message
    for value in accepted:
        assert value in message


def test_direct_construction_raises_config_errors_too() -> None:
    from ragzip.compressors.code import CodeCompressor
    from ragzip.compressors.code.scoring import ChunkScorer
    from ragzip.compressors.extractive import ExtractiveCompressor
    from ragzip.compressors.router import RouterCompressor

    for build, name in [
        (lambda: CodeCompressor(elision="bogus"), "elision"),  # type: ignore[arg-type]
        (lambda: CodeCompressor(block_split="words"), "block_split"),  # type: ignore[arg-type]
        (lambda: CodeCompressor(fine_share=2.0), "fine_share"),
        (lambda: ChunkScorer("cross"), "mode"),  # type: ignore[arg-type]
        (lambda: RouterCompressor(allocation="random"), "allocation"),  # type: ignore[arg-type]
        (lambda: ExtractiveCompressor(quantize="int4"), "quantize"),  # type: ignore[arg-type]
    ]:
        with pytest.raises(ConfigError, match=name):
            build()


def test_token_prune_word_helpers_raise_config_errors() -> None:
    import numpy as np

    from ragzip.compressors.token_prune.words import chunk_bounds, group_words

    with pytest.raises(ConfigError, match="max_len"):
        chunk_bounds(np.zeros(3, dtype=bool), 0)
    one = np.ones(1)
    with pytest.raises(ConfigError, match="token_to_word"):
        group_words(np.ones(1, dtype=bool), one, one, one, mode="last")


def test_good_literal_options_still_build() -> None:
    code = compressors.build(
        {"type": "code", "params": {"elision": "short", "block_split": "perplexity"}}
    )
    assert (code.elision, code.block_split, code.scorer.mode) == ("short", "perplexity", "bi")
    assert compressors.build({"type": "extractive", "params": {"quantize": "int8"}}).quantize
    assert compressors.build({"type": "extractive", "params": {"quantize": None}}).quantize is None
    router = compressors.build({"type": "router", "params": {"allocation": "relevance"}})
    assert router.allocation == "relevance"


def test_unknown_parameter_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"no parameter\(s\) \['window'\]") as caught:
        compressors.build({"type": "extractive", "params": {"window": 1}})
    assert "context_window" in str(caught.value)  # lists what it takes


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "truncate", "parameters": {}}, "unknown keys"),
        ({"type": "truncate", "params": {}, "name": "x"}, "unknown keys"),
        ({"params": {}}, "needs a 'type'"),
        ({"type": "truncate", "params": ["tokenizer"]}, "'params' must be a dict"),
        ({"type": 3}, "must be a string"),
        (["truncate"], "a name or a dict"),
        (None, "a name or a dict"),
    ],
)
def test_malformed_specs(spec: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        compressors.build(spec)


def test_describe() -> None:
    info = compressors.describe("extractive")
    assert info["type"] == "extractive"
    assert info["summary"].startswith("Query-aware sentence extraction")
    assert info["params"]["context_window"] == 0
    assert info["params"]["min_relevance"] is None
    assert info["params"]["tokenizer"] == "approx"
    assert json.loads(json.dumps(info)) == info
    with pytest.raises(UnknownComponentError):
        compressors.describe("nope")


# -- a registry of our own ------------------------------------------------------------------
def test_register_build_and_describe_a_custom_component(widgets: Registry[Any]) -> None:
    widget = widgets.build(
        {
            "type": "widget",
            "params": {"size": 3, "scale": 2, "name": None, "tags": ["a"], "options": {"k": 1}},
        }
    )
    assert (widget.size, widget.scale, widget.tags) == (3, 2, ["a"])
    info = widgets.describe("widget")
    assert info["summary"] == "A widget for tests."
    assert info["params"]["mode"] == "fast" and info["params"]["tags"] == ()
    assert widgets.names() == ["anything", "widget"]


def test_registering_a_name_twice(widgets: Registry[Any]) -> None:
    widgets.register("widget")(Widget)  # the same class again is fine
    with pytest.raises(ConfigError, match="already registered"):
        widgets.register("widget")(Anything)


def test_var_keyword_constructors_accept_any_parameter(widgets: Registry[Any]) -> None:
    assert widgets.build({"type": "anything", "params": {"x": 1}}).kwargs == {"x": 1}


@pytest.mark.parametrize(
    ("params", "ok"),
    [
        ({"size": 2}, True),
        ({"size": True}, False),
        ({"scale": 2}, True),  # an int is a fine float
        ({"scale": False}, False),
        ({"name": None}, True),
        ({"name": 1}, False),
        ({"mode": "slow"}, True),
        ({"mode": "medium"}, False),
        ({"tags": ("a", "b")}, True),
        ({"tags": ["a", 1]}, False),
        ({"tags": "ab"}, False),
        ({"options": {"a": 1}}, True),
        ({"options": [("a", 1)]}, False),
        ({"flag": 1}, False),
        ({"flag": True}, True),
    ],
)
def test_validate_params(params: dict[str, Any], ok: bool) -> None:
    if ok:
        validate_params(Widget, params, "widget")
    else:
        with pytest.raises(ConfigError, match=f"parameter {next(iter(params))!r}"):
            validate_params(Widget, params, "widget")


# -- spec files -----------------------------------------------------------------------------
def test_load_spec_json_and_yaml(tmp_path: Path) -> None:
    spec = {"type": "truncate", "params": {"tokenizer": "words"}}
    (tmp_path / "c.json").write_text(json.dumps(spec))
    (tmp_path / "c.yaml").write_text("type: truncate\nparams:\n  tokenizer: words\n")
    assert load_spec(tmp_path / "c.json") == spec
    assert load_spec(str(tmp_path / "c.yaml")) == spec
    assert compressors.build(load_spec(tmp_path / "c.yaml")).tokenizer == "words"


def test_load_spec_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_spec(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_spec(tmp_path / "list.json")


def test_build_compressor_works_after_a_method_module_is_imported() -> None:
    import ragzip
    import ragzip.compressors.truncate  # binds ragzip.compressors to the subpackage

    assert ragzip.build_compressor({"type": "truncate"}).name == "truncate"
    assert ragzip.build_compressor("truncate").name == "truncate"
