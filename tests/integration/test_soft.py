"""Soft compression on the real SmolLM2-135M: encoder, cache reuse, generation, vLLM wire path."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from ragzip.cache import MemoryCache, RedisCache, TieredCache  # noqa: E402
from ragzip.encoders.soft import SoftCompressor, SoftConfig  # noqa: E402
from ragzip.errors import ConfigError, InvalidInputError, ModelNotFoundError  # noqa: E402
from ragzip.generators.soft import SoftGenerator  # noqa: E402
from ragzip.training.soft import SoftTrainConfig, train_soft  # noqa: E402

DOCS = [
    {
        "id": "tower",
        "text": "The Eiffel Tower is a wrought-iron lattice tower in Paris, France. It was "
        "built from 1887 to 1889 as the entrance arch of the 1889 World's Fair. "
        "Gustave Eiffel's company designed and built the tower, which is 330 metres tall.",
        "metadata": {"title": "Eiffel Tower"},
    },
    {
        "id": "everest",
        "text": "Mount Everest is Earth's highest mountain above sea level, located in the "
        "Himalayas on the border between Nepal and China. Its elevation is 8,849 metres.",
    },
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A lora encoder trained for a few steps on the bundled demo corpus (machinery only)."""
    out = tmp_path_factory.mktemp("soft") / "enc"
    report = train_soft(
        SoftTrainConfig(
            out=str(out),
            steps=4,
            batch_size=2,
            context_tokens=32,
            target_tokens=8,
            eval_windows=4,
            checkpoint_every=2,
            progress=False,
        ),
        SoftConfig(kind="lora", layers=2, segment_tokens=16, rate=4),
    )
    return out, report


def test_training_saves_only_the_small_trained_parts(trained: tuple[Path, dict[str, Any]]) -> None:
    out, report = trained
    weights = out / "soft_encoder.safetensors"
    assert weights.is_file() and (out / "soft_config.json").is_file()
    assert weights.stat().st_size < 8 * 2**20  # projection + LoRA, not the 135M decoder
    assert report["windows"]["train"] > 0 and report["eval_after"] is not None
    for name in ("full", "soft", "none", "recovered"):
        assert name in report["eval_after"]
    saved = json.loads((out / "train_report.json").read_text())
    assert saved["train"]["steps"] == 4


