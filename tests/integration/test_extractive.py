"""ExtractiveCompressor and DocumentRankCompressor on the packaged all-MiniLM-L6-v2.

The contract suite runs on both; the behaviour tests check what each option claims to do.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ragzip.compressors.document_rank import DocumentRankCompressor
from ragzip.compressors.extractive import ExtractiveCompressor
from ragzip.encoders.cross_encoder import CrossEncoderScorer
from ragzip.models import resolve_model
from ragzip.testing import DOCUMENTS, QUESTIONS, CompressorContract, FixtureQuestion, check_result
from ragzip.testing.fixtures import document
from ragzip.text import segment
from ragzip.tokens import get_counter
from ragzip.types import Budget, CompressionResult, Document

pytestmark = pytest.mark.integration

WORDS = get_counter("words")


class ModelContract(CompressorContract):
    """The contract, stricter where these compressors promise more."""

    tiny_budget_may_be_empty = False  # they cut the best sentence or document to fit


class TestExtractiveContract(ModelContract):
    @pytest.fixture
    def compressor(self) -> ExtractiveCompressor:
        return ExtractiveCompressor(tokenizer="words")


class TestDocumentRankContract(ModelContract):
    @pytest.fixture
    def compressor(self) -> DocumentRankCompressor:
        return DocumentRankCompressor()


class TestProportionalDocumentRankContract(ModelContract):
    @pytest.fixture
    def compressor(self) -> DocumentRankCompressor:
        return DocumentRankCompressor(allocation="proportional", tokenizer="words")


def tokens_of(result: CompressionResult, doc_id: str) -> int:
    return sum(WORDS.count(d.text) for d in result.documents if d.source_id == doc_id)


@pytest.mark.parametrize("question", QUESTIONS, ids=lambda q: q.document_id)
def test_answer_sentence_is_kept_at_ratio_4(question: FixtureQuestion) -> None:
    compressor = ExtractiveCompressor(tokenizer="words")
    budget = Budget(ratio=4)
    result = compressor.compress(question.question, DOCUMENTS, budget)
    check_result(compressor, result, DOCUMENTS, budget)
    holders = [d.source_id for d in result.documents if question.answer in d.text]
    assert holders == [question.document_id], result.text()
    assert result.info["augmented"] is True


def test_selective_augmentation_returns_nothing_below_min_relevance() -> None:
    compressor = ExtractiveCompressor(tokenizer="words", min_relevance=0.99)
    result = compressor.compress("Who discovered penicillin?", DOCUMENTS, Budget(ratio=2))
    assert result.is_empty and result.tokens_after == 0
    assert result.info["augmented"] is False
    assert 0.0 < result.info["relevance"] < 0.99
    assert list(result.dropped_ids) == [d.id for d in DOCUMENTS]
    # The same question is augmented with a threshold its documents pass.
    relevance = result.info["relevance"]
    passing = ExtractiveCompressor(tokenizer="words", min_relevance=relevance - 0.05)
    assert passing.compress("Who discovered penicillin?", DOCUMENTS, 2).info["augmented"] is True


CURIE = Document(
    "Marie Curie won the Nobel Prize in Physics in 1903. She was born in Warsaw in 1867. "
    "Her second Nobel Prize, in Chemistry, came in 1911. Her laboratory was in Paris, France. "
    "Curie remains the only person with Nobel Prizes in two sciences.",
    id="curie",
    metadata={"title": "Marie Curie"},
)


def test_context_window_adds_neighbouring_sentences() -> None:
    spans = segment(CURIE.text)
    texts = [CURIE.text[s.start : s.end] for s in spans]
    answer = 2
    assert "in Chemistry, came in 1911" in texts[answer]
    docs = [CURIE, *DOCUMENTS]
    # Room for the answer and its two neighbours, which say little about the question: without
    # a window the leftover goes to the more relevant first or last sentence.
    budget = Budget(tokens=sum(WORDS.count(texts[k]) for k in (1, 2, 3)))
    question = "When did Marie Curie win her Nobel Prize in Chemistry?"

    def kept(result: CompressionResult) -> set[int]:
        starts = [s.start for s in spans]
        return {
            starts.index(s.start)
            for d in result.documents
            for s in d.spans
            if d.source_id == "curie"
        }

    plain = ExtractiveCompressor(tokenizer="words")
    without = plain.compress(question, docs, budget)
    check_result(plain, without, docs, budget)
    assert answer in kept(without) and not {1, 3} <= kept(without)

    windowed = ExtractiveCompressor(tokenizer="words", context_window=1)
    with_context = windowed.compress(question, docs, budget)
    check_result(windowed, with_context, docs, budget)
    assert kept(with_context) == {1, 2, 3}
    assert with_context.text() == " ".join(texts[1:4])


def test_include_title_prefixes_each_kept_document() -> None:
    compressor = ExtractiveCompressor(tokenizer="words", include_title=True)
    budget = Budget(ratio=3)
    result = compressor.compress(QUESTIONS[1].question, DOCUMENTS, budget)
    check_result(compressor, result, DOCUMENTS, budget)
    assert result.documents
    titles = {d.id: d.title for d in DOCUMENTS}
    for kept in result.documents:
        assert kept.text.startswith(f"{titles[kept.source_id]}: ")
    untitled = ExtractiveCompressor(tokenizer="words").compress(
        QUESTIONS[1].question, DOCUMENTS, budget
    )
    assert not any(d.text.startswith(f"{titles[d.source_id]}: ") for d in untitled.documents)


def test_near_duplicates_across_documents_are_kept_once() -> None:
    docs = [
        *DOCUMENTS,
        Document(
            "Voyager 1 was launched by NASA in 1977. The Voyager 1 probe crossed the "
            "heliopause into interstellar space in August 2012. It still sends data home.",
            id="voyager-a",
            metadata={"title": "Voyager 1"},
        ),
        Document(
            "Space probes travel for decades. The Voyager 1 probe crossed the heliopause "
            "into interstellar space in August of 2012. Its power source is plutonium.",
            id="voyager-b",
            metadata={"title": "Voyager probes"},
        ),
    ]
    compressor = ExtractiveCompressor(tokenizer="words")
    budget = Budget(ratio=3)
    result = compressor.compress("When did Voyager 1 reach interstellar space?", docs, budget)
    check_result(compressor, result, docs, budget)
    assert result.text().count("heliopause") == 1, result.text()
    without_dedup = ExtractiveCompressor(tokenizer="words", dedup_threshold=1.0)
    both = without_dedup.compress("When did Voyager 1 reach interstellar space?", docs, budget)
    assert both.text().count("heliopause") == 2, "the duplicate should compete without dedup"


def test_proportional_allocation_favours_the_more_relevant_document() -> None:
    compressor = DocumentRankCompressor(allocation="proportional", tokenizer="words")
    docs = [document("printing"), document("reef"), document("jazz")]
    budget = Budget(ratio=2)
    result = compressor.compress("Where was jazz born and who played it?", docs, budget)
    check_result(compressor, result, docs, budget)
    assert tokens_of(result, "jazz") > tokens_of(result, "printing")
    assert tokens_of(result, "jazz") > tokens_of(result, "reef")
    scores = dict(zip([d.id for d in docs], result.info["document_scores"], strict=True))
    assert max(scores, key=scores.__getitem__) == "jazz"


def test_greedy_document_rank_keeps_the_most_relevant_document_whole() -> None:
    compressor = DocumentRankCompressor(tokenizer="words")
    jazz = document("jazz")
    budget = Budget(tokens=WORDS.count(jazz.text))
    result = compressor.compress("In which city was jazz born?", DOCUMENTS, budget)
    assert [(d.source_id, d.text) for d in result.documents] == [("jazz", jazz.text)]


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CrossEncoder built from the packaged MiniLM body with a fresh, untrained head."""
    from sentence_transformers import CrossEncoder

    path = tmp_path_factory.mktemp("cross-encoder") / "minilm-cross"
    CrossEncoder(resolve_model("minilm").path, num_labels=1).save(str(path))
    return path


