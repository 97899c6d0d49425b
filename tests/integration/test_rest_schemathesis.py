"""Property-based fuzzing of the REST API's OpenAPI schema: no input makes the server fail."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from ragzip.adapters.rest import ServerSettings, create_app

pytestmark = pytest.mark.integration

app = create_app(
    ServerSettings(compressor="truncate", warm_up=False, max_body_bytes=200_000, max_documents=50)
)
schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(
    path_regex=r"^/(v1/compress|v1/compressors|healthz)$"
)


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_is_a_server_error(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=[not_a_server_error])
