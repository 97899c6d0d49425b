"""load_lm on the packaged SmolLM2-135M: a causal LM ready to run, frozen when asked."""

from __future__ import annotations

import pytest

from ragzip.lm import load_lm

pytestmark = pytest.mark.integration
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


def test_loads_the_packaged_causal_lm_on_cpu_in_eval_mode() -> None:
    model, tokenizer, device = load_lm("SmolLM2-135M", device="cpu", frozen=True)
    assert device == "cpu" and not model.training
    assert model.dtype == torch.float32  # "auto" on CPU
    assert not any(p.requires_grad for p in model.parameters())
    ids = tokenizer("The capital of France is", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        logits = model(input_ids=ids).logits
    assert logits.shape[:2] == ids.shape and logits.shape[2] >= len(tokenizer) - 64
