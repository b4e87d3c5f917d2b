"""Schemathesis: requests generated from the service's own OpenAPI schema (valid and invalid ones)
get no 5xx, and every response matches the schema. CI runs a subset (SCHEMATHESIS_EXAMPLES per
operation, 60 by default); the full run is in docs/benchmarks.md."""

from __future__ import annotations

import os
from pathlib import Path

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from qa_service.api.app import create_app
from qa_service.build.pipeline import build_index
from tests.conftest import make_settings
from tests.fakes import HashingEmbedder

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "60"))


def test_generated_requests_get_no_5xx_and_match_the_schema(tmp_path: Path, tiny_corpus: Path) -> None:
    fake = HashingEmbedder()
    app_settings = make_settings(tmp_path, rate_limit_per_minute=0, reload_poll_seconds=0)
    build_index(app_settings, fake)
    app = create_app(app_settings, embedder=fake)
    calls = 0
    with TestClient(app):  # runs the lifespan: the index is loaded for every generated request
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 5
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def check(case: schemathesis.Case) -> None:
                nonlocal calls
                calls += 1
                # The service rejects, with a documented 422, some schema-valid questions: invisible-only
                # text ("\u0001") and questions over QA_MAX_QUESTION_CHARS. Every other check applies.
                case.call_and_validate(excluded_checks=[positive_data_acceptance])

            check()
    print(f"schemathesis: {calls} generated requests over {len(operations)} operations")
    assert calls >= 5 * min(EXAMPLES, 10)
