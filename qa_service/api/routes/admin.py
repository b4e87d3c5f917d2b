"""Admin endpoints, behind ``Authorization: Bearer <QA_ADMIN_API_KEY>`` (compared in constant time)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Header

from qa_service.answering.service import in_own_thread
from qa_service.api.deps import StateDep
from qa_service.api.errors import error_responses
from qa_service.api.schemas import IndexSummary, ReloadResponse
from qa_service.errors import AdminDisabledError, UnauthorizedError
from qa_service.settings import Settings


def router(settings: Settings) -> APIRouter:
    def require_admin(authorization: Annotated[str | None, Header()] = None) -> None:
        key = settings.admin_api_key.get_secret_value() if settings.admin_api_key is not None else ""
        if not key:
            raise AdminDisabledError("admin endpoints are disabled: set QA_ADMIN_API_KEY to enable them")
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), key.encode()):
            raise UnauthorizedError("admin endpoints need 'Authorization: Bearer <QA_ADMIN_API_KEY>'")

    routes = APIRouter(tags=["admin"], dependencies=[Depends(require_admin)])

    @routes.post("/v1/admin/reload", response_model=ReloadResponse, responses=error_responses(401, 403, 409, 422))
    async def reload(state: StateDep) -> ReloadResponse:
        """Serve the newest published index now (also picked up automatically, see QA_RELOAD_POLL_SECONDS)."""
        swapped = await in_own_thread(state.reload)
        assert state.engine is not None  # reload() raised otherwise
        return ReloadResponse(reloaded=swapped, index=IndexSummary.from_manifest(state.engine.index.manifest))

    return routes
