"""BM25Retriever: real bm25s index over a small corpus (no model needed)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from ragzip.errors import ConfigError, IndexStoreError, InvalidInputError
from ragzip.retrievers import BM25Retriever, retrievers
from ragzip.types import Document, ScoredDocument

CORPUS = [
    Document("Paris is the capital and largest city of France.", id="paris", metadata={"n": 1}),
    Document("Rome is the capital of Italy and home of the Colosseum.", id="rome"),
    Document("The Nile is the longest river in Africa.", id="nile", metadata={"tags": ["geo"]}),
    Document("Python is a programming language with readable syntax.", id="python"),
    Document("Mount Everest is the highest mountain above sea level.", id="everest"),
]


@pytest.fixture
def bm25() -> BM25Retriever:
    return BM25Retriever.from_documents(CORPUS)


def ids(results: list[ScoredDocument]) -> list[str]:
    return [r.document.id for r in results]


def test_finds_the_matching_document_first(bm25: BM25Retriever) -> None:
    results = bm25.retrieve("capital of France", k=3)
    assert results[0].document.id == "paris"
    assert [r.rank for r in results] == list(range(len(results)))
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True)
    assert all(type(s) is float and s > 0 for s in scores)


def test_returns_only_documents_sharing_a_term(bm25: BM25Retriever) -> None:
    # "capital" is in two documents; the rest score 0 and are not matches
    assert set(ids(bm25.retrieve("capital", k=10))) == {"paris", "rome"}
    assert bm25.retrieve("zebra quantum", k=10) == []
    assert bm25.retrieve("the of and", k=10) == []  # stopwords only


def test_k_bounds(bm25: BM25Retriever) -> None:
    assert len(bm25.retrieve("capital river mountain language", k=100)) == 5
    assert len(bm25.retrieve("capital river mountain language", k=2)) == 2
    assert bm25.retrieve("capital", k=0) == []


@pytest.mark.parametrize("query", ["", "   ", None, 3])
def test_bad_query_raises(bm25: BM25Retriever, query: object) -> None:
    with pytest.raises(InvalidInputError):
        bm25.retrieve(query, k=3)  # type: ignore[arg-type]


def test_negative_k_raises(bm25: BM25Retriever) -> None:
    with pytest.raises(InvalidInputError, match="k must be >= 0"):
        bm25.retrieve("capital", k=-1)


def test_empty_retriever_returns_nothing() -> None:
    empty = BM25Retriever()
    assert len(empty) == 0
    assert empty.retrieve("anything", k=5) == []
    only_stopwords = BM25Retriever.from_documents(["the and of", "!!"])
    assert only_stopwords.retrieve("the", k=5) == []


def test_add_is_incremental_and_numbers_missing_ids() -> None:
    bm25 = BM25Retriever.from_documents(["Cats purr when content.", "Dogs bark at strangers."])
    bm25.add(["Parrots can imitate human speech."])
    assert len(bm25) == 3
    assert [d.id for d in bm25.documents] == ["0", "1", "2"]
    assert ids(bm25.retrieve("parrots speech", k=1)) == ["2"]
    assert ids(bm25.retrieve("dogs", k=1)) == ["1"]


def test_duplicate_ids_raise_and_add_nothing(bm25: BM25Retriever) -> None:
    with pytest.raises(InvalidInputError, match="duplicate document id 'paris'"):
        bm25.add([Document("another Paris", id="new"), Document("Paris again", id="paris")])
    with pytest.raises(InvalidInputError, match="duplicate"):
        bm25.add([{"id": "x", "text": "a"}, {"id": "x", "text": "b"}])
    assert len(bm25) == len(CORPUS)
    assert "new" not in bm25 and "x" not in bm25


def test_single_string_is_not_a_corpus() -> None:
    with pytest.raises(InvalidInputError, match="must be a list"):
        BM25Retriever().add("just one string")


def test_returns_the_original_documents_unmutated(bm25: BM25Retriever) -> None:
    hit = bm25.retrieve("longest river", k=1)[0].document
    assert hit is CORPUS[2]
    assert hit.metadata["tags"] == ["geo"]


def test_accepts_dicts_with_metadata() -> None:
    bm25 = BM25Retriever.from_documents(
        [{"id": "a", "text": "solar panels convert light", "title": "Solar", "metadata": {"y": 1}}]
    )
    doc = bm25.retrieve("solar light", k=1)[0].document
    assert doc.id == "a"
    assert dict(doc.metadata) == {"y": 1, "title": "Solar"}


def test_stopwords_settings() -> None:
    keep_all = BM25Retriever.from_documents(["to be or not to be", "question"], stopwords=None)
    assert ids(keep_all.retrieve("to be", k=5)) == ["0"]
    custom = BM25Retriever.from_documents(["alpha beta", "beta gamma"], stopwords=["beta"])
    assert custom.retrieve("beta", k=5) == []
    with pytest.raises(ConfigError, match="stopwords"):
        BM25Retriever.from_documents(["x y"], stopwords="klingon")


@pytest.mark.parametrize("kwargs", [{"k1": -1.0}, {"b": 1.5}, {"method": "okapi-magic"}], ids=str)
def test_bad_parameters_raise(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        BM25Retriever(**kwargs)  # type: ignore[arg-type]


def test_save_and_load_give_identical_results(tmp_path: Path) -> None:
    bm25 = BM25Retriever.from_documents(CORPUS, k1=1.2, b=0.5)
    target = tmp_path / "idx"
    bm25.save(target)
    loaded = BM25Retriever.load(target)
    assert loaded.params() == bm25.params()
    assert loaded.documents == bm25.documents  # ids, text and metadata survive
    for query in ["capital of France", "river", "highest mountain", "readable language"]:
        assert loaded.retrieve(query, k=5) == bm25.retrieve(query, k=5)
    # no temporary directories are left beside the index
    assert [p.name for p in tmp_path.iterdir()] == ["idx"]


def test_save_replaces_a_previous_index(tmp_path: Path) -> None:
    BM25Retriever.from_documents(["old text"]).save(tmp_path / "idx")
    BM25Retriever.from_documents(["new text", "more"]).save(tmp_path / "idx")
    assert [d.text for d in BM25Retriever.load(tmp_path / "idx").documents] == ["new text", "more"]


def test_save_refuses_an_unrelated_directory(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(IndexStoreError, match="refusing to overwrite"):
        BM25Retriever.from_documents(["x"]).save(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_save_rejects_metadata_that_is_not_json(tmp_path: Path) -> None:
    bm25 = BM25Retriever.from_documents([Document("x", id="a", metadata={"f": object()})])
    with pytest.raises(IndexStoreError, match="document 'a'"):
        bm25.save(tmp_path / "idx")
    assert not (tmp_path / "idx").exists()
    assert list(tmp_path.iterdir()) == []


def test_load_missing_or_corrupt_raises(bm25: BM25Retriever, tmp_path: Path) -> None:
    with pytest.raises(IndexStoreError, match="does not exist"):
        BM25Retriever.load(tmp_path / "nope")
    bm25.save(tmp_path / "idx")
    manifest = tmp_path / "idx" / "manifest.json"
    manifest.write_text("{not json")
    with pytest.raises(IndexStoreError, match="not a valid manifest"):
        BM25Retriever.load(tmp_path / "idx")
    manifest.write_text(json.dumps({"format": "ragzip.bm25", "format_version": 99, "count": 5}))
    with pytest.raises(IndexStoreError, match="format version"):
        BM25Retriever.load(tmp_path / "idx")
    manifest.write_text(json.dumps({"format": "ragzip.faiss", "format_version": 1, "count": 5}))
    with pytest.raises(IndexStoreError, match=r"not 'ragzip\.bm25'"):
        BM25Retriever.load(tmp_path / "idx")


def test_load_truncated_documents_raises(bm25: BM25Retriever, tmp_path: Path) -> None:
    bm25.save(tmp_path / "idx")
    docs = tmp_path / "idx" / "documents.jsonl"
    docs.write_text("\n".join(docs.read_text().splitlines()[:2]) + "\n")
    with pytest.raises(IndexStoreError, match="holds 2 documents but the manifest says 5"):
        BM25Retriever.load(tmp_path / "idx")


async def test_aretrieve_matches_retrieve(bm25: BM25Retriever) -> None:
    assert await bm25.aretrieve("capital", k=3) == bm25.retrieve("capital", k=3)


def test_concurrent_adds_and_searches_stay_consistent() -> None:
    bm25 = BM25Retriever()
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(5):
                bm25.add([Document(f"worker {worker} item {i} apples", id=f"{worker}-{i}")])
                bm25.retrieve("apples", k=3)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(bm25) == 20
    assert len(bm25.retrieve("apples", k=50)) == 20


def test_registry_builds_bm25() -> None:
    assert {"bm25", "faiss", "hybrid"} <= set(retrievers.names())
    built = retrievers.build({"type": "bm25", "params": {"k1": 1.2, "stopwords": None}})
    assert isinstance(built, BM25Retriever)
    assert built.to_dict() == {
        "type": "bm25",
        "params": {"k1": 1.2, "b": 0.75, "method": "lucene", "stopwords": None},
    }
    assert isinstance(retrievers.build(built.to_dict()), BM25Retriever)
    with pytest.raises(ConfigError, match="k1"):
        retrievers.build({"type": "bm25", "params": {"k1": "high"}})
