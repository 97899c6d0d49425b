"""Wire schemas of the REST API (pydantic lives here and in the settings, nowhere else)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

__all__ = [
    "MAX_COMPRESSORS",
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
    "InspectRequest",
    "QueryRequest",
    "QueryResponse",
    "RetrieveRequest",
    "RetrieveResponse",
    "RetrievedDocument",
    "Stats",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# A budget given as a bare number is a ratio (original / compressed), at least 1.
Ratio = Annotated[float, Field(ge=1.0, allow_inf_nan=False, strict=True)]


class DocumentIn(_Strict):
    """A document to compress; a plain string is accepted too."""

    text: StrictStr
    id: StrictStr | None = None
    metadata: dict[str, Any] | None = None


class BudgetIn(_Strict):
    """How much context may remain: a ratio (original/compressed), a token ceiling, or both."""

    ratio: float | None = Field(None, ge=1.0, allow_inf_nan=False, strict=True, examples=[4.0])
    tokens: StrictInt | None = Field(None, ge=0)
    keep: list[StrictStr] = Field(default_factory=list, description="strings that must survive")
    keep_patterns: list[StrictStr] = Field(
        default_factory=list,
        description="must survive too: literal strings, or regular expressions when the server "
        "enables them (allow_regex)",
    )


class CompressorSpec(_Strict):
    """A registered compressor and its constructor parameters."""

    type: StrictStr = Field(examples=["extractive"])
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="only the parameters the compressor lets requests set (GET /v1/compressors)",
    )


class CompressRequest(_Strict):
    query: StrictStr = Field("", description="the question the context must serve (may be empty)")
    documents: list[DocumentIn | StrictStr]
    budget: BudgetIn | Ratio | None = Field(
        None, description="defaults to the server's budget; a number is a ratio"
    )
    compressor: CompressorSpec | StrictStr | None = Field(
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
    query: StrictStr = Field(min_length=1)
    top_k: StrictInt | None = Field(None, ge=1, le=1000)


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
    query: StrictStr = Field(min_length=1)
    documents: list[DocumentIn | StrictStr] | None = Field(
        None, description="use these instead of retrieving from the server's index"
    )
    top_k: StrictInt | None = Field(None, ge=1, le=1000)
    budget: BudgetIn | Ratio | None = None
    compressor: CompressorSpec | StrictStr | None = None
    max_tokens: StrictInt | None = Field(
        None, ge=1, description="answer length, capped by the server"
    )
    stream: StrictBool = Field(
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
    params: dict[str, Any] = Field(description="defaults of the parameters a request may set")
    request_params: list[str] = Field(description="parameters a request may set")


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


MAX_COMPRESSORS = 4  # compressors one inspect request may compare


class InspectRequest(_Strict):
    """Compressors to compare on one question (``POST /v1/inspect``, the inspector page)."""

    query: StrictStr = Field(min_length=1, description="the question the context must serve")
    documents: list[DocumentIn | StrictStr] | None = Field(
        None, description="the documents; null: retrieve them from the server's index"
    )
    compressors: list[CompressorSpec | StrictStr] = Field(
        min_length=1,
        max_length=MAX_COMPRESSORS,
        description="compressors to compare (names or {type, params}, as in /v1/compress)",
    )
    budget: BudgetIn | Ratio | None = None
    top_k: StrictInt | None = Field(None, ge=1, le=1000)
    answer: StrictBool = Field(
        False, description="also answer with full and with each compressed context"
    )
