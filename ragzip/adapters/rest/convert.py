"""Wire schemas to ragzip values and back, for the REST routes.

Text from a request passes :func:`~ragzip.text.scrub` (lone surrogates are valid JSON but not
UTF-8); budgets go through the server's policy (:meth:`Services.budget`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ragzip.adapters.rest.schemas import BudgetIn, CompressorSpec, DocumentIn
from ragzip.adapters.rest.service import Services
from ragzip.text import scrub
from ragzip.types import Budget, CompressionResult

__all__ = ["budget_of", "documents_of", "spec_of", "stats_of", "texts_of"]


def spec_of(spec: CompressorSpec | str | None) -> str | dict[str, Any] | None:
    """A request's compressor as a registry spec (``None``: the server's default)."""
    if isinstance(spec, CompressorSpec):
        return {"type": spec.type, "params": spec.params}
    return spec


def budget_of(services: Services, budget: BudgetIn | float | None) -> Budget:
    """A request's budget, checked against the server's policy (``None``: its default)."""
    if budget is None:
        return services.budget(None)
    if isinstance(budget, BudgetIn):
        asked = Budget(
            ratio=budget.ratio,
            tokens=budget.tokens,
            keep=tuple(scrub(k) for k in budget.keep),
            keep_patterns=tuple(scrub(p) for p in budget.keep_patterns),
        )
    else:
        asked = Budget.of(budget)
    return services.budget(asked)


def documents_of(items: Sequence[DocumentIn | str]) -> list[str | dict[str, Any]]:
    """Plain documents; lone surrogates (valid JSON, invalid UTF-8) become U+FFFD."""
    out: list[str | dict[str, Any]] = []
    for item in items:
        if isinstance(item, str):
            out.append(scrub(item))
        else:
            doc: dict[str, Any] = {"text": scrub(item.text), "metadata": item.metadata or {}}
            if item.id is not None:
                doc["id"] = scrub(item.id)
            out.append(doc)
    return out


def texts_of(documents: Sequence[str | Mapping[str, Any]]) -> list[str]:
    return [d if isinstance(d, str) else str(d["text"]) for d in documents]


def stats_of(
    result: CompressionResult, timings: Mapping[str, float] | None = None
) -> dict[str, Any]:
    """The ``stats`` object of an answer: token counts, ratio, timings, what was dropped."""
    data = result.to_dict()
    return {
        "tokens_before": data["tokens_before"],
        "tokens_after": data["tokens_after"],
        "ratio": data["ratio"],
        "timings": {k: round(v, 6) for k, v in (timings or result.timings).items()},
        "compressor": data["compressor"],
        "tokenizer": data["tokenizer"],
        "dropped_ids": data["dropped_ids"],
    }
