"""Replicas behind nginx on one machine: ``qa-service serve`` processes sharing one index folder, an
nginx started as an ordinary (non-daemon) process with a generated configuration in a folder of its
own, and the benchmark of the set-up (``scripts/bench_replicas.py``).

The end-to-end test (tests/test_replicas.py) and the benchmark use the same pieces: ``nginx_config``,
``Nginx`` and ``ReplicaSet``. The configuration mirrors ``deploy/nginx.conf`` (round robin, passive
health checks, the next replica tried when one refuses the connection or is not ready).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from qa_service.errors import QaError
from qa_service.index.store import BUILDS_DIR, CURRENT_FILE, VECTORS, current_build_id
from qa_service.settings import Settings
from qa_service.tooling.bench import (
    SERVE_COMMAND,
    ServerProcess,
    free_port,
    load_questions,
    start_server,
    stop_process,
)
from qa_service.tooling.loadgen import Run, drive

logger = logging.getLogger(__name__)

UPSTREAM = "qa_replicas"


def nginx_binary() -> str | None:
    """The nginx to run: NGINX_PATH, else nginx on PATH or in /usr/sbin (Debian's); None if absent."""
    configured = os.environ.get("NGINX_PATH")
    if configured:
        return configured if Path(configured).is_file() else None
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def nginx_config(
    upstreams: Sequence[str], *, port: int, workdir: Path, rate_limit_per_minute: int = 0, rate_limit_burst: int = 20
) -> str:
    """An nginx configuration that runs in the foreground with every file in ``workdir`` (no root
    needed on a port above 1024) and balances ``upstreams`` (host:port) round robin.

    A replica that refuses the connection, times out or answers 502/503 (not ready) is skipped for
    the request and, after one failure, for 2 s (passive health check). ``POST /v1/ask`` changes
    nothing, so it is retried on the other replica even once sent; feedback is never sent twice."""
    servers = "\n".join(f"        server {upstream} max_fails=1 fail_timeout=2s;" for upstream in upstreams)
    limit_zone = limit = ""
    if rate_limit_per_minute > 0:
        limit_zone = f"    limit_req_zone $binary_remote_addr zone=qa_clients:10m rate={rate_limit_per_minute}r/m;\n"
        limit = f"            limit_req zone=qa_clients burst={rate_limit_burst} nodelay;\n"
    proxy = (
        f"            proxy_pass http://{UPSTREAM};\n"
        "            proxy_http_version 1.1;\n"
        '            proxy_set_header Connection "";\n'
        "            proxy_set_header Host $host;\n"
        "            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
        "            proxy_set_header X-Forwarded-Proto $scheme;\n"
        "            proxy_next_upstream_tries 2;\n"
    )
    user = "user root;\n" if os.geteuid() == 0 else ""  # as root, workers would switch to nobody
    return f"""{user}daemon off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{
    worker_connections 2048;
}}
http {{
    access_log off;
    client_body_temp_path {workdir}/client_body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
{limit_zone}    limit_req_status 429;
    upstream {UPSTREAM} {{
{servers}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location = /v1/ask {{
{limit}{proxy}            proxy_next_upstream error timeout http_502 http_503 non_idempotent;
        }}
        location / {{
{limit}{proxy}            proxy_next_upstream error timeout http_502 http_503;
        }}
    }}
}}
"""


class Nginx:
    """nginx in the foreground with a generated configuration; stopped on leaving the block."""

    def __init__(self, upstreams: Sequence[str], *, port: int | None = None, rate_limit_per_minute: int = 0) -> None:
        binary = nginx_binary()
        if binary is None:
            raise QaError("nginx is not installed (apt-get install nginx, or set NGINX_PATH)")
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.workdir = Path(tempfile.mkdtemp(prefix="qa-nginx-"))
        config = self.workdir / "nginx.conf"
        config.write_text(
            nginx_config(upstreams, port=self.port, workdir=self.workdir, rate_limit_per_minute=rate_limit_per_minute)
        )
        error_log = str(self.workdir / "error.log")
        self.process = subprocess.Popen([binary, "-p", str(self.workdir), "-e", error_log, "-c", str(config)])
        deadline = time.monotonic() + 10
        while not _accepts("127.0.0.1", self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.workdir / "error.log").read_text(errors="replace") if Path(error_log).exists() else ""
                self.stop()
                raise QaError(f"nginx did not start: {log.strip()[-500:]}")
            time.sleep(0.02)

    def __enter__(self) -> Nginx:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process.poll() is None:
            stop_process(self.process)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _accepts(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


@dataclass
class ReplicaSet:
    """``count`` servers (``command``, by default ``qa-service serve``) on fixed loopback ports, each
    with ``env`` (one index folder, and later one database), and nginx in front of them."""

    count: int
    env: dict[str, str]
    command: Sequence[str] = SERVE_COMMAND
    ports: list[int] = field(default_factory=list)
    servers: list[ServerProcess | None] = field(default_factory=list)
    nginx: Nginx | None = None

    def start(self, *, rate_limit_per_minute: int = 0) -> ReplicaSet:
        self.ports = [free_port() for _ in range(self.count)]
        self.servers = [None] * self.count
        try:
            for number in range(self.count):
                self.start_replica(number)
            self.nginx = Nginx(
                [f"127.0.0.1:{port}" for port in self.ports], rate_limit_per_minute=rate_limit_per_minute
            )
        except BaseException:
            self.stop()
            raise
        return self

    def start_replica(self, number: int, *, timeout: float = 120.0) -> ServerProcess:
        """(Re)start replica ``number`` on its port; returns once its /readyz says ready."""
        server = start_server(self.env, port=self.ports[number], command=self.command, timeout=timeout)
        self.servers[number] = server
        return server

    def kill(self, number: int) -> None:
        """SIGKILL, as a crashed or evicted machine: no graceful shutdown."""
        server = self.servers[number]
        if server is not None:
            server.process.send_signal(signal.SIGKILL)
            server.process.wait()
            self.servers[number] = None

    def stop_replica(self, number: int) -> None:
        server = self.servers[number]
        if server is not None:
            server.stop()
            self.servers[number] = None

    def readiness(self, number: int) -> dict[str, Any]:
        """Replica ``number``'s /readyz body (asked directly, not through nginx)."""
        with httpx.Client(timeout=5.0) as client:
            body: dict[str, Any] = client.get(f"http://127.0.0.1:{self.ports[number]}/readyz").json()
            return body

    def served_builds(self) -> list[str | None]:
        """The build each running replica serves (None for a stopped one or one not ready)."""
        builds: list[str | None] = []
        for number, server in enumerate(self.servers):
            builds.append(self.readiness(number).get("index", {}).get("build_id") if server is not None else None)
        return builds

    def wait_until_all_serve(self, build_id: str, *, timeout: float) -> float:
        """Seconds until every running replica serves ``build_id``; QaError after ``timeout``."""
        started = time.monotonic()
        while True:
            builds = [build for build, server in zip(self.served_builds(), self.servers, strict=True) if server]
            if all(build == build_id for build in builds):
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise QaError(f"after {timeout:.0f}s the replicas serve {builds}, not {build_id}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
            self.nginx = None
        for number in range(len(self.servers)):
            self.stop_replica(number)


@contextmanager
def replica_set(
    count: int, env: dict[str, str], *, command: Sequence[str] = SERVE_COMMAND, rate_limit_per_minute: int = 0
) -> Iterator[ReplicaSet]:
    replicas = ReplicaSet(count, env, command).start(rate_limit_per_minute=rate_limit_per_minute)
    try:
        yield replicas
    finally:
        replicas.stop()


def failures_after(run: Run, moment: float) -> int:
    """Failed requests of ``run`` sent after ``moment`` (perf_counter)."""
    return sum(1 for sent in run.failed_at if sent > moment)


# --- the benchmark (scripts/bench_replicas.py) ---------------------------------------------------


def _copy_index(index_dir: Path, into: Path) -> Path:
    """The served build of ``index_dir`` and its CURRENT, copied: the benchmark publishes and breaks
    builds, never in the operator's folder."""
    build = current_build_id(index_dir)
    copy = into / "index"
    shutil.copytree(index_dir / BUILDS_DIR / build, copy / BUILDS_DIR / build)
    shutil.copy2(index_dir / CURRENT_FILE, copy / CURRENT_FILE)
    return copy


def _qa_service(*args: str, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "qa_service", *args], env={**os.environ, **env}, check=True, stdout=subprocess.DEVNULL
    )


async def _publish_during(
    replicas: ReplicaSet, url: str, questions: Sequence[str], args: argparse.Namespace
) -> dict[str, Any]:
    """Load through nginx while ``qa-service build`` publishes a new build; when every replica serves it."""
    load = asyncio.create_task(drive(url, questions, args.requests, args.concurrency))
    await asyncio.sleep(args.publish_after)
    before = current_build_id(Path(replicas.env["QA_INDEX_DIR"]))
    started = time.perf_counter()
    await asyncio.to_thread(_qa_service, "build", "--no-progress", env=replicas.env)
    published = current_build_id(Path(replicas.env["QA_INDEX_DIR"]))
    build_seconds = time.perf_counter() - started
    switch = await asyncio.to_thread(replicas.wait_until_all_serve, published, timeout=120)
    run = await load
    if load_done_early := (not run.seconds or run.seconds < args.publish_after + build_seconds):
        logger.warning("the load ended before every replica switched; raise --requests")
    return {
        "requests": args.requests,
        "concurrency": args.concurrency,
        "failures": run.failures,
        "requests_per_second": round(args.requests / run.seconds, 1),
        "build_seconds": round(build_seconds, 1),
        "all_replicas_switched_after_s": round(switch, 2),
        "poll_seconds": float(replicas.env.get("QA_RELOAD_POLL_SECONDS", 2)),
        "published": published != before,
        "load_ended_before_the_switch": load_done_early,
    }


async def _kill_during(
    replicas: ReplicaSet, url: str, questions: Sequence[str], args: argparse.Namespace
) -> dict[str, Any]:
    """Load through nginx while replica 0 is SIGKILLed; failures before and after the kill."""
    load = asyncio.create_task(drive(url, questions, args.kill_requests, args.concurrency))
    await asyncio.sleep(args.kill_after)
    killed_at = time.perf_counter()
    await asyncio.to_thread(replicas.kill, 0)
    run = await load
    return {
        "requests": args.kill_requests,
        "concurrency": args.concurrency,
        "failures": run.failures,
        "failures_sent_after_the_kill": failures_after(run, killed_at),
        "requests_per_second": round(args.kill_requests / run.seconds, 1),
    }


def _throughput(url: str, questions: Sequence[str], total: int, concurrency: int) -> float:
    asyncio.run(drive(url, questions, min(500, total), concurrency))  # warm-up, not counted
    run = asyncio.run(drive(url, questions, total, concurrency))
    if run.failures:
        raise QaError(f"{run.failures} of {total} requests to {url} failed")
    return total / run.seconds


def run_replica_bench(settings: Settings, questions: Sequence[str], args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="qa-replicas-") as folder:
        index = _copy_index(settings.index_dir, Path(folder))
        env = {
            "QA_INDEX_DIR": str(index),
            "QA_CORPUS_DIR": str(settings.corpus_dir.resolve()),
            "QA_MODEL": settings.model,
            "QA_RELOAD_POLL_SECONDS": str(args.poll_seconds),
            "QA_FEEDBACK_DB": str(Path(folder) / "feedback.sqlite3"),
            "QA_CACHE_SIZE": "0",  # every request reaches the model, as distinct questions do
        }
        with replica_set(2, env) as replicas:
            assert replicas.nginx is not None
            url = replicas.nginx.base_url
            direct = f"http://127.0.0.1:{replicas.ports[0]}"
            starts = [server.cold_start_s for server in replicas.servers if server is not None]
            # one replica direct and the pair through nginx, taking turns (the machine drifts)
            pairs = [
                (
                    _throughput(direct, questions, args.throughput_requests, args.concurrency),
                    _throughput(url, questions, args.throughput_requests, args.concurrency),
                )
                for _ in range(2)
            ]
            one, pair = (sum(values) / len(values) for values in zip(*pairs, strict=True))
            results["throughput"] = {
                "requests_each": args.throughput_requests,
                "concurrency": args.concurrency,
                "one_replica_direct_rps": round(one, 1),
                "two_replicas_through_nginx_rps": round(pair, 1),
                "ratio": round(pair / one, 3),
            }
            results["publish_under_load"] = asyncio.run(_publish_during(replicas, url, questions, args))
            results["kill_one_replica"] = asyncio.run(_kill_during(replicas, url, questions, args))
            restarted = replicas.start_replica(0)
            starts.append(restarted.cold_start_s)
            current = current_build_id(index)
            results["kill_one_replica"]["restart_s"] = round(restarted.cold_start_s, 2)
            results["kill_one_replica"]["restarted_serves_current"] = replicas.served_builds()[0] == current

            # a replica (re)started while CURRENT names a corrupt build
            _qa_service("build", "--no-progress", env=env)
            broken = current_build_id(index)
            with (index / BUILDS_DIR / broken / VECTORS).open("ab") as handle:
                handle.write(b"corruption")
            replicas.stop_replica(1)
            fallback = replicas.start_replica(1)
            ready = replicas.readiness(1)
            results["start_on_corrupt_build"] = {
                "start_s": round(fallback.cold_start_s, 2),
                "normal_start_s_median": round(sorted(starts)[len(starts) // 2], 2),
                "serves_previous_build": ready["index"]["build_id"] == current and ready["published_build"] == broken,
                "fallback_reported": ready["fallback"] is not None,
            }
    return results


def render(results: dict[str, Any]) -> str:
    throughput, publish = results["throughput"], results["publish_under_load"]
    kill, corrupt = results["kill_one_replica"], results["start_on_corrupt_build"]
    rows = [
        (
            f"build published mid-run, {publish['requests']} requests c={publish['concurrency']} through nginx",
            f"{publish['failures']} failed; every replica on the new build "
            f"{publish['all_replicas_switched_after_s']} s after it was published (poll {publish['poll_seconds']} s)",
            publish["failures"] == 0 and publish["requests"] >= 20_000,
        ),
        (
            f"replica SIGKILLed mid-run, {kill['requests']} requests c={kill['concurrency']}",
            f"{kill['failures']} failed, {kill['failures_sent_after_the_kill']} of them sent after the kill; "
            f"restarted in {kill['restart_s']} s, serving the current build: {kill['restarted_serves_current']}",
            kill["failures_sent_after_the_kill"] == 0 and kill["restarted_serves_current"],
        ),
        (
            "replica started on a corrupt current build",
            f"ready in {corrupt['start_s']} s (normal start {corrupt['normal_start_s_median']} s), previous build "
            f"served: {corrupt['serves_previous_build']}, reported: {corrupt['fallback_reported']}",
            corrupt["serves_previous_build"] and corrupt["fallback_reported"],
        ),
        (
            f"throughput c={throughput['concurrency']}: two replicas through nginx / one direct",
            f"{throughput['two_replicas_through_nginx_rps']} / {throughput['one_replica_direct_rps']} req/s "
            f"= {throughput['ratio']}x",
            None,
        ),
    ]
    verdict = {True: "met", False: "NOT MET", None: "-"}
    return "\n".join(f"{verdict[ok]:>8}  {what}: {figure}" for what, figure, ok in rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench_replicas.py",
        description="Two qa-service replicas on one index folder behind nginx: a build published under "
        "load, a replica killed under load, a replica started on a corrupt build, throughput.",
    )
    parser.add_argument("--questions", type=Path, nargs="+", default=[Path("tests/data/seed_queries.jsonl")])
    parser.add_argument("--requests", type=int, default=20_000, help="requests of the publish run (default 20000)")
    parser.add_argument("--kill-requests", type=int, default=8_000, help="requests of the kill run (default 8000)")
    parser.add_argument("--throughput-requests", type=int, default=3_000, help="requests per throughput turn")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--publish-after", type=float, default=10.0, help="seconds into the run (default 10)")
    parser.add_argument("--kill-after", type=float, default=5.0, help="seconds into the run (default 5)")
    parser.add_argument("--poll-seconds", type=float, default=2.0, help="QA_RELOAD_POLL_SECONDS of the replicas")
    parser.add_argument("--out", type=Path, help="write the results as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    results = run_replica_bench(Settings(), load_questions(args.questions), args)
    print(render(results))
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0
