"""Property-based fuzzing of the REST API's OpenAPI schema, every check on, and its validity.

Bounded: a fixed number of examples per operation, no deadline (CI machines may be busy).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from ragzip.adapters.rest import ServerSettings, create_app

pytestmark = pytest.mark.integration

KEY = "fuzz-key"

app = create_app(
    ServerSettings(
        compressor="truncate",
        warm_up=False,
        max_body_bytes=200_000,
        max_documents=50,
        api_key=KEY,
        upstream_url="http://127.0.0.1:9/v1",  # mounts the proxy routes (nothing listens there)
    )
)
# A schema-valid request may still be refused for what the schema cannot say: a compressor
# name the server does not offer or a parameter value out of its range (422, documented), or a
# limit (413, documented). Every other check runs as shipped.
config = SchemathesisConfig.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "401", "404", "413", "422", "429", "5xx"]
            }
        }
    }
)
schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config).include(
    path_regex=r"^/(v1/compress|v1/compressors|v1/query|v1/retrieve|healthz|metrics)$"
)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_check_passes(case: schemathesis.Case) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"})


def test_openapi_document_is_valid() -> None:
    from fastapi.testclient import TestClient
    from openapi_spec_validator import validate

    document = TestClient(app).get("/openapi.json").json()
    validate(document)
    schemes = document["components"]["securitySchemes"]
    assert any(s.get("scheme") == "bearer" for s in schemes.values())
    chat = document["paths"]["/v1/chat/completions"]["post"]
    assert "messages" in chat["requestBody"]["content"]["application/json"]["schema"]["required"]
    metrics = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]
