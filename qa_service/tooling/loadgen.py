"""The benchmark's load generator: keep-alive HTTP/1.1 connections on asyncio, responses parsed by
httptools (the C parser uvicorn itself uses).

Why not httpx: the load generator shares the machine's two cores with the server it measures, so
every millisecond it spends per request is added to the latency it reports (at concurrency 1) or
taken from the server (at 32). Measured on the same 200 questions against the same server: httpx's
async client reported a c=1 p50 of 10.8 ms, this client 8.1 ms, with the server's own time
(Server-Timing) 7.9 ms. Only what the harness needs: POST one JSON body, read status, headers and
body; no redirects, TLS or chunked uploads.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httptools


@dataclass
class Reply:
    status: int
    headers: dict[bytes, bytes]
    body: bytes


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Reply] | None = None
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self.closed = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"malformed response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(exc or ConnectionError("the server closed the connection"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        reply = Reply(self._parser.get_status_code(), self._headers, b"".join(self._body))
        self._headers, self._body = {}, []
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(reply)

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()

    def send(self, request: bytes) -> asyncio.Future[Reply]:
        if self._transport is None or self.closed:
            raise ConnectionError("the connection is closed")
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        return self._waiter

    def close(self) -> None:
        if self._transport is not None and not self.closed:
            self.closed = True
            self._transport.close()


def post_json(host: str, path: str, payload: object) -> bytes:
    """The bytes of one POST request with a JSON body."""
    body = json.dumps(payload).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def server_time(headers: dict[bytes, bytes]) -> float | None:
    """Seconds the server says it spent (``Server-Timing: app;dur=<ms>``), if it says."""
    for part in headers.get(b"server-timing", b"").decode("latin-1").split(","):
        name, _, params = part.strip().partition(";")
        if name == "app" and params.startswith("dur="):
            return float(params[4:]) / 1000
    return None


class Client:
    """One client: a keep-alive connection to a server, reopened after an error."""

    def __init__(self, base_url: str, *, timeout: float = 60.0) -> None:
        url = urlsplit(base_url)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.timeout = timeout
        self._connection: _Connection | None = None

    def ask_request(self, question: str) -> bytes:
        return self.post_request("/v1/ask", {"question": question})

    def post_request(self, path: str, payload: object) -> bytes:
        return post_json(f"{self.host}:{self.port}", path, payload)

    async def send(self, request: bytes) -> Reply:
        """The reply to ``request``; OSError when the connection fails or the reply times out
        (TimeoutError is an OSError), after which the next call reconnects."""
        try:
            connection = await self.connect()
            return await asyncio.wait_for(connection.send(request), self.timeout)
        except OSError:
            self.close()
            raise

    async def connect(self) -> _Connection:
        """The open connection, opened first if there is none (or it failed)."""
        if self._connection is None or self._connection.closed:
            _, self._connection = await asyncio.get_running_loop().create_connection(_Connection, self.host, self.port)
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)  # seconds per request, failures included
    server: list[float] = field(default_factory=list)  # the server's own seconds per answered request
    failures: int = 0  # non-200 replies, errors and timeouts
    failed_at: list[float] = field(default_factory=list)  # when each failed request was sent (perf_counter)
    seconds: float = 0.0  # wall time of the whole run


async def drive(base_url: str, questions: Sequence[str], total: int, concurrency: int, *, timeout: float = 60.0) -> Run:
    """``total`` POST /v1/ask requests cycling through ``questions``, ``concurrency`` at a time, each
    concurrent client on its own keep-alive connection (reopened after an error).

    The connections are opened before the clock starts, as a chat widget's are before its patients
    ask: otherwise a short run at concurrency 32 measures the server accepting connections one by
    one while it answers the first (measured: 15 batches of one question before the first full
    batch), not its throughput."""
    clients = [Client(base_url, timeout=timeout) for _ in range(concurrency)]
    requests = [clients[0].ask_request(question) for question in questions]
    run = Run()
    next_index = 0

    async def client(connection: Client) -> None:
        nonlocal next_index
        while next_index < total:
            request = requests[next_index % len(requests)]
            next_index += 1
            await _timed(connection, request, run)

    try:
        await asyncio.gather(*(connection.connect() for connection in clients), return_exceptions=True)
        started = time.perf_counter()
        await asyncio.gather(*(client(connection) for connection in clients))
        run.seconds = time.perf_counter() - started
    finally:
        for connection in clients:
            connection.close()
    return run


async def _timed(client: Client, request: bytes, run: Run) -> None:
    """Send one request and count it in ``run``: its latency, and a failure unless it got a 2xx
    (refused, reset, timed out, or another status), else the server's own time when it says."""
    started = time.perf_counter()
    try:
        reply = await client.send(request)
    except OSError:
        run.failures += 1
        run.failed_at.append(started)
    else:
        if not 200 <= reply.status < 300:  # /v1/ask answers 200, /v1/feedback 201
            run.failures += 1
            run.failed_at.append(started)
        elif (spent := server_time(reply.headers)) is not None:
            run.server.append(spent)
    run.latencies.append(time.perf_counter() - started)


