"""Feedback durability with replicas: votes sent to several ``qa-service serve`` processes sharing one
PostgreSQL store, one of them killed with SIGKILL mid-run, then every vote that got a 201 looked up
in the database.

Each vote carries a tag of its own in ``reason`` (letters: the privacy scrub leaves them alone), so
the check is exact: the acknowledged tags missing from the database must be none. A vote in flight
to the killed replica gets no reply; like a load balancer, the client sends it again to a replica
still up. Such a vote may have been committed before the kill, so the database can hold it twice:
reported as ``stored_twice`` (at most the number re-sent), never counted as lost or as acknowledged.

    python scripts/feedback_check.py --votes 10000 --concurrency 32      # a throwaway server of its own
    python scripts/feedback_check.py --db postgresql://qa@db/qa_feedback  # or an existing database
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import string
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from qa_service.errors import QaError
from qa_service.ops.storage import open_feedback_store
from qa_service.settings import Settings
from qa_service.tooling.bench import ServerProcess, resident_mb, start_server
from qa_service.tooling.loadgen import Client, post_json
from qa_service.tooling.pgserver import temporary_postgres

BENCH_DATABASE = "qa_feedback_check"
MAX_ATTEMPTS = 100  # per vote, 50 ms apart on a replica still up


def tag(number: int) -> str:
    """A vote's number in letters (the privacy scrub replaces long digit runs)."""
    letters = ""
    while True:
        number, digit = divmod(number, 26)
        letters = string.ascii_lowercase[digit] + letters
        if number == 0:
            return letters


@dataclass
class VoteRun:
    acknowledged: dict[int, int] = field(default_factory=dict)  # vote -> replica that answered 201
    resent: set[int] = field(default_factory=set)  # votes whose first try got no 201 (sent again elsewhere)
    killed_after: int = 0  # the victim's 201s when it was killed
    seconds: float = 0.0


async def send_votes(
    servers: Sequence[ServerProcess],
    answer_ids: Sequence[str],
    run_id: str,
    *,
    votes: int,
    concurrency: int,
    kill_after: int,
) -> VoteRun:
    """``votes`` votes, ``concurrency`` at a time, client i on replica i % len(servers); the last
    replica is SIGKILLed right after its ``kill_after``-th 201 (0: none is)."""
    run = VoteRun()
    alive = list(range(len(servers)))
    victim = len(servers) - 1
    victim_acks = 0
    next_vote = 0
    addresses = [urlsplit(server.base_url).netloc for server in servers]

    def request(replica: int, vote: int) -> bytes:
        body = {
            "answer_id": answer_ids[vote % len(answer_ids)],
            "helpful": vote % 3 != 0,
            "reason": f"check {run_id} {tag(vote)}",
        }
        return post_json(addresses[replica], "/v1/feedback", body)

    async def voter(number: int) -> None:
        nonlocal next_vote, victim_acks
        replica = number % len(servers)
        client = Client(servers[replica].base_url)
        try:
            while next_vote < votes:
                vote, next_vote = next_vote, next_vote + 1
                for _attempt in range(MAX_ATTEMPTS):
                    try:
                        reply = await client.send(request(replica, vote))
                        if reply.status == 201:
                            break
                    except OSError:
                        pass
                    run.resent.add(vote)  # no 201: its outcome is unknown, send it again
                    if replica not in alive:
                        client.close()
                        replica = alive[number % len(alive)]
                        client = Client(servers[replica].base_url)
                    else:
                        await asyncio.sleep(0.05)
                else:
                    raise QaError(f"vote {vote} got no 201 in {MAX_ATTEMPTS} attempts")
                run.acknowledged[vote] = replica
                if replica == victim and victim in alive:
                    victim_acks += 1
                    if victim_acks == kill_after:
                        os.kill(servers[victim].process.pid, signal.SIGKILL)
                        alive.remove(victim)
                        run.killed_after = victim_acks
        finally:
            client.close()

    started = time.perf_counter()
    await asyncio.gather(*(voter(number) for number in range(concurrency)))
    run.seconds = time.perf_counter() - started
    return run


