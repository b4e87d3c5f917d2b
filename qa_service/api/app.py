"""The HTTP API's app factory: settings in, a FastAPI app out. The only place FastAPI is assembled.

The model and index load in the lifespan, off the event loop; routes (``qa_service.api.routes``) are
thin and call the running service (``qa_service.answering.service``); every error has one shape
(``qa_service.api.errors``). Serve with ``qa-service serve`` (or ``uvicorn --factory
qa_service.api.app:create_app_from_env``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from qa_service import __version__
from qa_service.answering.service import ServiceState, in_own_thread, watch_index
from qa_service.api.errors import register_error_handlers
from qa_service.api.guards import Guards, TokenBuckets
from qa_service.api.metrics import MetricsMiddleware
from qa_service.api.routes import admin, faq, operations, questions
from qa_service.api.widget import add_web_routes
from qa_service.model.embedder import Embedder, embedder_from_settings
from qa_service.ops.metrics import Metrics
from qa_service.settings import Settings


def create_app(settings: Settings | None = None, *, embedder: Embedder | None = None) -> FastAPI:
    """Build the app. The model and index load in the lifespan, off the event loop."""
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = ServiceState(settings, embedder or embedder_from_settings(settings), metrics)
        app.state.service = state
        await in_own_thread(state.load)
        watcher = (
            asyncio.create_task(watch_index(state, settings.reload_poll_seconds))
            if settings.reload_poll_seconds > 0
            else None
        )
        yield
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        state.close()

    app = FastAPI(
        title="Clinic FAQ answering service",
        version=__version__,
        description="Matches patients' questions to curated FAQ answers, with their sources.",
        lifespan=lifespan,
    )
    register_error_handlers(app)
    buckets = (
        TokenBuckets(settings.rate_limit_per_minute, settings.rate_limit_burst)
        if settings.rate_limit_per_minute > 0
        else None
    )
    app.add_middleware(Guards, max_body_bytes=settings.max_body_bytes, buckets=buckets)
    if settings.cors_origins:  # browsers on these origins only (the widget), never "*"
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["content-type", "x-request-id"],
            max_age=600,
        )
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: counts what the guards refuse too

    app.include_router(questions.router(settings, metrics))
    app.include_router(faq.router())
    app.include_router(operations.router(metrics))
    app.include_router(admin.router(settings))
    add_web_routes(app, settings)  # the chat widget and its demo page
    _state_the_configured_limits(app, settings)
    return app


def _state_the_configured_limits(app: FastAPI, settings: Settings) -> None:
    """The OpenAPI schema gives the question's configured length limit (QA_MAX_QUESTION_CHARS), not
    the schema's hard cap, so that a generated client knows what the service accepts."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()  # made once and kept by FastAPI; setting the limit again changes nothing
        question = schema["components"]["schemas"]["AskRequest"]["properties"]["question"]
        question["maxLength"] = settings.max_question_chars
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory``: settings from the QA_* environment."""
    return create_app(Settings())