def test_training_resumes_and_is_seeded(tmp_path: Path) -> None:
    def run(out: Path, steps: int) -> dict[str, Any]:
        return train_soft(
            SoftTrainConfig(
                out=str(out), steps=steps, batch_size=2, context_tokens=16, target_tokens=4,
                eval_windows=2, checkpoint_every=1, progress=False,
            ),
            SoftConfig(segment_tokens=16, rate=4, hidden=32),
        )  # fmt: skip

    from safetensors.torch import load_file

    run(tmp_path / "a", 2)
    resumed = run(tmp_path / "a", 3)  # continues from step 2
    assert torch.load(tmp_path / "a" / "train_state.pt", weights_only=False)["step"] == 3
    run(tmp_path / "b", 3)  # straight through, same seed
    a = load_file(str(tmp_path / "a" / "soft_encoder.safetensors"))
    b = load_file(str(tmp_path / "b" / "soft_encoder.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        # Adam normalizes tiny float differences of threaded reductions to ~lr-sized steps
        assert torch.allclose(a[key], b[key], atol=5e-4), key
    assert resumed["train"]["steps"] == 3
    with pytest.raises(ConfigError, match="other settings"):
        train_soft(SoftTrainConfig(out=str(tmp_path / "a"), progress=False), SoftConfig(rate=2))


def test_segments_become_ceil_n_over_rate_embeddings(trained: tuple[Path, dict[str, Any]]) -> None:
    soft = SoftCompressor(trained[0], cache=MemoryCache())
    ctx = soft.encode(DOCS)
    assert [d.source_id for d in ctx.documents] == ["tower", "everest"]
    for doc, source in zip(ctx.documents, DOCS, strict=True):
        segments = soft.segment(source["text"])
        expected = sum(-(-len(s) // 4) for s in segments)
        assert doc.positions == expected and doc.segments == len(segments)
        assert doc.embeddings.shape == (expected, 576) and doc.embeddings.dtype == np.float32
    assert ctx.documents[0].title == "Eiffel Tower"
    assert 3.0 < ctx.ratio <= 4.0
    stats = ctx.stats()
    assert json.loads(json.dumps(stats)) == stats


def test_untrained_encoder_is_mean_pooling_of_token_embeddings() -> None:
    soft = SoftCompressor("untrained", rate=4, segment_tokens=8, cache="none")
    text = "one two three four five six seven eight nine"
    ids = soft.tokenizer(text, add_special_tokens=False)["input_ids"][:8]
    got = soft.encode([text]).documents[0].embeddings[:2]
    table = soft.decoder.get_input_embeddings().weight.detach().numpy()
    want = np.stack([table[ids[:4]].mean(0), table[ids[4:8]].mean(0)])
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_a_second_query_recomputes_no_cached_segment(
    trained: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    gen = SoftGenerator(trained[0], cache=MemoryCache())
    first = gen.generate_documents("When was the Eiffel Tower built?", DOCS, max_tokens=8)
    assert first.soft["cached_segments"] == 0 and first.soft["segments"] > 0
    assert first.first_token_seconds > 0 and first.text.strip()

    def no_compute(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a cached segment was encoded again")

    monkeypatch.setattr(gen.compressor.encoder, "forward", no_compute)
    second = gen.generate_documents("How tall is Mount Everest?", DOCS, max_tokens=8)
    assert second.soft["cached_segments"] == second.soft["segments"] == first.soft["segments"]


def test_replicas_share_segments_through_redis(
    trained: tuple[Path, dict[str, Any]], redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = f"ragzip-test-{id(trained)}:"
    one = SoftCompressor(
        trained[0], cache=TieredCache(MemoryCache(), RedisCache(redis_url, prefix=prefix))
    )
    two = SoftCompressor(
        trained[0], cache=TieredCache(MemoryCache(), RedisCache(redis_url, prefix=prefix))
    )
    made = one.encode(DOCS)
    two.warm_up()
    monkeypatch.setattr(two.encoder, "forward", lambda *a, **k: pytest.fail("recomputed"))
    reused = two.encode(DOCS)
    assert reused.cached_segments == reused.segments == made.segments
    for a, b in zip(made.documents, reused.documents, strict=True):
        np.testing.assert_array_equal(a.embeddings, b.embeddings)


def test_a_lost_redis_does_not_fail_a_request(
    trained: tuple[Path, dict[str, Any]],
    redis_server_factory: Callable[[int | None], Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = redis_server_factory(None)
    redis = RedisCache(server.url, timeout_s=0.3, retry_after_s=60)
    gen = SoftGenerator(trained[0], cache=redis)
    gen.generate_documents("Where is the Eiffel Tower?", DOCS[:1], max_tokens=4)
    server.stop()  # Redis goes away between requests
    with caplog.at_level(logging.WARNING, logger="ragzip.cache"):
        answer = gen.generate_documents("How tall is it?", DOCS, max_tokens=4)
    assert answer.text.strip()
    assert answer.soft["cached_segments"] == 0  # computed locally
    assert redis.stats().errors > 0
    assert any("unreachable" in r.getMessage() for r in caplog.records)


def test_generation_matches_text_layout_and_vllm_wire_path(
    trained: tuple[Path, dict[str, Any]],
) -> None:
    from ragzip.generators.openai_compat import OpenAICompatibleGenerator
    from ragzip.generators.serve_openai import running_server

    gen = SoftGenerator(trained[0], cache=MemoryCache())
    local = gen.generate_documents("When was the Eiffel Tower built?", DOCS, max_tokens=12)
    embeds, ctx = gen.prompt_embeds("When was the Eiffel Tower built?", DOCS)
    assert embeds.shape[1] == 576 and embeds.shape[0] == local.prompt_tokens
    assert embeds.shape[0] < ctx.tokens_before + 60  # the documents shrank
    with running_server(gen) as base_url:
        remote = OpenAICompatibleGenerator(base_url=base_url, model="smollm2-135m")
        answer = remote.complete_embeds(embeds, max_tokens=12)
        with pytest.raises(Exception, match="prompt_embeds"):
            remote.complete_embeds(np.zeros((3, 7), np.float32), max_tokens=2)
    assert answer.text == local.text


def test_pipeline_hands_documents_to_the_soft_generator(
    trained: tuple[Path, dict[str, Any]],
) -> None:
    from ragzip.middleware.pipeline import Pipeline

    pipe = Pipeline("truncate", generator=SoftGenerator(trained[0], cache=MemoryCache()),
                    budget=1.0, max_tokens=8)  # fmt: skip
    out = pipe.run("When was the Eiffel Tower built?", DOCS)
    assert out.answer and out.generation.soft["documents"] == 2


def test_pipeline_streams_from_the_soft_context_with_its_own_prompt(
    trained: tuple[Path, dict[str, Any]],
) -> None:
    from ragzip.middleware.pipeline import Pipeline
    from ragzip.prompt import PromptTemplate

    gen = SoftGenerator(trained[0], cache=MemoryCache())
    prompt = PromptTemplate(system="Reply with a year only.")
    pipe = Pipeline("truncate", generator=gen, budget=1.0, max_tokens=8, prompt=prompt)
    prepared = pipe.prepare("When was the Eiffel Tower built?", DOCS)
    answered = pipe.answer(prepared)
    streamed = "".join(pipe.stream_prepared(prepared))
    assert streamed.strip() == answered.answer  # the soft path on both, the same prompt
    assert answered.generation.soft["documents"] == 2
    direct = gen.generate_documents(prepared.query, DOCS, max_tokens=8, prompt=prompt)
    assert answered.answer == direct.text.strip()  # laid out by the pipeline's template


def test_bad_settings_and_inputs_raise_typed_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="rate"):
        SoftConfig(rate=0)
    with pytest.raises(ConfigError, match="kind"):
        SoftConfig(kind="magic")
    with pytest.raises(ConfigError, match="train-soft"):
        SoftCompressor(tmp_path)
    SoftConfig().save(tmp_path)
    with pytest.raises(ConfigError, match="trained with"):
        SoftCompressor(tmp_path, rate=8)
    with pytest.raises(ModelNotFoundError, match="train-soft"):
        SoftCompressor(tmp_path, cache="none").warm_up()
    soft = SoftCompressor("untrained", cache="none")
    with pytest.raises(InvalidInputError):
        soft.encode("not a list")  # type: ignore[arg-type]
    gen = SoftGenerator(compressor=soft)
    with pytest.raises(InvalidInputError):
        gen.generate_embeds(np.zeros((2, 3), np.float32))
    with pytest.raises(InvalidInputError):
        gen.prompt_embeds("", DOCS)


def test_train_soft_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ragzip.cli.main import main

    out = tmp_path / "cli-enc"
    code = main(["train-soft", "--out", str(out), "--steps", "1", "--batch-size", "1",
                 "--context-tokens", "16", "--target-tokens", "4", "--eval-windows", "2",
                 "--segment-tokens", "16", "--quiet"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "held-out loss" in printed and str(out) in printed
    assert SoftConfig.load(out).segment_tokens == 16


def test_the_shipped_encoder_is_the_default_and_beats_untrained() -> None:
    from ragzip.encoders.soft.config import shipped_soft
    from ragzip.training.corpus import load_passages
    from ragzip.training.soft import evaluate, make_windows

    folder = shipped_soft()
    assert folder is not None, "ragzip-soft is missing from the package"
    assert (folder / "MODEL_CARD.md").is_file()
    assert all(f.stat().st_size <= 8 * 2**20 for f in folder.iterdir())
    assert not list(folder.glob("train_state*"))  # weights only, no optimizer state
    soft = SoftCompressor(cache="none")
    assert soft.encoder_path == "ragzip-soft"
    assert soft.config == SoftConfig.load(folder) and soft.config.rate == 2
    assert SoftCompressor("RAGZIP-soft", cache="none").config == soft.config
    assert SoftGenerator(cache="none").compressor.encoder_path == "ragzip-soft"
    with pytest.raises(ConfigError, match="untrained"):
        SoftCompressor(rate=4, cache="none")  # the shipped encoder is rate 2
    untrained = SoftCompressor("untrained", rate=2, cache="none")
    assert untrained.encoder_path is None
    assert SoftCompressor(" Untrained ", rate=2, cache="none").params() == untrained.params()

    # distilled on Wikipedia passages, it carries more of a held-out text than mean pooling
    texts = [p.text for p in load_passages(passage_words=10_000)]  # the bundled demo corpus
    windows = make_windows(texts, soft.tokenizer, context_tokens=64, target_tokens=16)[:16]
    assert len(windows) >= 8
    shipped = evaluate(soft.encoder, soft.decoder, windows, soft.config, 64)
    pooled = evaluate(untrained.encoder, untrained.decoder, windows, untrained.config, 64)
    assert shipped["soft"] < pooled["soft"]
