"""What routes receive: the running service's state and its engine, as ``Annotated`` dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from qa_service.answering.engine import Engine
from qa_service.answering.service import ServiceState
from qa_service.errors import NotReadyError


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
