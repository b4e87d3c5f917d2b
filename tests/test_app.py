from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from qa_service.build.pipeline import build_index
from qa_service.settings import Settings
from tests.conftest import make_settings
from tests.fakes import HashingEmbedder


def assert_error(response: Any, status: int, code: str, message_part: str = "") -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert message_part in body["error"]["message"]
    assert "Traceback" not in response.text and "/site-packages/" not in response.text
    return body["error"]  # type: ignore[no-any-return]


def test_ask_answers_with_the_curated_text_and_its_source(client: TestClient) -> None:
    response = client.post("/v1/ask", json={"question": "How long do back spasms last?"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"status", "answer", "alternatives", "message", "red_flag", "note", "disclaimer", "context"}
    assert body["context"] is None  # asked on its own
    assert body["status"] == "answered"
    answer = body["answer"]
    assert set(answer) == {"id", "question", "answer", "score", "source", "flags"}
    assert answer["id"] == "spasm-duration"
    assert answer["answer"] == "Most episodes of back spasms last for only a few days."
    assert answer["source"]["publisher"] == "example.org"
    assert answer["source"]["url"] == "https://example.org/faq#duration"
    assert answer["source"]["quotes"] == ["Mayo Clinic"]
    assert "file" not in answer["source"]  # internal provenance is not sent to patients
    assert 0.99 < answer["score"] <= 1.0001
    assert body["message"] == "Here is the answer from our clinic's FAQ."
    for alternative in body["alternatives"]:
        assert set(alternative) == {"id", "question", "score"}


def test_ask_declines_out_of_scope_questions(client: TestClient) -> None:
    body = client.post("/v1/ask", json={"question": "recipe for banana bread"}).json()
    assert body["status"] == "no_answer"
    assert body["answer"] is None and body["alternatives"] == []
    assert body["message"].startswith("Our FAQ does not cover that topic")  # words no entry uses


def test_fallback_message_is_configurable(
    tmp_path: Path,
    tiny_corpus: Path,
    fake_embedder: HashingEmbedder,
    client_for: Callable[[Settings], TestClient],
) -> None:
    settings = make_settings(tmp_path, fallback_message="Call us on 555-0100.", uncovered_message="Not in our FAQ.")
    build_index(settings, fake_embedder)
    body = client_for(settings).post("/v1/ask", json={"question": "banana bread"}).json()
    assert body["message"] == "Not in our FAQ."  # a topic the FAQ does not cover
    unchecked = make_settings(tmp_path, fallback_message="Call us on 555-0100.", coverage_check=False)
    body = client_for(unchecked).post("/v1/ask", json={"question": "banana bread"}).json()
    assert body["message"] == "Call us on 555-0100."  # nothing close enough


def test_ask_offers_alternatives_when_two_answers_are_close(client: TestClient) -> None:
    body = client.post("/v1/ask", json={"question": "is it good for back spasms?"}).json()
    assert body["status"] == "clarify"
    assert body["answer"] is None
    assert {a["id"] for a in body["alternatives"][:2]} == {"walking", "massage"}
    assert body["message"] == "I found more than one possible answer. Did you mean one of these?"


def test_top_k_bounds_alternatives(client: TestClient) -> None:
    body = client.post("/v1/ask", json={"question": "back spasms", "top_k": 1}).json()
    assert len(body["alternatives"]) <= 2


@pytest.mark.parametrize(
    ("payload", "location", "message"),
    [
        ({"question": ""}, "question", "at least 1 character"),
        ({"question": "   \n\t "}, "question", "question is empty or only whitespace"),
        ({}, "question", "Field required"),
        ({"question": 42}, "question", "valid string"),
        ({"question": ["a"]}, "question", "valid string"),
        ({"question": None}, "question", "valid string"),
        ({"question": "ok", "top_k": 0}, "top_k", "greater than or equal to 1"),
        ({"question": "ok", "top_k": 21}, "top_k", "less than or equal to 20"),
        ({"question": "ok", "top_k": "3"}, "top_k", "valid integer"),
        ({"question": "ok", "questoin": "typo"}, "questoin", "unknown field"),
    ],
)
def test_bad_ask_bodies_get_422_with_a_message(client: TestClient, payload: Any, location: str, message: str) -> None:
    error = assert_error(client.post("/v1/ask", json=payload), 422, "invalid_request", message)
    assert error["details"][0]["location"] == location


def test_overlong_question_is_refused(client: TestClient) -> None:
    assert_error(client.post("/v1/ask", json={"question": "why " * 300}), 422, "invalid_request", "the limit is 1000")
    # as sent, as the OpenAPI schema states it: invisible characters count there
    padded = "\u200b" + "x" * 1000
    assert_error(client.post("/v1/ask", json={"question": padded}), 422, "invalid_request", "1001 characters")
    schema = client.get("/openapi.json").json()["components"]["schemas"]["AskRequest"]
    assert schema["properties"]["question"]["maxLength"] == 1000  # QA_MAX_QUESTION_CHARS, not the hard cap
    assert_error(client.post("/v1/ask", json={"question": "x" * 20001}), 422, "invalid_request", "at most 20000")


def test_invisible_only_question_is_refused(client: TestClient) -> None:
    assert_error(client.post("/v1/ask", json={"question": "\u200b\u200f"}), 422, "invalid_request", "empty")


def test_malformed_json_and_wrong_shapes(client: TestClient) -> None:
    headers = {"content-type": "application/json"}
    assert_error(
        client.post("/v1/ask", content=b'{"question": ', headers=headers),
        422,
        "invalid_request",
        "not valid JSON",
    )
    assert_error(client.post("/v1/ask", content=b'["question"]', headers=headers), 422, "invalid_request")
    assert_error(client.post("/v1/ask", content=b"", headers=headers), 422, "invalid_request")
    for body in (b'{"question": "back \xff\xfe spasm"}', b'{"question": "x"} trailing', b"[" * 30_000):
        response = client.post("/v1/ask", content=body, headers=headers)
        assert_error(response, 422, "invalid_request", "not valid JSON")
        assert response.json()["error"]["details"] == [
            {"location": "body", "message": response.json()["error"]["details"][0]["message"]}
        ]
    assert_error(
        client.post("/v1/ask", content=b"question=hi", headers={"content-type": "text/plain"}),
        415,
        "unsupported_media_type",
        "application/json",
    )


def test_faq_listing_and_detail(client: TestClient) -> None:
    page = client.get("/v1/faq").json()
    assert page["total"] == 7 and page["offset"] == 0 and page["limit"] == 100
    assert [item["id"] for item in page["items"]][:2] == ["spasm-duration", "heat-or-ice"]
    assert "gadget" not in {item["id"] for item in page["items"]}
    assert set(page["items"][0]) == {"id", "question", "alternates", "flags"}
    second = client.get("/v1/faq", params={"offset": 1, "limit": 2}).json()
    assert [item["id"] for item in second["items"]] == ["heat-or-ice", "walking"]
    detail = client.get("/v1/faq/prevent").json()
    assert detail["duplicates"] == ["prevent-2"] and detail["flags"] == ["duplicate_question"]
    assert detail["answer"] == "Stay hydrated and stretch before and after workouts."
    assert "notes" not in detail
    assert_error(client.get("/v1/faq", params={"limit": 0}), 422, "invalid_request", "limit")


def test_unknown_id_is_404(client: TestClient) -> None:
    assert_error(client.get("/v1/faq/no-such-entry"), 404, "not_found", "no FAQ entry with id 'no-such-entry'")
    assert_error(client.get("/v1/faq/gadget"), 404, "not_found")  # excluded from the index


def test_unknown_route_and_method_use_the_error_shape(client: TestClient) -> None:
    assert_error(client.get("/v2/nothing"), 404, "not_found", "no such endpoint: GET /v2/nothing")
    assert_error(client.get("/v1/ask"), 405, "method_not_allowed")


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready"
    assert ready["index"]["entry_count"] == 7
    assert ready["index"]["model"] == "test/hashing-embedder"
    assert set(ready["index"]) == {"build_id", "model", "dimension", "entry_count", "corpus_hash", "built_at"}


def test_without_an_index_the_service_is_live_but_not_ready(
    tiny_settings: Settings, client_for: Callable[[Settings], TestClient]
) -> None:
    client = client_for(tiny_settings)  # nothing built
    assert client.get("/healthz").status_code == 200
    assert_error(client.get("/readyz"), 503, "not_ready", "no index has been built yet")
    assert_error(client.post("/v1/ask", json={"question": "hi"}), 503, "not_ready", "run `qa-service build`")
    assert_error(client.get("/v1/faq"), 503, "not_ready")


def test_an_index_for_another_model_is_refused_at_start(
    built_settings: Settings, client_for: Callable[[Settings], TestClient]
) -> None:
    other = built_settings.model_copy(update={"model": "some/other-model"})
    from qa_service.api.app import create_app

    with TestClient(create_app(other, embedder=HashingEmbedder(name="some/other-model"))) as client:
        error = assert_error(client.get("/readyz"), 503, "not_ready")
        assert "built with model 'test/hashing-embedder'" in error["message"]


def test_openapi_docs_describe_the_api(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/v1/ask", "/v1/faq", "/v1/faq/{entry_id}", "/healthz", "/readyz"} <= set(schema["paths"])
    ask = schema["paths"]["/v1/ask"]["post"]
    assert {"200", "422", "503"} <= set(ask["responses"])
    statuses = schema["components"]["schemas"]["AskResponse"]["properties"]["status"]
    assert set(statuses["enum"]) == {"answered", "clarify", "no_answer", "urgent"}


def test_unexpected_errors_do_not_leak_internals(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from qa_service.answering.answerer import Answerer

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret /srv/internal/path")

    monkeypatch.setattr(Answerer, "answer_cleaned", explode)  # what the service calls for a batch
    with TestClient(client.app, raise_server_exceptions=False) as raw:
        error = assert_error(raw.post("/v1/ask", json={"question": "hi"}), 500, "internal_error")
    assert "secret" not in error["message"]
