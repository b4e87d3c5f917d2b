"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from qa_service.api.deps import EngineDep, StateDep
from qa_service.api.errors import error_responses, without_server_paths
from qa_service.api.schemas import HealthResponse, IndexSummary, ReadyResponse
from qa_service.ops.metrics import CONTENT_TYPE_LATEST, Metrics


def router(metrics: Metrics) -> APIRouter:
    routes = APIRouter(tags=["operations"])

    @routes.get("/healthz", response_model=HealthResponse)
    def healthz() -> HealthResponse:
        """Liveness: the process is up."""
        return HealthResponse()

    @routes.get("/readyz", response_model=ReadyResponse, responses=error_responses(503))
    def readyz(engine: EngineDep, state: StateDep) -> ReadyResponse:
        """Readiness: an index is loaded; reports its manifest summary, the build CURRENT names, and
        why a newer one was refused or an earlier one serves."""
        return ReadyResponse(
            index=IndexSummary.from_manifest(engine.index.manifest),
            last_reload_error=without_server_paths(state.reload_error),
            published_build=state.published_build(),
            fallback=state.fallback,
        )

    @routes.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        """Prometheus metrics (text exposition format)."""
        return Response(content=metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return routes
