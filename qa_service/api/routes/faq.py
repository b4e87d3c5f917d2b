"""Reading the FAQ being served."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from qa_service.api.deps import EngineDep
from qa_service.api.errors import error_responses
from qa_service.api.schemas import FaqDetail, FaqPage, FaqSummary
from qa_service.errors import NotFoundError


def router() -> APIRouter:
    routes = APIRouter(tags=["faq"])

    @routes.get("/v1/faq", response_model=FaqPage, responses=error_responses(422, 503))
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

    @routes.get("/v1/faq/{entry_id}", response_model=FaqDetail, responses=error_responses(404, 422, 503))
    def get_faq(entry_id: str, engine: EngineDep) -> FaqDetail:
        """One entry with its answer and source."""
        entry = engine.index.entry(entry_id)
        if entry is None:
            raise NotFoundError(f"no FAQ entry with id {entry_id!r}")
        return FaqDetail.from_entry(entry)

    return routes
