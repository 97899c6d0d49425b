"""FaissRetriever on the packaged all-MiniLM-L6-v2 and a real FAISS index."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from ragzip.encoders import BiEncoder, get_bi_encoder
from ragzip.errors import IndexStoreError
from ragzip.retrievers import BM25Retriever, FaissRetriever, HybridRetriever
from ragzip.types import Document

pytestmark = pytest.mark.integration

CORPUS = [
    Document(
        "Plants turn sunlight, water and carbon dioxide into glucose and oxygen in their leaves.",
        id="photosynthesis",
        metadata={"title": "Photosynthesis", "source": "biology.txt", "page": 3},
    ),
    Document(
        "The Eiffel Tower was completed in 1889 for the World's Fair in Paris.",
        id="eiffel",
        metadata={"title": "Eiffel Tower", "tags": ["landmark", "france"]},
    ),
    Document(
        "Python is a programming language known for its readable syntax.",
        id="python",
        metadata={"title": "Python"},
    ),
    Document("The heart pumps blood through arteries and veins around the body.", id="heart"),
    Document("Volcanoes erupt when molten rock called magma rises to the surface.", id="volcano"),
    Document("Bitcoin is a decentralized digital currency recorded on a blockchain.", id="bitcoin"),
    Document(
        "The World Cup is an international soccer tournament held every four years.", id="cup"
    ),
    Document("Neil Armstrong was the first person to walk on the Moon in 1969.", id="moon"),
    Document("A piano makes sound when felt hammers strike tightened steel strings.", id="piano"),
    Document("Coffee beans are the roasted seeds of a plant and contain caffeine.", id="coffee"),
]

# Paraphrases that share few or no content words with their target.
PARAPHRASES = {
    "How do green plants make food from light?": "photosynthesis",
    "When was the famous iron landmark in the French capital finished?": "eiffel",
    "Which coding language is praised for being easy to read?": "python",
    "What organ circulates blood?": "heart",
    "Why does lava come out of mountains?": "volcano",
    "money on the internet without a central bank": "bitcoin",
    "global football championship": "cup",
    "Who first set foot on the lunar surface?": "moon",
}


@pytest.fixture(scope="module")
def encoder() -> BiEncoder:
    # the shared instance, so load(encoder=None) below reuses the loaded model
    enc = get_bi_encoder("minilm")
    enc.warm_up()
    return enc


@pytest.fixture(scope="module")
def built(encoder: BiEncoder) -> FaissRetriever:
    return FaissRetriever.from_documents(CORPUS, encoder=encoder, use_gpu=False)


@pytest.fixture(scope="module")
def saved(built: FaissRetriever, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("faiss") / "index"
    built.save(directory)
    return directory


@pytest.mark.parametrize("query,expected", PARAPHRASES.items(), ids=list(PARAPHRASES.values()))
def test_paraphrased_query_finds_the_document(
    built: FaissRetriever, query: str, expected: str
) -> None:
    results = built.retrieve(query, k=3)
    assert results[0].document.id == expected
    assert results[0].score > results[1].score


def test_results_are_ranked_cosine_scores(built: FaissRetriever, encoder: BiEncoder) -> None:
    query = "Who first set foot on the lunar surface?"
    results = built.retrieve(query, k=len(CORPUS) + 5)
    assert len(results) == len(CORPUS)
    assert [r.rank for r in results] == list(range(len(CORPUS)))
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    q, d = encoder.encode([query, results[0].document.text])
    assert results[0].score == pytest.approx(float(np.dot(q, d)), abs=1e-5)


def test_metadata_is_preserved(built: FaissRetriever) -> None:
    hit = built.retrieve("How do green plants make food from light?", k=1)[0].document
    assert hit is CORPUS[0]
    assert dict(hit.metadata) == {"title": "Photosynthesis", "source": "biology.txt", "page": 3}


def test_add_incrementally(encoder: BiEncoder) -> None:
    r = FaissRetriever(encoder, use_gpu=False, batch_size=4)
    r.add(CORPUS[:6])
    before = r.retrieve("global football championship", k=3)
    r.add(CORPUS[6:])
    r.add([{"id": "ice", "text": "Antarctica is covered almost entirely by a thick ice sheet."}])
    assert len(r) == len(CORPUS) + 1
    assert r.retrieve("global football championship", k=1)[0].document.id == "cup"
    assert "cup" not in {r.document.id for r in before}  # not indexed yet
    assert r.retrieve("the frozen continent at the South Pole", k=1)[0].document.id == "ice"


def test_save_and_reload_give_identical_results(
    built: FaissRetriever, saved: Path, encoder: BiEncoder
) -> None:
    manifest = json.loads((saved / "manifest.json").read_text())
    assert manifest["encoder"] == "minilm"
    assert manifest["dimension"] == 384
    assert manifest["count"] == len(CORPUS)
    assert manifest["format_version"] == 1
    assert manifest["index_type"] == "IndexFlatIP"
    assert not [p for p in saved.parent.iterdir() if p.name.startswith(".")]  # no temp dirs

    reloaded = FaissRetriever.load(saved)  # encoder from the manifest
    assert reloaded.encoder is encoder
    assert reloaded.documents == built.documents
    for query in PARAPHRASES:
        original = built.retrieve(query, k=5)
        again = reloaded.retrieve(query, k=5)
        assert [r.document for r in again] == [r.document for r in original]
        assert [r.score for r in again] == pytest.approx([r.score for r in original], abs=1e-6)
    meta = reloaded.retrieve("Eiffel Tower", k=1)[0].document.metadata
    assert dict(meta) == {"title": "Eiffel Tower", "tags": ["landmark", "france"]}


def test_corrupt_manifest_raises(saved: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("index.faiss", "documents.jsonl"):
        (broken / name).write_bytes((saved / name).read_bytes())
    (broken / "manifest.json").write_text('{"format": "ragzip.faiss", "format_ver')
    with pytest.raises(IndexStoreError, match="not a valid manifest"):
        FaissRetriever.load(broken)
    (broken / "manifest.json").unlink()
    with pytest.raises(IndexStoreError, match=r"manifest\.json is missing"):
        FaissRetriever.load(broken)
    with pytest.raises(IndexStoreError, match="does not exist"):
        FaissRetriever.load(tmp_path / "never-saved")


def test_loading_with_another_dimension_raises(saved: Path) -> None:
    class Tiny:
        model_name = "tiny-8"
        dimension = 8

        def encode(self, texts: Sequence[str]) -> np.ndarray:
            return np.ones((len(texts), 8), dtype=np.float32)

    with pytest.raises(IndexStoreError, match=r"384-dim vectors.*gives 8-dim"):
        FaissRetriever.load(saved, encoder=Tiny())


def test_concurrent_and_async_searches_agree(built: FaissRetriever) -> None:
    queries = list(PARAPHRASES)
    serial = [built.retrieve(q, k=3) for q in queries]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(lambda q: built.retrieve(q, k=3), queries))
    assert [[r.document.id for r in x] for x in threaded] == [
        [r.document.id for r in x] for x in serial
    ]

    async def gather() -> list:
        return await asyncio.gather(*(built.aretrieve(q, k=3) for q in queries))

    assert [[r.document.id for r in x] for x in asyncio.run(gather())] == [
        [r.document.id for r in x] for x in serial
    ]


def test_hybrid_of_dense_and_lexical(encoder: BiEncoder) -> None:
    hybrid = HybridRetriever.from_documents(
        CORPUS,
        retrievers=[FaissRetriever(encoder, use_gpu=False), BM25Retriever()],
    )
    # dense wins for a paraphrase, lexical agrees for an exact term
    assert hybrid.retrieve("Who first set foot on the lunar surface?", k=1)[0].document.id == "moon"
    top = hybrid.retrieve("magma", k=3)
    assert top[0].document.id == "volcano"
    assert len({r.document.id for r in top}) == 3