async def drive_paired(base_urls: Sequence[str], questions: Sequence[str], *, timeout: float = 60.0) -> list[Run]:
    """Each question asked of every server in turn (concurrency 1, the first server rotating), so
    that two configurations are compared under the same conditions: on a shared machine speed
    drifts by 10% between runs a minute apart, more than the differences worth measuring. The
    servers share the CPU caches, so absolute latencies come out higher than with one server (each
    finds its model's weights evicted by the other's); the ratio between them is the figure."""
    bodies = [{"question": question} for question in questions]
    return await drive_paired_posts(base_urls, "/v1/ask", bodies, timeout=timeout)


async def drive_paired_posts(
    base_urls: Sequence[str], path: str, bodies: Sequence[object], *, timeout: float = 60.0
) -> list[Run]:
    """``drive_paired`` for any POST endpoint: each JSON body posted to ``path`` of every server in turn."""
    clients = [Client(url, timeout=timeout) for url in base_urls]
    runs = [Run() for _ in clients]
    started = time.perf_counter()
    try:
        for number, body in enumerate(bodies):
            for turn in range(len(clients)):
                which = (number + turn) % len(clients)
                await _timed(clients[which], clients[which].post_request(path, body), runs[which])
    finally:
        for client in clients:
            client.close()
    for run in runs:
        run.seconds = time.perf_counter() - started
    return runs


async def drive_alternating_posts(
    base_url: str, path: str, body_sets: Sequence[Sequence[object]], *, timeout: float = 60.0
) -> list[Run]:
    """One server, several kinds of request: the n-th body of every set posted in turn (which set goes
    first rotates), one run per set: their latencies under the same conditions."""
    client = Client(base_url, timeout=timeout)
    runs = [Run() for _ in body_sets]
    started = time.perf_counter()
    try:
        for number in range(min(len(bodies) for bodies in body_sets)):
            for turn in range(len(body_sets)):
                which = (number + turn) % len(body_sets)
                await _timed(client, client.post_request(path, body_sets[which][number]), runs[which])
    finally:
        client.close()
    for run in runs:
        run.seconds = time.perf_counter() - started
    return runs


async def drive_beside(
    base_url: str, questions: Sequence[str], local: Callable[[str], object], *, timeout: float = 60.0
) -> tuple[Run, list[float]]:
    """Each question answered in this process (``local``, timed) and asked of the server, in turn
    (which goes first alternates): the in-process floor and HTTP at concurrency 1 measured under the
    same conditions, as ``drive_paired`` compares two servers. Returns the server's run and the
    in-process seconds per question."""
    client = Client(base_url, timeout=timeout)
    run, here = Run(), []
    started = time.perf_counter()
    try:
        for number, question in enumerate(questions):
            for turn in range(2):
                if (number + turn) % 2 == 0:
                    began = time.perf_counter()
                    local(question)
                    here.append(time.perf_counter() - began)
                else:
                    await _timed(client, client.ask_request(question), run)
    finally:
        client.close()
    run.seconds = time.perf_counter() - started
    return run, here
