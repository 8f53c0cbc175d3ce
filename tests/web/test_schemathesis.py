"""schemathesis fuzzes the API from its own OpenAPI document: no request may get a 500, and every answer
must match the documented status codes, content types and schemas.

Driven through hypothesis directly (one ``@given`` per operation) rather than schemathesis' pytest plugin,
whose lazy fixtures do not work with the pytest used here.
"""

from __future__ import annotations

import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from netboot import registration
from netboot.mac import MacAddress
from netboot.runtime import Runtime
from netboot.webapp.openapi import ROUTES

from .conftest import ApiClient

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_api_fuzzed_from_its_openapi_document(app: Flask, runtime: Runtime, admin_api: ApiClient) -> None:
    registration.register(runtime, "52:54:00:12:34:56", "debian12-preseed", "web1", None, None, "test")
    runtime.store.systems.seen(MacAddress.parse("52:54:00:99:88:77"), arch="bios", uuid=None, now=1.0)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    headers = {"Authorization": f"Bearer {admin_api.token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    # every operation of the route table is fuzzed (schemathesis leaves out the document's own URL)
    routes = {f"{r.method} {r.openapi_path}" for r in ROUTES if r.path != "/api/v1/openapi.json"}
    assert {operation.label for operation in operations} == routes

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=50,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        fuzz()
