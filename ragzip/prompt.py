"""Prompt assembly: compressed documents and the question into chat messages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ragzip.errors import ConfigError
from ragzip.types import CompressedDocument

__all__ = ["PromptTemplate"]

DEFAULT_SYSTEM = (
    "Answer the question using only the context. If the context does not contain the answer, "
    "say you do not know. Answer briefly."
)
DEFAULT_USER = "Context:\n{context}\n\nQuestion: {question}"
NO_CONTEXT_USER = "Question: {question}"


@dataclass(frozen=True)
class PromptTemplate:
    """Renders ``[{"role": "system", ...}, {"role": "user", ...}]`` for a generator.

    Args:
        system: System message ("" for none).
        user: User message with ``{context}`` and ``{question}`` placeholders.
        document: How one document is rendered (``{index}``, ``{title}``, ``{text}``).
        no_context: User message when compression returned nothing (selective augmentation).
    """

    system: str = DEFAULT_SYSTEM
    user: str = DEFAULT_USER
    document: str = "[{index}] {text}"
    no_context: str = NO_CONTEXT_USER

    def __post_init__(self) -> None:
        for name, fields in (
            ("user", ("{context}", "{question}")),
            ("no_context", ("{question}",)),
        ):
            value = getattr(self, name)
            missing = [f for f in fields if f not in value]
            if missing:
                raise ConfigError(f"prompt template {name!r} lacks {missing}")

    def context(self, documents: Sequence[CompressedDocument]) -> str:
        return "\n".join(
            self.document.format(index=i + 1, title=d.metadata.get("title", ""), text=d.text)
            for i, d in enumerate(documents)
        )

    def render(
        self, question: str, documents: Sequence[CompressedDocument]
    ) -> list[dict[str, str]]:
        if documents:
            user = self.user.format(context=self.context(documents), question=question)
        else:
            user = self.no_context.format(question=question)
        messages = [{"role": "system", "content": self.system}] if self.system else []
        return [*messages, {"role": "user", "content": user}]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)
