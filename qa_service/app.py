"""The HTTP API: an app factory, thin routes, one error shape. The only module that imports FastAPI.

Serve with ``qa-service serve`` (or ``uvicorn --factory qa_service.app:create_app_from_env``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import threading
import weakref
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from qa_service import __version__
from qa_service.answering import Decision, urgent_decision
from qa_service.batching import AnswerCache, MicroBatcher
from qa_service.embedder import Embedder
from qa_service.engine import Engine, embedder_from_settings, load_engine, policy_from_settings, red_flags_from_settings
from qa_service.errors import (
    AdminDisabledError,
    IndexUnavailableError,
    InvalidQuestionError,
    ModelLoadError,
    NotFoundError,
    NotReadyError,
    QaError,
    ReloadError,
    StorageError,
    UnauthorizedError,
)
from qa_service.guards import Guards, TokenBuckets
from qa_service.index import current_build_id, set_search_threads
from qa_service.memory import HeapTrimmer, settle_heap
from qa_service.metrics import CONTENT_TYPE_LATEST, Metrics, MetricsMiddleware
from qa_service.privacy import scrub
from qa_service.redflags import RedFlagRules
from qa_service.schemas import (
    AskRequest,
    AskResponse,
    ErrorResponse,
    FaqDetail,
    FaqPage,
    FaqSummary,
    FeedbackRequest,
    FeedbackResponse,
    HealthResponse,
    IndexSummary,
    ReadyResponse,
    ReloadResponse,
)
from qa_service.settings import Settings
from qa_service.storage import FeedbackStore, SQLiteFeedbackStore, UnansweredRecorder
from qa_service.web import add_web_routes

logger = logging.getLogger(__name__)
T = TypeVar("T")

# faiss threads for the batcher's searches. One: a search of a batch takes microseconds to a few
# milliseconds, and a second OpenMP pool spinning beside torch's on two cores slowed it down (see
# BENCHMARKS.md); the other core is better left to the event loop.
SERVICE_SEARCH_THREADS = 1

_STATUS_FOR_ERROR: dict[type[QaError], int] = {
    NotFoundError: 404,
    InvalidQuestionError: 422,
    NotReadyError: 503,
    IndexUnavailableError: 503,
    ModelLoadError: 503,
    StorageError: 503,
    UnauthorizedError: 401,
    AdminDisabledError: 403,
    ReloadError: 409,
}
_CODE_FOR_STATUS = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    503: "not_ready",
}
_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": code.replace("_", " ")}
    for status, code in _CODE_FOR_STATUS.items()
    if status in (404, 422, 503)
}


class ServiceState:
    """What the running service holds: the engine once loaded, or why it is not ready."""

    def __init__(self, settings: Settings, embedder: Embedder, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.embedder = embedder
        self.metrics = metrics or Metrics()
        self.engine: Engine | None = None
        self.red_flags: RedFlagRules | None = None
        self.not_ready_reason: str | None = "starting"
        self.store: FeedbackStore | None = None
        self.recorder: UnansweredRecorder | None = None
        self.store_error: str | None = None
        self.reload_error: str | None = None
        self.refused_build: str | None = None  # the last build id refused, not retried by the watcher
        self._reload_lock = threading.Lock()
        self.cache = AnswerCache(settings.cache_size)
        self.batcher = MicroBatcher(
            max_batch=settings.batch_max,
            window=settings.batch_window_ms / 1000,
            on_batch=self.metrics.batch_size.observe,
            after_batch=HeapTrimmer().maybe_trim,  # keeps resident memory flat under load
            on_start=lambda: set_search_threads(SERVICE_SEARCH_THREADS),
        )

    async def answer(self, engine: Engine, question: str, top_k: int) -> Decision:
        """The decision for one question: from the cache, or batched with others asked meanwhile."""
        text = engine.answerer.clean(question)  # an invalid question fails here, never in a batch
        # the cleaned text: questions that differ only in Unicode form, invisible characters or
        # spacing share an entry
        key = (engine.index.manifest.build_id, text, top_k)
        cached = self.cache.get(key)
        self.metrics.cache.labels(result="miss" if cached is None else "hit").inc()
        if cached is not None:
            return cached
        decision = await asyncio.wrap_future(self.batcher.submit(engine.answerer, text, top_k))
        self.cache.put(key, decision)
        return decision

    def reload(self) -> bool:
        """Serve the build CURRENT names now, if it is new: load it fully, then swap.

        Requests in flight finish on the engine they started with; a build that fails to load is
        refused (ReloadError) and the previous engine keeps serving. Returns whether it swapped."""
        with self._reload_lock:
            try:
                build_id = current_build_id(self.settings.index_dir)
                if self.engine is not None and build_id == self.engine.index.manifest.build_id:
                    self.reload_error = self.refused_build = None  # e.g. rolled back to the build being served
                    return False
                red_flags = red_flags_from_settings(self.settings)
                engine = load_engine(self.settings, self.embedder, red_flags)
            except QaError as exc:
                self.metrics.reloads.labels(result="failure").inc()
                self.reload_error = exc.message
                self.refused_build = _pointer(self.settings.index_dir)
                logger.error("new index refused, the previous one keeps serving: %s", exc.message)
                raise ReloadError(f"new index refused, the previous one keeps serving: {exc.message}") from None
            self.red_flags, self.engine = red_flags, engine
            self.cache.clear()  # keyed by build, so never stale; cleared to free the old build's entries
            self.not_ready_reason = self.reload_error = self.refused_build = None
            self.metrics.reloads.labels(result="success").inc()
            self._report_serving()
            logger.info("now serving index build %s", engine.index.manifest.build_id)
            return True

    def _report_serving(self) -> None:
        if self.engine is not None:
            manifest = self.engine.index.manifest
            self.metrics.serving(manifest.build_id, manifest.model, manifest.entry_count)

    def published_build_changed(self) -> bool:
        """Whether CURRENT names a build other than the one served (and not one already refused)."""
        pointer = _pointer(self.settings.index_dir)
        served = self.engine.index.manifest.build_id if self.engine is not None else None
        return pointer is not None and pointer != served and pointer != self.refused_build

    def load(self) -> None:
        try:
            # the emergency rules load first and on their own: red flags are answered even while the
            # index is unavailable, and nothing is answered without them
            self.red_flags = red_flags_from_settings(self.settings)
            self.engine = load_engine(self.settings, self.embedder, self.red_flags)
            self.not_ready_reason = None
            self._report_serving()
            settle_heap()
        except QaError as exc:
            self.engine = None
            self.not_ready_reason = exc.message
            logger.error("not ready: %s", exc.message)
        try:
            self.store = SQLiteFeedbackStore(self.settings.feedback_db, retention_days=self.settings.retention_days)
            self.recorder = UnansweredRecorder(self.store)
        except StorageError as exc:  # answering goes on; feedback and recording report the problem
            self.store_error = exc.message
            logger.error("feedback storage unavailable: %s", exc.message)

    def close(self) -> None:
        self.batcher.close()
        if self.recorder is not None:
            self.recorder.close()  # what is queued is written before the store closes
        if self.store is not None:
            self.store.close()

    def record_unanswered(self, question: str, decision: Decision) -> None:
        """Queue a no_answer or clarify question for review when QA_RECORD_UNANSWERED is on (written
        by the recorder's thread, after the reply)."""
        if not self.settings.record_unanswered or decision.status not in ("no_answer", "clarify"):
            return
        if self.recorder is None:
            logger.warning("unanswered question not recorded: %s", self.store_error)
            return
        status: Literal["no_answer", "clarify"] = "clarify" if decision.status == "clarify" else "no_answer"
        self.recorder.record(question, status, [c.entry.id for c in decision.alternatives])


def _replaced_parts(old: Engine | None, new: Engine) -> list[weakref.ref[object]]:
    """Weak references to the parts of ``old`` that ``new`` does not share (its index; its model,
    when the new build brings another)."""
    if old is None:
        return []
    return [weakref.ref(part) for part in (old.index, old.embedder) if part not in (new.index, new.embedder)]


# what FastAPI's 400 says when the body cannot even be decoded (invalid UTF-8, JSON nested too deeply)
_UNPARSEABLE_BODY = "There was an error parsing the body"


def _pointer(index_dir: Path) -> str | None:
    try:
        return current_build_id(index_dir)
    except QaError:
        return None


async def in_own_thread(function: Callable[[], T]) -> T:
    """``function()`` on a new thread that ends with it, awaited without blocking the event loop.

    For loading an engine: loading the model runs torch's OpenMP code, and a thread that has done so
    keeps an OpenMP team (and its helper threads) for as long as it lives. A pool thread lives on;
    with its team beside the batcher's on two cores, libgomp stops spinning between parallel regions
    and every encoder call got ~2x slower (measured: 5.4 -> 11.5 ms per question)."""
    result: Future[T] = Future()

    def run() -> None:
        try:
            result.set_result(function())
        except BaseException as exc:  # delivered to the awaiting coroutine
            result.set_exception(exc)

    threading.Thread(target=run, name="qa-loader", daemon=True).start()
    return await asyncio.wrap_future(result)


async def _watch_index(state: ServiceState, every: float) -> None:
    """Pick up newly published builds: poll CURRENT (a tiny file) and reload off the event loop."""
    while True:
        await asyncio.sleep(every)
        try:
            if state.published_build_changed():
                with contextlib.suppress(ReloadError):  # logged, and reported by /readyz
                    await in_own_thread(state.reload)
        except Exception:  # a watcher that ends would leave the service on its old build for good
            logger.exception("checking for a new index build failed; trying again in %.1f s", every)


# Coroutines although they never wait: FastAPI runs a plain-function dependency in its thread pool,
# a thread hop (and two GIL hand-offs) per request for an attribute lookup.
async def _state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


async def _engine(state: Annotated[ServiceState, Depends(_state)]) -> Engine:
    if state.engine is None:
        raise NotReadyError(f"the service is not ready: {state.not_ready_reason}")
    return state.engine


StateDep = Annotated[ServiceState, Depends(_state)]
EngineDep = Annotated[Engine, Depends(_engine)]


def _error(status: int, code: str, message: str, details: list[dict[str, Any]] | None = None) -> JSONResponse:
    body = ErrorResponse.of(code, message, details)
    return JSONResponse(status_code=status, content=body.model_dump(mode="json"))


def _reply(model: BaseModel) -> Response:
    """A model already built and typed by us, serialised once by pydantic: FastAPI would validate it
    against the response model again and encode it through jsonable_encoder (the route's OpenAPI
    schema still comes from ``response_model``)."""
    return Response(model.model_dump_json(), media_type="application/json")


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(part) for part in loc if part != "body"]
    return ".".join(parts) or "body"


