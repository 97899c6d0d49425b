"""Where the context is in an OpenAI-style chat request, and how the kept context goes back.

Pure functions over the request body (no I/O): :func:`plan_request` finds the documents of
the ``ragzip`` extension field and of ``<ragzip:context>`` sections, and
:meth:`ChatPlan.apply` writes a compression result back into a new body. The proxy
(:mod:`ragzip.adapters.proxy`) compresses between the two.

Example:
    >>> plan = plan_request({"messages": [...], "ragzip": {"documents": ["..."]}}, 4.0)
    >>> forwarded = plan.apply(compressor.compress(plan.query, plan.documents, plan.budget))
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from ragzip.compressors.base import BudgetLike
from ragzip.errors import InvalidInputError
from ragzip.prompt import PromptTemplate
from ragzip.types import Budget, CompressionResult, Document
from ragzip.wire.openai import message_texts

__all__ = [
    "APPENDED_CONTEXT",
    "SYSTEM_CONTEXT",
    "USER_CONTEXT",
    "ChatPlan",
    "InvalidChatRequest",
    "RagzipOptions",
    "plan_request",
]

SYSTEM_CONTEXT = "Answer using the context below when it is relevant.\n\nContext:\n{context}"
APPENDED_CONTEXT = "\n\nContext:\n{context}"
USER_CONTEXT = "Context:\n{context}\n\n{content}"

_SECTION = re.compile(r"<ragzip:context>(.*?)</ragzip:context>", re.DOTALL)
_DOC = re.compile(r"<doc(?:\s+id=\"([^\"]*)\")?\s*>(.*?)</doc>", re.DOTALL)
_RULE = re.compile(r"^[ \t]*-{3,}[ \t]*$", re.MULTILINE)


# -- wire schema of the extension field -------------------------------------------------------
class RagzipOptions(BaseModel):
    """The ``ragzip`` field of a chat completions request (see :mod:`ragzip.adapters.proxy`)."""

    model_config = ConfigDict(extra="forbid")

    documents: list[Any] = []
    query: str | None = None
    budget: Any = None
    compressor: str | dict[str, Any] | None = None
    inject: Literal["system", "user"] = "system"


class InvalidChatRequest(InvalidInputError):
    """A chat request the proxy refuses (400); ``param`` names the offending field."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


# -- planning: what in a request is context, and how it goes back -------------------------------
@dataclass
class ChatPlan:
    """The context found in one request body, and how to write the compressed one back."""

    body: dict[str, Any]
    options: RagzipOptions | None
    query: str
    budget: Budget
    documents: list[Document] = field(default_factory=list)
    sections: list[list[str]] = field(default_factory=list)  # document ids per section

    @property
    def has_context(self) -> bool:
        return bool(self.documents)

    def apply(self, result: CompressionResult) -> dict[str, Any]:
        """The request body to forward: sections replaced, field context injected."""
        kept = result.by_source()
        body = {k: v for k, v in self.body.items() if k != "ragzip"}
        messages = [dict(m) if isinstance(m, Mapping) else m for m in body.get("messages", [])]
        replacements = iter(
            "\n\n".join(" ".join(d.text for d in kept[i]) for i in ids if i in kept)
            for ids in self.sections
        )
        for message in messages:
            if isinstance(message, dict):
                _map_text(message, lambda text: _SECTION.sub(lambda _: next(replacements), text))
        body["messages"] = messages
        field_docs = [d for d in result.documents if d.source_id.startswith("f")]
        if field_docs and self.options is not None:
            context = PromptTemplate().context(field_docs)
            _inject(messages, context, self.options.inject)
        return body


