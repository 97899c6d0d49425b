"""FaissRetriever plumbing on a real FAISS index with a hashing encoder (no model needed).

What the retriever finds with a real embedding model is tested in
tests/integration/test_retrievers_faiss.py; here the encoder is a deterministic bag of hashed
words, enough to check ids, bounds, persistence, errors, locking and GPU placement.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ragzip.errors import ConfigError, IndexStoreError, InvalidInputError
from ragzip.retrievers import FaissRetriever, TextEncoder, retrievers
from ragzip.types import Document


class HashingEncoder:
    """Bag of hashed lowercase words; counts its calls."""

    def __init__(self, dimension: int = 32) -> None:
        self.model_name = f"hashing-{dimension}"
        self._dimension = dimension
        self.calls = 0

    @property
    def dimension(self) -> int:
        return self._dimension

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
                out[row, int.from_bytes(digest, "little") % self._dimension] += 1.0
        return out


DOCS = [
    Document("red apples and green pears", id="fruit", metadata={"kind": "food", "n": [1, 2]}),
    Document("fast cars on the motorway", id="cars"),
    Document("snow falls in the mountains", id="snow"),
]


@pytest.fixture
def encoder() -> HashingEncoder:
    return HashingEncoder()


@pytest.fixture
def faiss_r(encoder: HashingEncoder) -> FaissRetriever:
    return FaissRetriever.from_documents(DOCS, encoder=encoder, use_gpu=False)


def test_hashing_encoder_fits_the_protocol(encoder: HashingEncoder) -> None:
    assert isinstance(encoder, TextEncoder)


def test_empty_index_returns_nothing_without_encoding(encoder: HashingEncoder) -> None:
    empty = FaissRetriever(encoder)
    assert empty.retrieve("apples", k=5) == []
    assert encoder.calls == 0


def test_search_returns_original_documents(faiss_r: FaissRetriever) -> None:
    results = faiss_r.retrieve("green apples", k=10)
    assert len(results) == 3  # k beyond the size is fine
    assert results[0].document is DOCS[0]
    assert results[0].document.metadata["n"] == [1, 2]
    assert [r.rank for r in results] == [0, 1, 2]
    assert 0 < results[0].score <= 1.0 + 1e-6  # cosine of unit vectors
    assert all(type(r.score) is float for r in results)
    assert faiss_r.retrieve("green apples", k=0) == []


def test_l2_metric_scores_are_negative_distances(encoder: HashingEncoder) -> None:
    r = FaissRetriever.from_documents(DOCS, encoder=encoder, metric="l2", use_gpu=False)
    results = r.retrieve("snow falls in the mountains", k=3)
    assert results[0].document.id == "snow"
    assert results[0].score == pytest.approx(0.0)
    assert results[1].score < 0


def test_bad_queries_raise(faiss_r: FaissRetriever) -> None:
    with pytest.raises(InvalidInputError):
        faiss_r.retrieve("  ", k=3)
    with pytest.raises(InvalidInputError):
        faiss_r.retrieve("apples", k=-2)


def test_duplicate_ids_raise_and_add_nothing(faiss_r: FaissRetriever) -> None:
    with pytest.raises(InvalidInputError, match="duplicate document id 'cars'"):
        faiss_r.add([Document("bikes", id="bikes"), Document("cars again", id="cars")])
    assert len(faiss_r) == 3 and "bikes" not in faiss_r


def test_incremental_add_numbers_missing_ids(encoder: HashingEncoder) -> None:
    r = FaissRetriever(encoder, batch_size=2, use_gpu=False)
    r.add(["one apple", "two pears", "three plums"])
    assert encoder.calls == 2  # embedded in batches of two
    r.add(["four cherries"], show_progress=True)
    assert [d.id for d in r.documents] == ["0", "1", "2", "3"]
    best = r.retrieve("four cherries", k=1)[0]
    assert best.document.id == "3" and best.score == pytest.approx(1.0)


@pytest.mark.parametrize(
    "kwargs", [{"metric": "cosine"}, {"batch_size": 0}, {"encoder": 42}], ids=str
)
def test_bad_parameters_raise(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        FaissRetriever(**kwargs)


def test_save_load_round_trip(
    faiss_r: FaissRetriever, encoder: HashingEncoder, tmp_path: Path
) -> None:
    faiss_r.save(tmp_path / "idx")
    assert sorted(p.name for p in (tmp_path / "idx").iterdir()) == [
        "documents.jsonl",
        "index.faiss",
        "manifest.json",
    ]
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["encoder"] == "hashing-32"
    assert (manifest["dimension"], manifest["count"], manifest["format_version"]) == (32, 3, 1)
    loaded = FaissRetriever.load(tmp_path / "idx", encoder=encoder)
    assert loaded.documents == faiss_r.documents
    assert loaded.retrieve("cars and snow", k=3) == faiss_r.retrieve("cars and snow", k=3)
    assert [p.name for p in tmp_path.iterdir()] == ["idx"]


def test_save_of_an_empty_retriever_loads_back_empty(
    encoder: HashingEncoder, tmp_path: Path
) -> None:
    FaissRetriever(encoder).save(tmp_path / "idx")
    loaded = FaissRetriever.load(tmp_path / "idx", encoder=encoder)
    assert len(loaded) == 0 and loaded.retrieve("x", k=3) == []


def test_load_with_another_dimension_raises(faiss_r: FaissRetriever, tmp_path: Path) -> None:
    faiss_r.save(tmp_path / "idx")
    with pytest.raises(IndexStoreError, match=r"32-dim vectors.*gives 16-dim"):
        FaissRetriever.load(tmp_path / "idx", encoder=HashingEncoder(16))


def test_load_corrupt_index_file_raises(
    faiss_r: FaissRetriever, encoder: HashingEncoder, tmp_path: Path
) -> None:
    faiss_r.save(tmp_path / "idx")
    (tmp_path / "idx" / "index.faiss").write_bytes(b"garbage")
    with pytest.raises(IndexStoreError, match="missing or corrupt"):
        FaissRetriever.load(tmp_path / "idx", encoder=encoder)
    (tmp_path / "idx" / "index.faiss").unlink()
    with pytest.raises(IndexStoreError, match="missing or corrupt"):
        FaissRetriever.load(tmp_path / "idx", encoder=encoder)


def test_load_manifest_count_mismatch_raises(
    faiss_r: FaissRetriever, encoder: HashingEncoder, tmp_path: Path
) -> None:
    faiss_r.save(tmp_path / "idx")
    path = tmp_path / "idx" / "manifest.json"
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "count": 7}))
    with pytest.raises(IndexStoreError, match="manifest says 7"):
        FaissRetriever.load(tmp_path / "idx", encoder=encoder)


def test_failed_save_keeps_the_previous_index(
    faiss_r: FaissRetriever, encoder: HashingEncoder, tmp_path: Path
) -> None:
    faiss_r.save(tmp_path / "idx")
    faiss_r.add([Document("bad metadata", id="bad", metadata={"x": {1, 2}})])
    with pytest.raises(IndexStoreError, match="document 'bad'"):
        faiss_r.save(tmp_path / "idx")
    assert len(FaissRetriever.load(tmp_path / "idx", encoder=encoder)) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["idx"]


def test_concurrent_adds_and_searches(encoder: HashingEncoder) -> None:
    r = FaissRetriever(encoder, use_gpu=False)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(10):
                r.add([Document(f"worker {worker} row {i}", id=f"{worker}-{i}")])
                assert r.retrieve(f"worker {worker}", k=2)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(r) == 40 and len(r.retrieve("row", k=100)) == 40


def test_use_gpu_true_without_a_gpu_raises(encoder: HashingEncoder) -> None:
    import faiss

    if getattr(faiss, "get_num_gpus", lambda: 0)() > 0:
        pytest.skip("a GPU is available here")
    with pytest.raises(ConfigError, match="no GPU"):
        FaissRetriever.from_documents(DOCS, encoder=encoder, use_gpu=True)


def test_gpu_placement_and_cpu_save(
    encoder: HashingEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a GPU visible, the index moves to it and save() writes a CPU copy.

    faiss's GPU entry points are replaced by recorders (this faiss may be a CPU build); the
    retriever's own code runs unchanged.
    """
    import faiss

    moved: list[Any] = []

    def to_gpus(index: Any) -> Any:
        moved.append(index)
        return index

    def to_cpu(index: Any) -> Any:
        moved.append("to_cpu")
        return index

    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 1, raising=False)
    monkeypatch.setattr(faiss, "index_cpu_to_all_gpus", to_gpus, raising=False)
    monkeypatch.setattr(faiss, "index_gpu_to_cpu", to_cpu, raising=False)
    auto = FaissRetriever.from_documents(DOCS, encoder=encoder)  # use_gpu=None: auto
    assert auto.on_gpu and len(moved) == 1
    assert auto.retrieve("snow", k=1)[0].document.id == "snow"
    auto.save(tmp_path / "idx")
    assert moved[-1] == "to_cpu"
    assert FaissRetriever.load(tmp_path / "idx", encoder=encoder, use_gpu=True).on_gpu
    cpu = FaissRetriever.from_documents(DOCS, encoder=encoder, use_gpu=False)
    assert not cpu.on_gpu


def test_registry_builds_faiss_without_loading_a_model(encoder: HashingEncoder) -> None:
    built = retrievers.build({"type": "faiss", "params": {"metric": "l2", "batch_size": 8}})
    assert isinstance(built, FaissRetriever)
    assert built.to_dict() == {
        "type": "faiss",
        "params": {
            "encoder": "minilm",
            "metric": "l2",
            "use_gpu": None,
            "batch_size": 8,
            "show_progress": False,
        },
    }
    with_encoder = retrievers.build("faiss", encoder=encoder)
    assert isinstance(with_encoder, FaissRetriever) and with_encoder.encoder is encoder
    with pytest.raises(ConfigError, match="metric"):
        retrievers.build({"type": "faiss", "params": {"metric": "cosine"}})
