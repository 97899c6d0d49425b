"""vLLM's prompt_embeds wire format: base64 of a torch.save-d (positions, hidden) tensor."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ragzip.errors import InvalidInputError  # noqa: E402
from ragzip.generators.embeds import decode_prompt_embeds, encode_prompt_embeds  # noqa: E402


def test_round_trip_keeps_values_and_shape() -> None:
    array = np.random.default_rng(0).standard_normal((7, 12)).astype(np.float32)
    text = encode_prompt_embeds(array)
    loaded = torch.load(io.BytesIO(base64.b64decode(text)), weights_only=True)  # as vLLM does
    assert tuple(loaded.shape) == (7, 12) and loaded.dtype == torch.float32
    np.testing.assert_array_equal(decode_prompt_embeds(text, hidden=12), array)


def test_bfloat16_wire_dtype() -> None:
    text = encode_prompt_embeds(np.ones((2, 4), np.float32), dtype="bfloat16")
    assert torch.load(io.BytesIO(base64.b64decode(text)), weights_only=True).dtype == torch.bfloat16


@pytest.mark.parametrize("bad", [np.zeros(3), np.zeros((0, 4)), np.zeros((1, 2, 3))])
def test_encode_rejects_wrong_shapes(bad: np.ndarray) -> None:
    with pytest.raises(InvalidInputError, match="positions, hidden"):
        encode_prompt_embeds(bad)


def test_decode_rejects_garbage_and_wrong_width() -> None:
    with pytest.raises(InvalidInputError, match="base64"):
        decode_prompt_embeds("not base64 at all!")
    with pytest.raises(InvalidInputError, match="non-empty"):
        decode_prompt_embeds("")
    with pytest.raises(InvalidInputError, match="576"):
        decode_prompt_embeds(encode_prompt_embeds(np.ones((2, 4), np.float32)), hidden=576)
    buffer = io.BytesIO()
    torch.save({"a": torch.ones(2)}, buffer)
    with pytest.raises(InvalidInputError, match="one"):
        decode_prompt_embeds(base64.b64encode(buffer.getvalue()).decode())
