"""Limits in front of the routes: body size, content type, rate limits, security headers, request ids."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from qa_service.api.app import create_app
from qa_service.api.guards import RequestIds, TokenBuckets
from qa_service.cli import uvicorn_options
from qa_service.ops.logs import configure_logging
from qa_service.settings import Settings
from qa_service.tooling.bench import free_port
from tests.fakes import HashingEmbedder


def test_oversized_bodies_get_413(built_settings: Settings, client_for: Callable[[Settings], TestClient]) -> None:
    client = client_for(built_settings.model_copy(update={"max_body_bytes": 2048}))
    big = {"question": "x" * 5000}
    response = client.post("/v1/ask", json=big)
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:  # no content-length: counted while read
        yield b'{"question": "'
        for _ in range(10):
            yield b"y" * 500
        yield b'"}'

    chunked = client.post("/v1/ask", content=chunks(), headers={"content-type": "application/json"})
    assert chunked.status_code == 413
    assert client.post("/v1/ask", json={"question": "How long do back spasms last?"}).status_code == 200


def test_rate_limit_answers_429_with_retry_after(
    built_settings: Settings, client_for: Callable[[Settings], TestClient]
) -> None:
    client = client_for(built_settings.model_copy(update={"rate_limit_per_minute": 6, "rate_limit_burst": 3}))
    codes = [client.post("/v1/ask", json={"question": "hi there"}).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = client.post("/v1/ask", json={"question": "hi there"})
    assert limited.json()["error"]["code"] == "rate_limited" and int(limited.headers["retry-after"]) >= 1
    assert client.get("/v1/faq").status_code == 200  # reading the FAQ is not limited


def test_token_buckets_refill_and_forget_old_clients() -> None:
    now = [0.0]
    buckets = TokenBuckets(60, 2, max_clients=2, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 1.0]
    now[0] += 1.0
    assert buckets.take("a") == 0.0
    buckets.take("b")
    buckets.take("c")  # "a" is forgotten: a fresh burst
    assert [buckets.take("a") for _ in range(2)] == [0.0, 0.0]


def test_security_headers_and_request_ids(client: TestClient) -> None:
    response = client.get("/healthz", headers={"x-request-id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    generated = client.post("/v1/ask", json={"question": "nope"}).headers["x-request-id"]
    assert len(generated) == 32
    # an id that is not plain text is not echoed into headers and logs: a new one is made
    for odd in ("caf\u00e9-1", "a b", "x\ty"):
        echoed = client.get("/healthz", headers={"x-request-id": odd.encode("latin-1")}).headers["x-request-id"]
        assert echoed != odd and len(echoed) == 32
    error = client.get("/nope")
    assert error.status_code == 404 and error.headers["referrer-policy"] == "no-referrer"


def test_generated_request_ids_are_random_hex_and_never_repeat_across_blocks() -> None:
    ids = RequestIds(block=4)
    drawn = [ids() for _ in range(1000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", found) for found in drawn)
    assert len(set(drawn)) == len(drawn)


def test_a_forked_worker_does_not_reuse_the_parents_request_ids() -> None:
    ids = RequestIds(block=64)
    ids()  # the parent holds a block of ids it has not handed out yet
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the worker: hand out one id, report it, leave at once
        os.write(write_end, ids().encode())
        os._exit(0)
    os.close(write_end)
    os.waitpid(child, 0)
    child_id = os.read(read_end, 64).decode()
    os.close(read_end)
    assert len(child_id) == 32
    assert child_id not in {ids() for _ in range(63)}  # the rest of the parent's block


def test_cors_allows_only_the_configured_origins(
    built_settings: Settings, client_for: Callable[[Settings], TestClient]
) -> None:
    client = client_for(built_settings.model_copy(update={"cors_origins": ["https://clinic.example"]}))
    preflight = {"access-control-request-method": "POST", "access-control-request-headers": "content-type"}
    allowed = client.options("/v1/ask", headers={"origin": "https://clinic.example", **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://clinic.example"
    other = client.options("/v1/ask", headers={"origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in other.headers
    simple = client.post("/v1/ask", json={"question": "hi"}, headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


def test_json_logs_carry_the_request_id_and_question_text_only_when_asked(
    built_settings: Settings, client_for: Callable[[Settings], TestClient], capsys: pytest.CaptureFixture[str]
) -> None:
    quiet = client_for(built_settings)
    verbose = client_for(built_settings.model_copy(update={"log_questions": True}))
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        configure_logging("INFO", "json")
        quiet.post("/v1/ask", json={"question": "secret banana question"}, headers={"x-request-id": "r-1"})
        verbose.post("/v1/ask", json={"question": "open banana question"}, headers={"x-request-id": "r-2"})
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert "secret banana" not in json.dumps(lines)
    [asked] = [line for line in lines if "open banana" in line["message"]]
    assert asked["request_id"] == "r-2" and asked["logger"] == "qa_service.api.routes.questions"


@contextlib.contextmanager
def served(settings: Settings, embedder: HashingEmbedder) -> Iterator[str]:
    """The app served by uvicorn with ``qa-service serve``'s options, on a free loopback port."""
    settings = settings.model_copy(update={"port": free_port()})
    server = uvicorn.Server(uvicorn.Config(create_app(settings, embedder=embedder), **uvicorn_options(settings)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    try:
        yield f"http://127.0.0.1:{settings.port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.mark.parametrize("trusted", [True, False])
def test_x_forwarded_for_counts_only_from_trusted_proxies(
    built_settings: Settings, fake_embedder: HashingEmbedder, trusted: bool
) -> None:
    """Behind a trusted proxy each patient's address gets its own rate limit; from any other address
    a forged X-Forwarded-For is ignored and every request counts against the sender."""
    proxies = "127.0.0.1" if trusted else "10.0.0.1,192.168.0.0/16"
    settings = built_settings.model_copy(
        update={"forwarded_allow_ips": proxies, "rate_limit_per_minute": 1, "rate_limit_burst": 2}
    )
    with served(settings, fake_embedder) as base_url, httpx.Client(base_url=base_url) as client:
        codes = [
            client.post(
                "/v1/ask", json={"question": "hi there"}, headers={"X-Forwarded-For": f"203.0.113.{number}"}
            ).status_code
            for number in range(4)
        ]
    assert codes == ([200] * 4 if trusted else [200, 200, 429, 429])


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    assert Settings(_env_file=None, forwarded_allow_ips=" 10.0.0.1, 10.1.0.0/16 ").forwarded_allow_ips == (  # type: ignore[call-arg]
        "10.0.0.1,10.1.0.0/16"
    )
    with pytest.raises(ValueError, match="'nginx' is not an IP address or network"):
        Settings(_env_file=None, forwarded_allow_ips="10.0.0.1,nginx")  # type: ignore[call-arg]
