"""Prometheus metrics of one app: requests and latency by route, decisions by status, the index
being served, and reloads. One registry per app (tests build many apps in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "qa_requests", "HTTP requests by route and status", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "qa_request_seconds", "HTTP request latency", ["route"], buckets=LATENCY_BUCKETS, registry=self.registry
        )
        self.decisions = Counter("qa_decisions", "Replies to questions by status", ["status"], registry=self.registry)
        self.index_entries = Gauge("qa_index_entries", "Entries in the index being served", registry=self.registry)
        self.index_info = Gauge(
            "qa_index_info", "The index build being served (value 1)", ["build_id", "model"], registry=self.registry
        )
        self.index_fallback = Gauge(
            "qa_index_fallback",
            "1 while an earlier build serves because the published one (CURRENT) could not be loaded at start-up",
            registry=self.registry,
        )
        self.reloads = Counter("qa_index_reloads", "Index reloads by result", ["result"], registry=self.registry)
        self.cache = Counter(
            "qa_answer_cache", "Questions looked up in the answer cache by result", ["result"], registry=self.registry
        )
        self.batch_size = Histogram(
            "qa_batch_questions",
            "Questions answered per encoder call",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=self.registry,
        )
        for result in ("hit", "miss"):
            self.cache.labels(result=result)
        for result in ("success", "failure"):
            self.reloads.labels(result=result)

    def serving(self, build_id: str, model: str, entries: int, *, fallback: bool = False) -> None:
        self.index_info.clear()
        self.index_info.labels(build_id=build_id, model=model).set(1)
        self.index_entries.set(entries)
        self.index_fallback.set(int(fallback))

    def render(self) -> bytes:
        return generate_latest(self.registry)