@contextmanager
def bench_database(url: str | None) -> Iterator[str]:
    """``url``, or a new database on a throwaway server (default durability: fsync and synchronous
    commits on) for the block's duration."""
    if url is not None:
        yield url
        return
    with temporary_postgres(fsync=True) as server:
        yield server.create_database(BENCH_DATABASE)


def count_votes(url: str, run_id: str, acknowledged: Sequence[int]) -> dict[str, int]:
    """The run's votes as the store reads them back (what `qa-service review` sees)."""
    with closing(open_feedback_store(url, retention_days=1)) as store:
        reasons = [row.reason or "" for row in store.feedback()]
    stored = [reason.rsplit(" ", 1)[1] for reason in reasons if reason.startswith(f"check {run_id} ")]
    distinct = set(stored)
    return {
        "rows_stored": len(stored),
        "distinct_votes_stored": len(distinct),
        "stored_twice": len(stored) - len(distinct),
        "acknowledged_missing": sum(1 for vote in acknowledged if tag(vote) not in distinct),
    }


def run_feedback_check(
    settings: Settings, *, votes: int, concurrency: int, replicas: int, kill_after: int, db_url: str | None
) -> dict[str, Any]:
    """Start ``replicas`` servers on one PostgreSQL store, send the votes, kill one, count."""
    if replicas < 2 and kill_after:
        raise QaError("killing a replica needs at least 2 of them")
    run_id = uuid.uuid4().hex[:8].translate(str.maketrans("0123456789", "ghijklmnop"))
    with bench_database(db_url) as url, ExitStack() as running:
        env = {
            "QA_FEEDBACK_DB": url,
            "QA_INDEX_DIR": str(settings.index_dir.resolve()),
            "QA_MODEL": settings.model,
            "QA_ACCESS_LOG": "false",
        }
        started = time.perf_counter()
        servers = [running.enter_context(start_server(env, timeout=120)) for _ in range(replicas)]
        ready_s = time.perf_counter() - started
        with httpx.Client(base_url=servers[0].base_url) as client:
            answer_ids = [item["id"] for item in client.get("/v1/faq", params={"limit": 1000}).json()["items"]]
        run = asyncio.run(
            send_votes(servers, answer_ids, run_id, votes=votes, concurrency=concurrency, kill_after=kill_after)
        )
        rss_mb = round(resident_mb(servers[0].process.pid))
        counts = count_votes(url, run_id, list(run.acknowledged))
    return {
        "votes": votes,
        "replicas": replicas,
        "concurrency": concurrency,
        "replicas_ready_s": round(ready_s, 1),
        "seconds": round(run.seconds, 2),
        "votes_per_second": round(votes / run.seconds, 1),
        "acknowledged": len(run.acknowledged),
        "killed_replica_acknowledged_before_kill": run.killed_after,
        "resent_after_no_reply": len(run.resent),
        "surviving_replica_rss_mb": rss_mb,
        **counts,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--votes", type=int, default=10_000, help="votes to send (default 10000)")
    parser.add_argument("--concurrency", type=int, default=32, help="votes in flight (default 32)")
    parser.add_argument("--replicas", type=int, default=2, help="qa-service serve processes (default 2)")
    parser.add_argument(
        "--kill-after", type=int, default=1000, help="SIGKILL the last replica after its Nth 201 (0: never)"
    )
    parser.add_argument("--db", help="a postgresql:// URL to use (default: a throwaway server of its own)")
    args = parser.parse_args(argv)
    try:
        results = run_feedback_check(
            Settings(),
            votes=args.votes,
            concurrency=args.concurrency,
            replicas=args.replicas,
            kill_after=args.kill_after,
            db_url=args.db,
        )
    except QaError as exc:
        print(f"feedback_check: error: {exc.message}", file=sys.stderr)
        return 1
    print(json.dumps(results, indent=2))
    return 0 if results["acknowledged"] == args.votes and results["acknowledged_missing"] == 0 else 1
