"""Latency benchmark: the in-process floor (embed + search + decide) and HTTP against a real server.

The server runs as a separate process (``qa-service serve`` on a loopback port) and is driven by
an httpx client from this process, so the figures include HTTP parsing, validation and JSON.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from qa_service.engine import Engine
from qa_service.errors import QaError


@dataclass(frozen=True)
class LatencySummary:
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> LatencySummary:
        ms = sorted(value * 1000 for value in seconds)

        def pct(q: float) -> float:
            return ms[min(len(ms) - 1, round(q * (len(ms) - 1)))]

        return cls(
            len(ms),
            round(statistics.median(ms), 3),
            round(pct(0.95), 3),
            round(pct(0.99), 3),
            round(statistics.fmean(ms), 3),
        )


def load_questions(paths: Sequence[Path]) -> list[str]:
    """Distinct questions from JSONL files with a 'query' field, in file order."""
    questions: dict[str, None] = {}
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                questions.setdefault(json.loads(line)["query"], None)
    if not questions:
        raise QaError("no benchmark questions found")
    return list(questions)


def measure_in_process(engine: Engine, questions: Sequence[str], *, warmup: int = 5) -> LatencySummary:
    for question in questions[:warmup]:
        engine.answerer.ask(question)
    timings = []
    for question in questions:
        started = time.perf_counter()
        engine.answerer.ask(question)
        timings.append(time.perf_counter() - started)
    return LatencySummary.of(timings)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    base_url: str
    cold_start_s: float

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(env: dict[str, str] | None = None, *, timeout: float = 60.0) -> ServerProcess:
    """Start ``qa-service serve`` on a free loopback port and wait until /readyz says ready."""
    port = free_port()
    environment = {**os.environ, **(env or {}), "QA_HOST": "127.0.0.1", "QA_PORT": str(port)}
    environment.setdefault("QA_LOG_LEVEL", "WARNING")
    environment.setdefault("QA_RATE_LIMIT_PER_MINUTE", "0")  # one load generator is not an abusive client
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "qa_service", "serve"], env=environment)
    base_url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base_url, timeout=2.0) as client:
        while time.perf_counter() - started < timeout:
            if process.poll() is not None:
                raise QaError(f"the server exited with code {process.returncode} before it was ready")
            try:
                if client.get("/readyz").status_code == 200:
                    return ServerProcess(process, base_url, time.perf_counter() - started)
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    process.kill()
    raise QaError(f"the server was not ready after {timeout:.0f}s")


def measure_http(base_url: str, questions: Sequence[str], *, warmup: int = 5) -> LatencySummary:
    """Sequential requests (concurrency 1), each a distinct question."""
    timings = []
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        for question in questions[:warmup]:
            client.post("/v1/ask", json={"question": question}).raise_for_status()
        for question in questions:
            started = time.perf_counter()
            response = client.post("/v1/ask", json={"question": question})
            timings.append(time.perf_counter() - started)
            response.raise_for_status()
    return LatencySummary.of(timings)


def resident_mb(pid: int) -> float:
    """Resident memory of a process (Linux /proc), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise QaError(f"no VmRSS for process {pid}")


@dataclass(frozen=True)
class LoadResult:
    requests: int
    failures: int
    concurrency: int
    seconds: float
    latency: LatencySummary
    rss_start_mb: float  # after the warm-up
    rss_end_mb: float

    def as_dict(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "failures": self.failures,
            "concurrency": self.concurrency,
            "seconds": round(self.seconds, 2),
            "requests_per_second": round(self.requests / self.seconds, 1),
            "latency_ms": self.latency.__dict__,
            "rss_start_mb": round(self.rss_start_mb, 1),
            "rss_end_mb": round(self.rss_end_mb, 1),
            "rss_growth": round(self.rss_end_mb / self.rss_start_mb - 1, 4),
        }


async def _drive(base_url: str, questions: Sequence[str], total: int, concurrency: int) -> tuple[list[float], int]:
    """``total`` requests cycling through ``questions``, ``concurrency`` at a time; (latencies, failures)."""
    import asyncio

    latencies: list[float] = []
    failures = 0
    next_index = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=60.0, limits=limits) as client:

        async def worker() -> None:
            nonlocal next_index, failures
            while next_index < total:
                question = questions[next_index % len(questions)]
                next_index += 1
                started = time.perf_counter()
                try:
                    response = await client.post("/v1/ask", json={"question": question})
                    if response.status_code != 200:
                        failures += 1
                except httpx.HTTPError:
                    failures += 1
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, failures


def measure_load(
    server: ServerProcess, questions: Sequence[str], *, total: int, concurrency: int, warmup: int = 500
) -> LoadResult:
    """A bounded load test against a running server: failures, latency, throughput, memory growth."""
    import asyncio

    asyncio.run(_drive(server.base_url, questions, min(warmup, total), concurrency))
    rss_start = resident_mb(server.process.pid)
    started = time.perf_counter()
    latencies, failures = asyncio.run(_drive(server.base_url, questions, total, concurrency))
    seconds = time.perf_counter() - started
    return LoadResult(
        total,
        failures,
        concurrency,
        seconds,
        LatencySummary.of(latencies),
        rss_start,
        resident_mb(server.process.pid),
    )