def plan_request(body: dict[str, Any], default_budget: BudgetLike) -> ChatPlan:
    """Finds the context of a request.

    Raises:
        InvalidChatRequest: malformed ``ragzip`` input or ``<ragzip:context>`` tags.
    """
    options: RagzipOptions | None = None
    if "ragzip" in body:
        raw = body["ragzip"]
        if not isinstance(raw, Mapping):
            raise InvalidChatRequest("'ragzip' must be an object", "ragzip")
        try:
            options = RagzipOptions.model_validate(raw)
        except ValidationError as exc:
            details = "; ".join(
                f"ragzip.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise InvalidChatRequest(f"invalid 'ragzip' field: {details}", "ragzip") from None
    messages = body.get("messages")
    if not isinstance(messages, list):
        if options is None:
            return ChatPlan(body, None, "", Budget.of(default_budget))
        raise InvalidChatRequest("'messages' must be a list of messages", "messages")
    try:
        budget = Budget.of(
            options.budget if options is not None and options.budget is not None
            else default_budget
        )  # fmt: skip
    except (InvalidInputError, TypeError) as exc:
        raise InvalidChatRequest(f"invalid ragzip.budget: {exc}", "ragzip.budget") from None
    documents: list[Document] = []
    if options is not None:
        for i, item in enumerate(options.documents):
            try:
                doc = Document.from_any(item, i)
            except InvalidInputError as exc:
                raise InvalidChatRequest(
                    f"invalid ragzip.documents: {exc}", "ragzip.documents"
                ) from None
            documents.append(Document(doc.text, id=f"f{i}", metadata=doc.metadata))
    sections: list[list[str]] = []
    for m, message in enumerate(messages):
        if not isinstance(message, Mapping):
            continue
        for text in message_texts(message):
            opened, closed = text.count("<ragzip:context>"), text.count("</ragzip:context>")
            found = _SECTION.findall(text)
            if not (opened == closed == len(found)):
                raise InvalidChatRequest(
                    f"message {m} has an unbalanced <ragzip:context> tag: close every "
                    "<ragzip:context> with </ragzip:context> and do not nest them",
                    f"messages.{m}.content",
                )
            for section in found:
                ids = []
                for d, (text_id, doc_text) in enumerate(_split_section(section)):
                    doc_id = f"s{len(sections)}.{d}"
                    meta = {"id": text_id} if text_id else {}
                    documents.append(Document(doc_text, id=doc_id, metadata=meta))
                    ids.append(doc_id)
                sections.append(ids)
    query = options.query if options is not None and options.query is not None else None
    if query is None:
        query = _last_user_text(messages)
    return ChatPlan(body, options, query, budget, documents, sections)


def _split_section(section: str) -> list[tuple[str, str]]:
    """(id, text) of each document of a marked section."""
    if "<doc" in section:
        pieces = [(m.group(1) or "", m.group(2)) for m in _DOC.finditer(section)]
    else:
        pieces = [("", piece) for piece in _RULE.split(section)]
    return [(i, t.strip()) for i, t in pieces if t.strip()]


def _map_text(message: dict[str, Any], fn: Any) -> None:
    """Rewrites the text of a message (string content or text parts), in order."""
    content = message.get("content")
    if isinstance(content, str):
        message["content"] = fn(content)
    elif isinstance(content, list):
        parts = []
        for p in content:
            if (
                isinstance(p, Mapping)
                and p.get("type") == "text"
                and isinstance(p.get("text"), str)
            ):
                p = {**p, "text": fn(p["text"])}
            parts.append(p)
        message["content"] = parts


def _last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            return _SECTION.sub(" ", "\n".join(message_texts(message))).strip()
    return ""


def _inject(messages: list[Any], context: str, where: str) -> None:
    if where == "user":
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, list):
                    message["content"] = [
                        {"type": "text", "text": f"Context:\n{context}"},
                        *content,
                    ]
                else:
                    message["content"] = USER_CONTEXT.format(context=context, content=content or "")
                return
        raise InvalidChatRequest(
            "ragzip.inject is 'user' but there is no user message", "ragzip.inject"
        )
    first = messages[0] if messages else None
    if (
        isinstance(first, dict)
        and first.get("role") in ("system", "developer")
        and isinstance(first.get("content"), str)
    ):
        first["content"] += APPENDED_CONTEXT.format(context=context)
    else:
        messages.insert(0, {"role": "system", "content": SYSTEM_CONTEXT.format(context=context)})
