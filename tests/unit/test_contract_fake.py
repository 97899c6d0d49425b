"""The compressor contract on the model-free KeywordCompressor fake, and the shipped fixtures."""

from __future__ import annotations

import sys

import pytest

from ragzip.compressors.registry import compressors
from ragzip.testing import (
    DOCUMENTS,
    QUESTIONS,
    CompressorContract,
    KeywordCompressor,
    large_document,
    unique_text,
)
from ragzip.text import segment
from ragzip.types import Budget


class TestKeywordCompressorContract(CompressorContract):
    @pytest.fixture
    def compressor(self) -> KeywordCompressor:
        return KeywordCompressor(tokenizer="words")


class TestKeywordCompressorApproxTokensContract(CompressorContract):
    @pytest.fixture
    def compressor(self) -> KeywordCompressor:
        return KeywordCompressor()


def test_fakes_are_not_registered() -> None:
    assert "keyword-fake" not in compressors.names()


def test_fake_keeps_the_sentences_sharing_query_words() -> None:
    result = KeywordCompressor(tokenizer="words").compress(
        "Who discovered penicillin?", DOCUMENTS, Budget(ratio=4)
    )
    assert [d.source_id for d in result.documents] == ["penicillin"]
    assert "Alexander Fleming discovered penicillin in 1928" in result.text()


def test_importing_the_fakes_does_not_need_pytest() -> None:
    code = (
        "import sys; sys.modules['pytest'] = None\n"
        "from ragzip.testing import KeywordCompressor, DOCUMENTS\n"
        "print(KeywordCompressor(tokenizer='words').compress('bees', DOCUMENTS, 4).tokens_after)"
    )
    import subprocess

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 0


@pytest.mark.parametrize("question", QUESTIONS, ids=lambda q: q.document_id)
def test_each_fixture_answer_is_in_exactly_one_sentence_of_one_document(question) -> None:
    holders = [d.id for d in DOCUMENTS if question.answer in d.text]
    assert holders == [question.document_id]
    doc = next(d for d in DOCUMENTS if d.id == question.document_id)
    sentences = [doc.text[s.start : s.end] for s in segment(doc.text)]
    assert sum(question.answer in s for s in sentences) == 1


def test_fixture_documents_have_titles_and_distinct_ids() -> None:
    assert len({d.id for d in DOCUMENTS}) == len(DOCUMENTS) >= 5
    assert all(d.title for d in DOCUMENTS)
    assert {q.document_id for q in QUESTIONS} == {d.id for d in DOCUMENTS}


def test_large_and_unique_texts() -> None:
    large = large_document(200_000)
    assert 200_000 <= len(large.text) < 201_000
    text = unique_text(50_000, seed=1)
    assert len(text) >= 50_000 and text == unique_text(50_000, seed=1)
    spans = segment(text)
    sentences = [text[s.start : s.end] for s in spans]
    assert len(set(sentences)) > 0.99 * len(sentences)