def test_cross_encoder_rescoring_runs_end_to_end(tiny_cross_encoder: Path) -> None:
    """Plumbing only: the classification head is randomly initialised and untrained, so the
    scores carry no meaning; this checks the cross-encoder loads from a local path, re-scores
    sentences and the result still keeps the contract."""
    compressor = ExtractiveCompressor(
        tokenizer="words", cross_encoder=str(tiny_cross_encoder), rerank_top=8
    )
    compressor.warm_up()
    budget = Budget(ratio=3)
    result = compressor.compress(QUESTIONS[0].question, DOCUMENTS, budget)
    check_result(compressor, result, DOCUMENTS, budget)
    assert result.documents and result.info["augmented"] is True
    assert isinstance(compressor._cross, CrossEncoderScorer)
    scores = compressor._cross.score("Who discovered penicillin?", ["Fleming did.", "Bees."])
    assert scores.shape == (2,) and all(abs(float(s)) < 1e6 for s in scores)
    assert compressor.to_dict()["params"]["cross_encoder"] == str(tiny_cross_encoder)


def test_huge_unique_input_is_bounded_by_the_lexical_prefilter() -> None:
    """A long document of distinct sentences: only max_sentences reach the encoder."""
    sentences = [f"Record {i} notes that shipment {i * 7} left port {i % 13}." for i in range(3000)]
    sentences[2500] = "The lighthouse keeper Marta Oyelaran repaired the foghorn in 1911."
    doc = Document(" ".join(sentences), id="big")
    comp = ExtractiveCompressor(tokenizer="words", max_sentences=256)
    result = comp.compress("Who repaired the foghorn of the lighthouse?", [doc], Budget(tokens=20))
    assert "Oyelaran" in result.text()