def _register_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(QaError)
    async def _domain_error(request: Request, exc: QaError) -> JSONResponse:
        status = next((code for kind, code in _STATUS_FOR_ERROR.items() if isinstance(exc, kind)), 400)
        return _error(status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = []
        for err in exc.errors():
            message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            location = _location(tuple(err.get("loc", ())))
            if err.get("type") == "json_invalid":  # its location is a character offset: say "body"
                message, location = "request body is not valid JSON", "body"
            elif err.get("type") == "extra_forbidden":
                message = "unknown field"
            details.append({"location": location, "message": message})
        summary = "; ".join(f"{d['location']}: {d['message']}" for d in details) or "invalid request"
        return _error(422, "invalid_request", summary, details)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == _UNPARSEABLE_BODY:  # bytes that are not UTF-8, say
            message = "request body is not valid JSON (JSON in UTF-8 text)"
            return _error(422, "invalid_request", f"body: {message}", [{"location": "body", "message": message}])
        code = _CODE_FOR_STATUS.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path}"
        response = _error(exc.status_code, code, message)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(500, "internal_error", "internal server error")


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
            asyncio.create_task(_watch_index(state, settings.reload_poll_seconds))
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
    _register_error_handlers(app)
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

    policy = policy_from_settings(settings)

    @app.post("/v1/ask", response_model=AskResponse, responses=_ERROR_RESPONSES, tags=["questions"])
    async def ask(body: AskRequest, state: StateDep) -> Response:
        """Answer a question from the curated FAQ (or decline, or ask to clarify); escalate emergencies."""
        engine = state.engine
        if engine is None:
            flag = state.red_flags.check(body.question) if state.red_flags is not None else None
            if flag is None:
                raise NotReadyError(f"the service is not ready: {state.not_ready_reason}")
            metrics.decisions.labels(status="urgent").inc()
            return _reply(AskResponse.from_decision(urgent_decision(flag, policy)))
        decision = await state.answer(engine, body.question, body.top_k or settings.default_top_k)
        if settings.log_questions:
            logger.info("question %r -> %s", scrub(body.question), decision.status)
        state.record_unanswered(body.question, decision)  # queued; written off the request path
        metrics.decisions.labels(status=decision.status).inc()
        return _reply(AskResponse.from_decision(decision))

    @app.post(
        "/v1/feedback", status_code=201, response_model=FeedbackResponse, responses=_ERROR_RESPONSES, tags=["questions"]
    )
    def feedback(body: FeedbackRequest, state: StateDep, engine: EngineDep) -> FeedbackResponse:
        """Record whether an answer helped (the question and reason are scrubbed of identifiers)."""
        if engine.index.entry(body.answer_id) is None:
            raise NotFoundError(f"no FAQ entry with id {body.answer_id!r}")
        if state.store is None:
            raise StorageError(f"feedback cannot be stored: {state.store_error}")
        state.store.add_feedback(body.answer_id, body.helpful, body.reason, body.question)
        return FeedbackResponse()

    @app.get("/v1/faq", response_model=FaqPage, responses=_ERROR_RESPONSES, tags=["faq"])
    def list_faq(
        engine: EngineDep,
        offset: Annotated[int, Query(ge=0, description="Entries to skip.")] = 0,
        limit: Annotated[int, Query(ge=1, le=1000, description="Entries to return.")] = 100,
    ) -> FaqPage:
        """The entries being served, in corpus order."""
        entries = engine.index.entries
        items = [
            FaqSummary(id=e.id, question=e.question, alternates=list(e.alternates), flags=list(e.flags))
            for e in entries[offset : offset + limit]
        ]
        return FaqPage(total=len(entries), offset=offset, limit=limit, items=items)

    @app.get("/v1/faq/{entry_id}", response_model=FaqDetail, responses=_ERROR_RESPONSES, tags=["faq"])
    def get_faq(entry_id: str, engine: EngineDep) -> FaqDetail:
        """One entry with its answer and source."""
        entry = engine.index.entry(entry_id)
        if entry is None:
            raise NotFoundError(f"no FAQ entry with id {entry_id!r}")
        return FaqDetail.from_entry(entry)

    @app.get("/healthz", response_model=HealthResponse, tags=["operations"])
    def healthz() -> HealthResponse:
        """Liveness: the process is up."""
        return HealthResponse()

    @app.get("/readyz", response_model=ReadyResponse, responses=_ERROR_RESPONSES, tags=["operations"])
    def readyz(engine: EngineDep, state: StateDep) -> ReadyResponse:
        """Readiness: an index is loaded; reports its manifest summary (and a refused newer one)."""
        return ReadyResponse(
            index=IndexSummary.from_manifest(engine.index.manifest), last_reload_error=state.reload_error
        )

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        """Prometheus metrics (text exposition format)."""
        return Response(content=metrics.render(), media_type=CONTENT_TYPE_LATEST)

    def require_admin(authorization: Annotated[str | None, Header()] = None) -> None:
        key = settings.admin_api_key.get_secret_value() if settings.admin_api_key is not None else ""
        if not key:
            raise AdminDisabledError("admin endpoints are disabled: set QA_ADMIN_API_KEY to enable them")
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), key.encode()):
            raise UnauthorizedError("admin endpoints need 'Authorization: Bearer <QA_ADMIN_API_KEY>'")

    @app.post(
        "/v1/admin/reload",
        response_model=ReloadResponse,
        responses={**_ERROR_RESPONSES, **{code: {"model": ErrorResponse} for code in (401, 403, 409)}},
        tags=["admin"],
        dependencies=[Depends(require_admin)],
    )
    async def reload(state: StateDep) -> ReloadResponse:
        """Serve the newest published index now (also picked up automatically, see QA_RELOAD_POLL_SECONDS)."""
        swapped = await in_own_thread(state.reload)
        assert state.engine is not None  # reload() raised otherwise
        return ReloadResponse(reloaded=swapped, index=IndexSummary.from_manifest(state.engine.index.manifest))

    add_web_routes(app, settings)  # the chat widget and its demo page
    return app


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory``: settings from the QA_* environment."""
    return create_app(Settings())
