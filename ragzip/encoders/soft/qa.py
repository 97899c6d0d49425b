"""Question-answer distillation for soft encoders: answers read from soft passages.

A corpus record with a question, and an answer found in its passage, becomes an example laid
out exactly as :class:`~ragzip.generators.soft.SoftGenerator` lays out a prompt: the chat
prompt up to the passage, the passage, the rest of the prompt with the question, then the
answer. The teacher reads the passage as tokens, the student as soft segments; the loss is the
KL divergence of their distributions over the answer tokens. This is the objective that
matters for RAG: continuation distillation alone teaches the encoder the passage's style more
than its facts (see the README figures).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ragzip._optional import require
from ragzip.encoders.soft.config import SoftConfig
from ragzip.prompt import PromptTemplate
from ragzip.types import CompressedDocument

__all__ = ["QAExample", "qa_examples", "qa_logits", "render_chat"]

_MARK = "\x00passage\x00"


def render_chat(tokenizer: Any, messages: Sequence[Mapping[str, Any]]) -> str:
    """Messages through the tokenizer's chat template (or a plain transcript without one)."""
    chat = [dict(m) for m in messages]
    if getattr(tokenizer, "chat_template", None):
        text: str = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        return text
    return "".join(f"{m['role']}: {m['content']}\n" for m in chat) + "assistant:"


@dataclass(frozen=True)
class QAExample:
    """Token ids of one question-answer example around one passage."""

    prefix: tuple[int, ...]
    passage: tuple[int, ...]
    suffix: tuple[int, ...]
    answer: tuple[int, ...]


def qa_examples(
    passages: Sequence[Any], tokenizer: Any, max_passage_tokens: int = 256
) -> list[QAExample]:
    """Examples from passages that carry a question and an answer found in their text."""
    prompt = PromptTemplate()
    encode = tokenizer
    eos = tokenizer.eos_token or ""
    out = []
    for p in passages:
        if not p.question or not p.answers:
            continue
        doc = CompressedDocument(_MARK, "passage", metadata={"title": p.title})
        before, _, after = render_chat(tokenizer, prompt.render(p.question, [doc])).partition(_MARK)
        ids = encode(p.text, add_special_tokens=False)["input_ids"][:max_passage_tokens]
        out.append(
            QAExample(
                prefix=tuple(encode(before, add_special_tokens=False)["input_ids"]),
                passage=tuple(ids),
                suffix=tuple(encode(after, add_special_tokens=False)["input_ids"]),
                answer=tuple(encode(p.answers[0] + eos, add_special_tokens=False)["input_ids"]),
            )
        )
    return out


def qa_logits(
    encoder: Any, decoder: Any, example: QAExample, config: SoftConfig
) -> tuple[Any, Any, Any]:
    """Teacher, student and no-context logits over the answer tokens, and the answer ids.

    Returns ``(teacher, student, answer)``; the teacher and answer carry no gradient.
    """
    torch = require("torch", "soft training")
    device = next(decoder.parameters()).device
    embed = decoder.get_input_embeddings()

    def ids(values: Sequence[int]) -> Any:
        return torch.tensor(list(values), dtype=torch.long, device=device)

    prefix, passage, suffix, answer = (
        ids(example.prefix),
        ids(example.passage),
        ids(example.suffix),
        ids(example.answer),
    )
    n = len(example.answer)
    with torch.no_grad():
        full = torch.cat([prefix, passage, suffix, answer])[None]
        teacher = decoder(input_ids=full).logits[0, -n - 1 : -1].float()
    size = config.segment_tokens
    segments = [passage[i : i + size] for i in range(0, len(passage), size)]
    batch = torch.nn.utils.rnn.pad_sequence(segments, batch_first=True)
    mask = torch.nn.utils.rnn.pad_sequence([torch.ones_like(s) for s in segments], batch_first=True)
    soft = encoder(batch, mask)
    parts = [soft[i, : config.positions(len(s))] for i, s in enumerate(segments)]
    student_in = torch.cat(
        [embed(prefix), *[p.to(embed.weight.dtype) for p in parts], embed(suffix), embed(answer)]
    )[None]
    student = decoder(inputs_embeds=student_in).logits[0, -n - 1 : -1].float()
    return teacher, student, answer
