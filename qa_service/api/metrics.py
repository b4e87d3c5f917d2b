"""Counting every HTTP request (route template, method, status, time) into the service's Prometheus metrics."""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from typing import Any

from qa_service.api.guards import ASGIApp, Message, Receive, Send
from qa_service.ops.metrics import Metrics


class MetricsMiddleware:
    """Counts every HTTP request by its route template (not the raw path: ids stay out of labels)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                # the server's own time, for clients and benchmarks (W3C Server-Timing)
                elapsed = (time.perf_counter() - started) * 1000
                timing = (b"server-timing", f"app;dur={elapsed:.3f}".encode())
                message["headers"] = [*message.get("headers", ()), timing]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.labels(method=scope.get("method", ""), route=route, status=str(status)).inc()
            self.metrics.latency.labels(route=route).observe(time.perf_counter() - started)
