"""One error shape for every failure, and the statuses each operation documents in the OpenAPI schema.

Domain errors (``qa_service.errors``) map to HTTP statuses here, in one place; FastAPI's and
Starlette's own errors are rewritten into the same shape.
"""

from __future__ import annotations

import logging
import re
from pathlib import PurePosixPath
from typing import Any, overload

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from qa_service.api.schemas import ErrorResponse
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

logger = logging.getLogger(__name__)

STATUS_FOR_ERROR: dict[type[QaError], int] = {
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
CODE_FOR_STATUS = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    503: "not_ready",
}
_DESCRIPTIONS = {
    401: "The admin key is missing or wrong.",
    403: "Admin endpoints are disabled (no QA_ADMIN_API_KEY).",
    404: "No such FAQ entry.",
    409: "The newest build was refused; the previous one keeps serving.",
    413: "The body is over QA_MAX_BODY_BYTES.",
    415: "The body is not application/json.",
    422: "The request is invalid (malformed JSON, unknown or missing fields, wrong types, limits).",
    429: "Too many requests from this client; see Retry-After.",
    503: "No index is loaded yet, or the feedback store is unavailable.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, each with the one error body."""
    return {status: {"model": ErrorResponse, "description": _DESCRIPTIONS[status]} for status in statuses}


# Guards (qa_service.api.guards) refuse these before a JSON endpoint's route runs.
GUARDED = (413, 415, 429)

# what FastAPI's 400 says when the body cannot even be decoded (invalid UTF-8, JSON nested too deeply)
_UNPARSEABLE_BODY = "There was an error parsing the body"


def error(status: int, code: str, message: str, details: list[dict[str, Any]] | None = None) -> JSONResponse:
    body = ErrorResponse.of(code, message, details)
    return JSONResponse(status_code=status, content=body.model_dump(mode="json"))


# An absolute path in a message (up to a space, quote, bracket or separator; a trailing ":" or "." is
# the sentence's, not the path's).
_ABSOLUTE_PATH = re.compile(r"(?<![\w/.])/[^\s'\"(),;]+")


@overload
def without_server_paths(message: str) -> str: ...
@overload
def without_server_paths(message: None) -> None: ...
def without_server_paths(message: str | None) -> str | None:
    """``message`` with every absolute path shortened to what an operator needs and a client may see:
    from the index folder's ``builds/`` on (``builds/<id>/vectors.faiss``), else the last name. The
    logs keep the full paths; replies never show the server's folders."""
    if message is None:
        return None

    def shorten(match: re.Match[str]) -> str:
        path = match.group(0)
        end = path.rstrip(":.")
        parts = PurePosixPath(end).parts
        kept = parts[parts.index("builds") :] if "builds" in parts else parts[-1:]
        return "/".join(kept) + path[len(end) :]

    return _ABSOLUTE_PATH.sub(shorten, message)


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(part) for part in loc if part != "body"]
    return ".".join(parts) or "body"


def register_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(QaError)
    async def _domain_error(request: Request, exc: QaError) -> JSONResponse:
        status = next((code for kind, code in STATUS_FOR_ERROR.items() if isinstance(exc, kind)), 400)
        return error(status, exc.code, without_server_paths(exc.message))

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
        return error(422, "invalid_request", summary, details)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == _UNPARSEABLE_BODY:  # bytes that are not UTF-8, say
            message = "request body is not valid JSON (JSON in UTF-8 text)"
            return error(422, "invalid_request", f"body: {message}", [{"location": "body", "message": message}])
        code = CODE_FOR_STATUS.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path}"
        response = error(exc.status_code, code, message)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return error(500, "internal_error", "internal server error")
