"""RouterCompressor without models: typing documents, configuration, budget sharing."""

from __future__ import annotations

import pytest

from ragzip.compressors.registry import compressors
from ragzip.compressors.router import RouterCompressor, detect_type
from ragzip.errors import ConfigError
from ragzip.types import Budget, Document

pytest.importorskip("tree_sitter")

PY = "import os\n\n\ndef home() -> str:\n    return os.environ['HOME']\n"
PROSE = "The river floods every spring. Farmers plant rice after the water recedes."
TABLE = "name | age\nada | 36\nalan | 41\ngrace | 85\n"


@pytest.mark.parametrize(
    ("doc", "kind"),
    [
        (Document(PY, metadata={"path": "home.py"}), "code"),
        (Document(PY), "code"),  # from content alone
        (Document(PROSE), "prose"),
        (Document('{"a": 1, "b": [1, 2]}'), "structured"),
        (Document(TABLE), "structured"),
        (Document(PROSE, metadata={"type": "json"}), "structured"),  # metadata wins
        (Document(PY, metadata={"type": "markdown"}), "prose"),
    ],
)
def test_detect_type(doc: Document, kind: str) -> None:
    assert detect_type(doc) == kind


def _router() -> RouterCompressor:
    truncate = {"type": "truncate"}
    return RouterCompressor(
        {"code": truncate, "prose": truncate, "structured": truncate}, tokenizer="words"
    )


def test_routes_each_document_and_shares_one_budget() -> None:
    docs = [
        Document(PY * 4, id="code", metadata={"path": "home.py"}),
        Document(PROSE * 4, id="prose"),
        Document(TABLE * 4, id="table"),
    ]
    result = _router().compress("where is home", docs, Budget(ratio=2))
    assert result.info["routes"] == {"code": "code", "prose": "prose", "table": "structured"}
    assert result.tokens_after <= Budget(ratio=2).limit(result.tokens_before)
    routes = {d.source_id: d.metadata["route"] for d in result.documents}
    assert routes == {"code": "code", "prose": "prose", "table": "structured"}
    assert sum(result.info["allocated"].values()) <= Budget(ratio=2).limit(result.tokens_before)


def test_config_round_trips_through_the_registry() -> None:
    router = _router()
    again = compressors.build(router.to_dict())
    assert isinstance(again, RouterCompressor)
    assert again.params() == router.params()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"routes": {"video": "truncate"}}, "unknown document types"),
        ({"allocation": "random"}, "allocation"),
    ],
)
def test_bad_configuration_is_a_config_error(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        RouterCompressor(**kwargs)


def test_unknown_route_compressor_fails_with_the_registry_names() -> None:
    router = RouterCompressor({"prose": "no-such-method"}, tokenizer="words")
    with pytest.raises(ConfigError, match="no-such-method"):
        router.compress("q", [PROSE], 2)
