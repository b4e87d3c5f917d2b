"""The benchmark's load generator against small scripted servers: what it counts must be right,
or every figure in docs/benchmarks.md is wrong."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from qa_service.tooling.loadgen import Run, drive, drive_beside, drive_paired, post_json, server_time

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _run(handler: Handler, questions: list[str], **options: Any) -> Run:
    """``drive`` against a scripted server; returns once every connection is closed on both sides."""
    handlers: list[asyncio.Task[None]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        try:
            await handler(reader, writer)
        finally:
            writer.close()
            await writer.wait_closed()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        run = await drive(f"http://127.0.0.1:{port}", questions, **options)
        await asyncio.gather(*handlers)  # the client closed its connections: handlers see EOF
    return run


async def _read_request(reader: asyncio.StreamReader) -> dict[str, str] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = next(
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    result: dict[str, str] = json.loads(await reader.readexactly(length))
    return result


def _response(status: int, body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 %d X\r\ncontent-length: %d\r\n%s\r\n%s" % (status, len(body), extra, body)


def test_counts_every_request_failures_and_the_servers_own_time() -> None:
    seen: list[str] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (request := await _read_request(reader)) is not None:
            seen.append(request["question"])
            if request["question"] == "bad":
                writer.write(_response(422, b'{"error": {}}'))
            else:
                body = b'{"status": "answered"}'
                head = _response(200, body, b"server-timing: app;dur=2.500\r\n")
                writer.write(head[:-5])  # a reply split across writes is still one reply
                await writer.drain()
                writer.write(head[-5:])
            await writer.drain()

    run = asyncio.run(_run(handler, ["one", "bad", "three"], total=7, concurrency=2))
    assert len(run.latencies) == 7 and run.seconds > 0
    assert run.failures == 2  # "bad" came up twice in 7 requests cycling 3 questions
    assert run.server == [0.0025] * 5
    assert sorted(seen) == sorted(["one", "bad", "three"] * 2 + ["one"])


def test_a_dropped_connection_is_a_failure_and_the_client_reconnects() -> None:
    answered = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal answered
        while (request := await _read_request(reader)) is not None:
            if request["question"] == "drop":
                return  # closed without a reply
            answered += 1
            writer.write(_response(200, b"{}"))
            await writer.drain()

    run = asyncio.run(_run(handler, ["a", "drop", "b", "c"], total=8, concurrency=1))
    assert len(run.latencies) == 8 and run.failures == 2 and run.server == []
    assert answered == 6


def test_connections_are_opened_before_the_clock_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Throughput at concurrency 32 must not include 32 connection set-ups (slow here on purpose)."""
    opening = asyncio.base_events.BaseEventLoop.create_connection

    async def slow_open(self: Any, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.3)
        return await opening(self, *args, **kwargs)

    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "create_connection", slow_open)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await _read_request(reader) is not None:
            writer.write(_response(200, b"{}"))
            await writer.drain()

    run = asyncio.run(_run(handler, ["a", "b", "c", "d"], total=8, concurrency=4))
    assert run.failures == 0 and len(run.latencies) == 8
    assert run.seconds < 0.3 and max(run.latencies) < 0.3


def test_a_server_that_refuses_connections_gives_failures_not_an_exception() -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = asyncio.run(drive(f"http://127.0.0.1:{port}", ["a"], 3, 2))
    assert run.failures == 3 and len(run.latencies) == 3


def test_a_reply_that_never_comes_times_out() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await reader.read()  # never replies; returns when the client gives up and closes

    run = asyncio.run(_run(handler, ["slow"], total=1, concurrency=1, timeout=0.2))
    assert run.failures == 1 and run.latencies[0] < 2


def test_request_bytes_and_server_timing_parsing() -> None:
    request = post_json("127.0.0.1:8000", "/v1/ask", {"question": "héllo"})
    head, _, body = request.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /v1/ask HTTP/1.1\r\nhost: 127.0.0.1:8000\r\n")
    assert b"content-length: %d" % len(body) in head and json.loads(body) == {"question": "héllo"}
    assert server_time({b"server-timing": b"db;dur=1, app;dur=12.5"}) == 0.0125
    assert server_time({}) is None


def test_paired_runs_ask_every_server_every_question_in_rotating_order() -> None:
    order: list[tuple[str, str]] = []
    handlers: list[asyncio.Task[None]] = []

    def answering(name: str) -> Handler:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            handlers.append(asyncio.current_task())  # type: ignore[arg-type]
            while (request := await _read_request(reader)) is not None:
                order.append((name, request["question"]))
                writer.write(_response(200, b"{}", b"server-timing: app;dur=1\r\n"))
                await writer.drain()
            writer.close()
            await writer.wait_closed()

        return handler

    async def main() -> list[Run]:
        servers = [await asyncio.start_server(answering(name), "127.0.0.1", 0) for name in ("a", "b")]
        urls = [f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}" for server in servers]
        try:
            runs = await drive_paired(urls, ["q1", "q2", "q3"])
            await asyncio.gather(*handlers)  # the clients closed their connections: handlers see EOF
            return runs
        finally:
            for server in servers:
                server.close()

    runs = asyncio.run(main())
    assert order == [("a", "q1"), ("b", "q1"), ("b", "q2"), ("a", "q2"), ("a", "q3"), ("b", "q3")]
    assert [len(run.latencies) for run in runs] == [3, 3] and all(run.failures == 0 for run in runs)
    assert runs[0].server == [0.001] * 3


def test_the_floor_beside_the_server_answers_every_question_both_ways_in_alternating_order() -> None:
    order: list[tuple[str, str]] = []
    handlers: list[asyncio.Task[None]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        while (request := await _read_request(reader)) is not None:
            order.append(("server", request["question"]))
            writer.write(_response(200, b"{}", b"server-timing: app;dur=1\r\n"))
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main() -> tuple[Run, list[float]]:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        try:
            result = await drive_beside(url, ["q1", "q2", "q3"], lambda question: order.append(("here", question)))
            await asyncio.gather(*handlers)  # the client closed its connection: the handler sees EOF
            return result
        finally:
            server.close()

    run, here = asyncio.run(main())
    assert order == [
        ("here", "q1"),
        ("server", "q1"),
        ("server", "q2"),
        ("here", "q2"),
        ("here", "q3"),
        ("server", "q3"),
    ]
    assert len(here) == 3 and all(seconds >= 0 for seconds in here)
    assert len(run.latencies) == 3 and run.failures == 0 and run.server == [0.001] * 3
