"""Prometheus metrics at /metrics."""

from __future__ import annotations

from fastapi.testclient import TestClient

from qa_service.index.store import current_build_id
from qa_service.settings import Settings


def test_metrics_count_requests_decisions_and_the_index(client: TestClient, built_settings: Settings) -> None:
    client.post("/v1/ask", json={"question": "How long do back spasms last?"})
    client.post("/v1/ask", json={"question": "banana bread recipe"})
    client.post("/v1/ask", json={"question": "crushing chest pain"})
    client.get("/v1/faq/spasm-duration")
    client.get("/v1/faq/nope")
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'qa_requests_total{method="POST",route="/v1/ask",status="200"} 3.0' in text
    assert 'qa_requests_total{method="GET",route="/v1/faq/{entry_id}",status="404"} 1.0' in text  # ids stay out
    for status in ("answered", "no_answer", "urgent"):
        assert f'qa_decisions_total{{status="{status}"}} 1.0' in text
    build = current_build_id(built_settings.index_dir)
    assert f'qa_index_info{{build_id="{build}",model="{built_settings.model}"}} 1.0' in text
    assert "qa_index_entries 7.0" in text and 'qa_index_reloads_total{result="failure"} 0.0' in text
    assert 'qa_request_seconds_bucket{le="0.005",route="/v1/ask"}' in text
