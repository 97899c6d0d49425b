"""Wire schemas of the REST API (pydantic lives here and in the settings, nowhere else)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "BudgetIn",
    "CompressRequest",
    "CompressResponse",
    "CompressedDocumentOut",
    "CompressorSpec",
    "CompressorsResponse",
    "DocumentIn",
    "ErrorBody",
    "ErrorDetail",
    "HealthResponse",
    "QueryRequest",
    "QueryResponse",
    "RetrieveRequest",
    "RetrieveResponse",
    "RetrievedDocument",
    "Stats",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DocumentIn(_Strict):
    """A document to compress; a plain string is accepted too."""

    text: str
    id: str | None = None
    metadata: dict[str, Any] | None = None


class BudgetIn(_Strict):
    """How much context may remain: a ratio (original/compressed), a token ceiling, or both."""

    ratio: float | None = Field(None, ge=1.0, allow_inf_nan=False, examples=[4.0])
    tokens: int | None = Field(None, ge=0)
    keep: list[str] = Field(default_factory=list, description="strings that must survive")
    keep_patterns: list[str] = Field(default_factory=list, description="regexes that must survive")


class CompressorSpec(_Strict):
    """A registered compressor and its constructor parameters."""

    type: str = Field(examples=["extractive"])
    params: dict[str, Any] = Field(default_factory=dict)


class CompressRequest(_Strict):
    query: str = Field("", description="the question the context must serve (may be empty)")
    documents: list[DocumentIn | str]
    budget: BudgetIn | float | None = Field(
        None, description="defaults to the server's budget; a number is a ratio"
    )
    compressor: CompressorSpec | str | None = Field(
        None, description="defaults to the server's compressor"
    )


class CompressedDocumentOut(BaseModel):
    source_id: str
    text: str
    spans: list[tuple[int, int]]
    score: float | None
    metadata: dict[str, Any] = Field(default_factory=dict)


class Stats(BaseModel):
    tokens_before: int
    tokens_after: int
    ratio: float | None = Field(description="tokens_before / tokens_after; null when infinite")
    timings: dict[str, float]
    compressor: str
    tokenizer: str
    dropped_ids: list[str]


class CompressResponse(BaseModel):
    documents: list[CompressedDocumentOut]
    stats: Stats


class RetrieveRequest(_Strict):
    query: str = Field(min_length=1)
    top_k: int | None = Field(None, ge=1, le=1000)


class RetrievedDocument(BaseModel):
    id: str
    text: str
    score: float
    rank: int
    metadata: dict[str, Any] = Field(default_factory=dict)


class RetrieveResponse(BaseModel):
    documents: list[RetrievedDocument]
    timings: dict[str, float]


class QueryRequest(_Strict):
    query: str = Field(min_length=1)
    documents: list[DocumentIn | str] | None = Field(
        None, description="use these instead of retrieving from the server's index"
    )
    top_k: int | None = Field(None, ge=1, le=1000)
    budget: BudgetIn | float | None = None
    compressor: CompressorSpec | str | None = None
    max_tokens: int | None = Field(None, ge=1, description="answer length, capped by the server")
    stream: bool = Field(
        False,
        description="server-sent events: `delta` events ({text}), then one `stats` event",
    )


class QueryResponse(BaseModel):
    query: str
    answer: str | None = Field(description="null when the server has no generator")
    context: str
    documents: list[CompressedDocumentOut]
    retrieved_ids: list[str]
    stats: Stats


class CompressorInfo(BaseModel):
    type: str
    summary: str
    params: dict[str, Any]


class CompressorsResponse(BaseModel):
    default: dict[str, Any]
    compressors: list[CompressorInfo]


class HealthResponse(BaseModel):
    status: str
    components: dict[str, Any] = Field(default_factory=dict)


class ErrorDetail(BaseModel):
    type: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail
