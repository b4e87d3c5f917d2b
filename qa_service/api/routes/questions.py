"""Asking questions and telling whether an answer helped."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel

from qa_service.answering.context import told_together
from qa_service.answering.decision import urgent_decision
from qa_service.answering.engine import policy_from_settings
from qa_service.api.deps import EngineDep, StateDep
from qa_service.api.errors import GUARDED, error_responses
from qa_service.api.schemas import AskRequest, AskResponse, FeedbackRequest, FeedbackResponse
from qa_service.errors import InvalidQuestionError, NotFoundError, NotReadyError, StorageError
from qa_service.ops.metrics import Metrics
from qa_service.ops.privacy import scrub
from qa_service.settings import Settings

logger = logging.getLogger(__name__)


def _reply(model: BaseModel) -> Response:
    """A model already built and typed by us, serialised once by pydantic: FastAPI would validate it
    against the response model again and encode it through jsonable_encoder (the route's OpenAPI
    schema still comes from ``response_model``)."""
    return Response(model.model_dump_json(), media_type="application/json")


def router(settings: Settings, metrics: Metrics) -> APIRouter:
    routes = APIRouter(tags=["questions"])
    policy = policy_from_settings(settings)

    @routes.post("/v1/ask", response_model=AskResponse, responses=error_responses(*GUARDED, 422, 503))
    async def ask(body: AskRequest, state: StateDep) -> Response:
        """Answer a question from the curated FAQ (or decline, or ask to clarify); escalate emergencies."""
        for name, text in [
            ("question", body.question),
            *(("context question", t.question) for t in body.context or ()),
        ]:
            if len(text) > settings.max_question_chars:  # as sent: the schema's maxLength
                raise InvalidQuestionError(
                    f"{name} is {len(text)} characters long; the limit is {settings.max_question_chars}"
                )
        engine = state.engine
        if engine is None:  # red flags are answered even without an index: the message, then the conversation
            told = told_together(body.turns() or (), body.question)[1]
            rules = state.red_flags
            flag = (rules.check(body.question) or rules.check(told)) if rules is not None else None
            if flag is None:
                raise NotReadyError(f"the service is not ready: {state.not_ready_reason}")
            metrics.decisions.labels(status="urgent").inc()
            return _reply(AskResponse.from_decision(urgent_decision(flag, policy)))
        decision = await state.answer(engine, body.question, body.top_k or settings.default_top_k, body.turns())
        if settings.log_questions:
            logger.info("question %r -> %s", scrub(body.question), decision.status)
        state.record_unanswered(body.question, decision)  # queued; written off the request path
        metrics.decisions.labels(status=decision.status).inc()
        return _reply(AskResponse.from_decision(decision))

    @routes.post(
        "/v1/feedback",
        status_code=201,
        response_model=FeedbackResponse,
        responses=error_responses(404, *GUARDED, 422, 503),
    )
    def feedback(body: FeedbackRequest, state: StateDep, engine: EngineDep) -> FeedbackResponse:
        """Record whether an answer helped (the question and reason are scrubbed of identifiers)."""
        if engine.index.entry(body.answer_id) is None:
            raise NotFoundError(f"no FAQ entry with id {body.answer_id!r}")
        if state.store is None:
            raise StorageError(f"feedback cannot be stored: {state.store_error}")
        state.store.add_feedback(body.answer_id, body.helpful, body.reason, body.question)
        return FeedbackResponse()

    return routes
