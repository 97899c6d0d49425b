"""The contract every ragzip retriever keeps, as a reusable pytest suite.

Subclass :class:`RetrieverContract` in a test module and provide a ``make_retriever`` fixture
that returns a function building a new, empty retriever; pytest then runs every ``test_*``
method of the contract against it::

    import pytest
    from ragzip.testing.retriever_contracts import RetrieverContract

    class TestMyRetriever(RetrieverContract):
        @pytest.fixture
        def make_retriever(self):
            return lambda: MyRetriever(...)

What is checked: an add/retrieve round trip finds each fixture document for its question; ``k``
is respected, ranks count from 0 and scores are builtin floats, best first; an empty index and
``k=0`` give ``[]``; ids and metadata come back as added and inputs are never mutated; ids stay
unique across adds and a repeated id is refused with nothing added; async equals sync;
``to_dict()`` round-trips through the registry; ``save``/``load`` round-trip where the
retriever has them; bad input raises :class:`~ragzip.errors.InvalidInputError` (and bad
directories :class:`~ragzip.errors.IndexStoreError`).

This module imports pytest (``pip install 'ragzip[dev]'``); the invariants of one answer are
:func:`~ragzip.testing.retriever_checks.check_hits` (re-exported here).
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest

from ragzip.errors import IndexStoreError, InvalidInputError
from ragzip.retrievers.base import Retriever
from ragzip.retrievers.registry import retrievers
from ragzip.testing.fixtures import DOCUMENTS, INVALID_UTF8, QUESTIONS, UNICODE_TEXTS
from ragzip.testing.retriever_checks import assert_same_hits, check_hits, ranking
from ragzip.text import decode_text
from ragzip.types import Document, ScoredDocument

__all__ = ["MakeRetriever", "RetrieverContract", "check_hits"]

MakeRetriever = Callable[[], Retriever]


class RetrieverContract:
    """Contract tests for one retriever; subclasses provide the ``make_retriever`` fixture.

    The ``documents`` and ``questions`` fixtures default to :mod:`ragzip.testing.fixtures`;
    override them to run the contract on texts of your domain (at least four documents with
    distinct ids, and questions as ``(question, id of the document that answers it)``).

    Attributes:
        only_matches: Whether the retriever returns only documents that match the query (BM25
            drops documents sharing no term with it). Otherwise a ``k`` larger than the index
            must return every document.
        found_within: How far down the ranking the document answering a fixture question may
            be (1: first).
        registry_round_trip: Whether ``retrievers.build(r.to_dict())`` can rebuild the
            retriever (``False`` for one built on an object the registry cannot name).
    """

    only_matches: ClassVar[bool] = False
    found_within: ClassVar[int] = 1
    registry_round_trip: ClassVar[bool] = True

    @pytest.fixture
    def make_retriever(self) -> MakeRetriever:
        raise NotImplementedError(
            "subclasses of RetrieverContract provide a make_retriever fixture"
        )

    @pytest.fixture
    def documents(self) -> list[Document]:
        return list(DOCUMENTS)

    @pytest.fixture
    def questions(self) -> list[tuple[str, str]]:
        return [(q.question, q.document_id) for q in QUESTIONS]

    @pytest.fixture
    def retriever(self, make_retriever: MakeRetriever, documents: list[Document]) -> Retriever:
        built = make_retriever()
        built.add(documents)
        return built

    def load(self, retriever: Retriever, directory: Path) -> Retriever:
        """Reads what ``retriever.save(directory)`` wrote; override to pass load arguments."""
        loaded: Retriever = type(retriever).load(directory)  # type: ignore[attr-defined]
        return loaded

    # -- shape -------------------------------------------------------------------------------
    def test_is_a_retriever(self, make_retriever: MakeRetriever) -> None:
        retriever = make_retriever()
        assert isinstance(retriever, Retriever)
        spec = retriever.to_dict()  # type: ignore[attr-defined]
        assert set(spec) == {"type", "params"}, spec
        assert json.loads(json.dumps(spec)) == spec, "to_dict() is not plain JSON"

    # -- the round trip ----------------------------------------------------------------------
    def test_each_question_finds_its_document(
        self, retriever: Retriever, documents: list[Document], questions: list[tuple[str, str]]
    ) -> None:
        ids = [d.id for d in documents]
        for question, expected in questions:
            hits = retriever.retrieve(question, k=len(documents))
            check_hits(hits, len(documents), ids)
            top = [h.document.id for h in hits[: self.found_within]]
            assert expected in top, f"{question!r}: expected {expected!r} in {top}"

    def test_a_document_finds_itself(self, retriever: Retriever, documents: list[Document]) -> None:
        for doc in documents:
            hits = retriever.retrieve(doc.text, k=1)
            assert [h.document.id for h in hits] == [doc.id], (doc.id, ranking(hits))

    @pytest.mark.parametrize("k", [1, 2, 3, 1000])
    def test_k_is_respected_and_ranks_are_ordered(
        self, retriever: Retriever, documents: list[Document], k: int
    ) -> None:
        ids = [d.id for d in documents]
        for question in (QUESTIONS[0].question, "history of music and medicine"):
            hits = retriever.retrieve(question, k=k)
            check_hits(hits, k, ids)
            if not self.only_matches:
                assert len(hits) == min(k, len(documents)), (k, len(hits))
            assert hits, f"nothing found for {question!r}"

    def test_default_k(self, retriever: Retriever) -> None:
        check_hits(retriever.retrieve(QUESTIONS[0].question), 10)

    def test_empty_index_returns_nothing(self, make_retriever: MakeRetriever) -> None:
        empty = make_retriever()
        assert empty.retrieve(QUESTIONS[0].question, k=5) == []
        assert asyncio.run(empty.aretrieve(QUESTIONS[0].question, k=5)) == []
        empty.add([])
        assert empty.retrieve(QUESTIONS[0].question, k=5) == []

    def test_k_zero_returns_nothing(self, retriever: Retriever) -> None:
        assert retriever.retrieve(QUESTIONS[0].question, k=0) == []
        assert asyncio.run(retriever.aretrieve(QUESTIONS[0].question, k=0)) == []

    # -- documents ---------------------------------------------------------------------------
    def test_documents_come_back_as_added(
        self, retriever: Retriever, documents: list[Document]
    ) -> None:
        by_id = {d.id: d for d in documents}
        hits = retriever.retrieve(QUESTIONS[0].question, k=len(documents))
        assert hits
        for hit in hits:
            original = by_id[hit.document.id]
            assert hit.document.text == original.text
            assert dict(hit.document.metadata) == dict(original.metadata)

    def test_accepts_strings_dicts_and_documents(self, make_retriever: MakeRetriever) -> None:
        texts = [d.text for d in DOCUMENTS]
        retriever = make_retriever()
        retriever.add(texts[:2])  # ids are positions in the index: "0", "1"
        retriever.add([{"text": texts[2], "title": "Printing press"}])  # id "2"
        retriever.add([{"text": texts[3], "id": "kili", "metadata": {"n": [1, 2]}}])
        retriever.add([Document(texts[4], id="jazz", metadata={"title": "Jazz"})])
        retriever.add([texts[5]])  # id "5": positions continue across adds
        hits = retriever.retrieve(QUESTIONS[0].question, k=1000)
        found = {h.document.id: h.document for h in hits}
        if not self.only_matches:
            assert set(found) == {"0", "1", "2", "kili", "jazz", "5"}, sorted(found)
        for doc_id, text in (("0", texts[0]), ("kili", texts[3]), ("5", texts[5])):
            if doc_id in found:
                assert found[doc_id].text == text
        if "2" in found:
            assert found["2"].title == "Printing press"
        if "kili" in found:
            assert dict(found["kili"].metadata) == {"n": [1, 2]}
        assert retriever.retrieve(QUESTIONS[0].question, k=1)[0].document.id == "0"

    def test_added_in_batches_finds_every_batch(
        self,
        make_retriever: MakeRetriever,
        documents: list[Document],
        questions: list[tuple[str, str]],
    ) -> None:
        retriever = make_retriever()
        half = len(documents) // 2
        retriever.add(documents[:half])
        retriever.add(documents[half:])
        if hasattr(retriever, "__len__"):
            assert len(retriever) == len(documents)  # type: ignore[arg-type]
        for question, expected in questions:
            top = [h.document.id for h in retriever.retrieve(question, k=self.found_within)]
            assert expected in top, (question, top)

    def test_repeated_ids_are_refused_and_nothing_is_added(
        self, retriever: Retriever, documents: list[Document]
    ) -> None:
        before = ranking(retriever.retrieve("volcano coral honey", k=1000))
        fresh = Document("A brand new text about volcanoes.", id="fresh")
        with pytest.raises(InvalidInputError):
            retriever.add([fresh, Document("another text", id=documents[0].id)])
        with pytest.raises(InvalidInputError):
            retriever.add([fresh, Document("the same id twice", id="fresh")])
        assert ranking(retriever.retrieve("volcano coral honey", k=1000)) == before
        retriever.add([fresh])  # nothing of the refused batches stayed behind
        assert "fresh" in [h.document.id for h in retriever.retrieve("volcanoes", k=1000)]

    def test_does_not_mutate_inputs(self, make_retriever: MakeRetriever) -> None:
        as_dicts: list[dict[str, Any]] = [
            {**d.to_dict(), "metadata": {**dict(d.metadata), "nested": {"tags": ["a", "b"]}}}
            for d in DOCUMENTS[:3]
        ]
        without_ids = [{"text": d.text, "metadata": {"k": [1]}} for d in DOCUMENTS[3:]]
        documents = list(DOCUMENTS)
        snapshots = (
            copy.deepcopy(as_dicts),
            copy.deepcopy(without_ids),
            [d.to_dict() for d in documents],
        )
        retriever = make_retriever()
        retriever.add(as_dicts)
        retriever.add(without_ids)
        other = make_retriever()
        other.add(documents)
        for r in (retriever, other):
            r.retrieve(QUESTIONS[0].question, k=3)
        assert as_dicts == snapshots[0], "input dicts were modified"
        assert without_ids == snapshots[1], "input dicts without ids were modified"
        assert [d.to_dict() for d in documents] == snapshots[2], "input documents were modified"

    def test_unicode_and_invalid_utf8(self, make_retriever: MakeRetriever) -> None:
        decoded = decode_text(INVALID_UTF8)
        docs = [Document(decoded, id="bytes")] + [
            Document(t, id=f"unicode{i}") for i, t in enumerate(UNICODE_TEXTS)
        ]
        docs.append(Document("Broken \ud800 surrogate. Another \udcff sentence.", id="surrogate"))
        retriever = make_retriever()
        retriever.add(docs)
        ids = [d.id for d in docs]
        queries = ("東京は日本の首都です", "Quelle est la réponse ? 🚀", decoded, "lone \udcff?")
        for query in queries:
            check_hits(retriever.retrieve(query, k=3), 3, ids)

    # -- async and determinism ---------------------------------------------------------------
    def test_async_equals_sync(
        self, retriever: Retriever, questions: list[tuple[str, str]]
    ) -> None:
        queries = [q for q, _ in questions]

        async def run_all() -> list[list[ScoredDocument]]:
            return list(await asyncio.gather(*(retriever.aretrieve(q, k=3) for q in queries)))

        concurrent = asyncio.run(run_all())
        for query, hits in zip(queries, concurrent, strict=True):
            assert_same_hits(hits, retriever.retrieve(query, k=3))

    def test_is_deterministic(self, retriever: Retriever) -> None:
        first = retriever.retrieve(QUESTIONS[1].question, k=4)
        assert_same_hits(first, retriever.retrieve(QUESTIONS[1].question, k=4))

    def test_results_are_frozen(self, retriever: Retriever) -> None:
        hit = retriever.retrieve(QUESTIONS[0].question, k=1)[0]
        with pytest.raises(AttributeError):
            hit.score = 0.0  # type: ignore[misc]
        with pytest.raises(TypeError):
            hit.document.metadata["new"] = 1  # type: ignore[index]

    # -- errors ------------------------------------------------------------------------------
    @pytest.mark.parametrize(
        ("query", "k"),
        [("", 3), ("   \n", 3), (None, 3), (123, 3), (b"bytes", 3), ("ok", -1), ("ok", 1.5),
         ("ok", True), ("ok", "3"), ("ok", None)],
    )  # fmt: skip
    def test_bad_queries_raise_invalid_input_error(
        self, make_retriever: MakeRetriever, retriever: Retriever, query: Any, k: Any
    ) -> None:
        for r in (make_retriever(), retriever):  # an empty index checks its input too
            with pytest.raises(InvalidInputError):
                r.retrieve(query, k)
            with pytest.raises(InvalidInputError):
                asyncio.run(r.aretrieve(query, k))

    @pytest.mark.parametrize(
        "bad",
        [None, "a single string", {"text": "a single dict"}, Document("a single document"),
         [b"bytes are not text"], [{"no_text": 1}], [123], [None], 42],
        ids=["none", "str", "dict", "document", "bytes", "no-text", "int", "none-item", "int-arg"],
    )  # fmt: skip
    def test_bad_documents_raise_invalid_input_error(self, retriever: Retriever, bad: Any) -> None:
        before = ranking(retriever.retrieve(QUESTIONS[0].question, k=1000))
        with pytest.raises(InvalidInputError):
            retriever.add(bad)
        assert ranking(retriever.retrieve(QUESTIONS[0].question, k=1000)) == before

    # -- configuration and persistence -------------------------------------------------------
    def test_to_dict_round_trips_through_the_registry(self, make_retriever: MakeRetriever) -> None:
        retriever = make_retriever()
        spec = retriever.to_dict()  # type: ignore[attr-defined]
        if not self.registry_round_trip:
            pytest.skip("this retriever is built on an object the registry cannot name")
        if spec["type"] not in retrievers.names():
            pytest.skip(f"{spec['type']!r} is not in the retriever registry")
        rebuilt = retrievers.build(spec)
        assert type(rebuilt) is type(retriever)
        assert rebuilt.to_dict() == spec  # type: ignore[attr-defined]

    def test_save_and_load_round_trip(
        self, retriever: Retriever, documents: list[Document], tmp_path: Path
    ) -> None:
        if not hasattr(retriever, "save") or not hasattr(type(retriever), "load"):
            pytest.skip(f"{type(retriever).__name__} has no save/load")
        directory = tmp_path / "index"
        retriever.save(directory)
        loaded = self.load(retriever, directory)
        assert type(loaded) is type(retriever)
        for question in (q.question for q in QUESTIONS):
            assert_same_hits(loaded.retrieve(question, k=3), retriever.retrieve(question, k=3))
        retriever.save(directory)  # saving again replaces the index
        loaded.add(["A new text about volcanoes."])  # ids continue after the loaded ones
        hits = loaded.retrieve("volcanoes", k=1000)
        assert str(len(documents)) in [h.document.id for h in hits]

    def test_save_and_load_an_empty_index(
        self, make_retriever: MakeRetriever, tmp_path: Path
    ) -> None:
        empty = make_retriever()
        if not hasattr(empty, "save"):
            pytest.skip(f"{type(empty).__name__} has no save/load")
        empty.save(tmp_path / "empty")
        assert self.load(empty, tmp_path / "empty").retrieve("anything", k=3) == []

    def test_persistence_errors_are_index_store_errors(
        self, make_retriever: MakeRetriever, tmp_path: Path
    ) -> None:
        retriever = make_retriever()
        if not hasattr(retriever, "save"):
            pytest.skip(f"{type(retriever).__name__} has no save/load")
        with pytest.raises(IndexStoreError):
            self.load(retriever, tmp_path / "missing")
        (tmp_path / "a-file").write_text("not an index")
        with pytest.raises(IndexStoreError):
            retriever.save(tmp_path / "a-file")
        retriever.add([Document("text", id="odd", metadata={"obj": object()})])
        with pytest.raises(IndexStoreError):
            retriever.save(tmp_path / "unserializable")
        assert not (tmp_path / "unserializable").exists()
