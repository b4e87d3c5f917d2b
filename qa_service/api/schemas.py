"""Typed request and response bodies of the public API (pydantic only; the CLI prints the same JSON)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator

from qa_service.answering.context import MAX_TURNS, Turn
from qa_service.answering.decision import Candidate, Decision, Status
from qa_service.corpus.entries import FaqEntry, Source
from qa_service.index.store import IndexManifest

# The hard ceiling of the schema; the configured limit (QA_MAX_QUESTION_CHARS) is checked by the core.
QUESTION_SCHEMA_MAX = 20000


def _whole(value: Any) -> Any:
    """JSON Schema counts 20.0 as the integer 20; strings and fractions stay errors."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


TopK = Annotated[StrictInt, Field(ge=1, le=20), BeforeValidator(_whole)]


class TurnIn(BaseModel):
    """An earlier turn of the conversation, as the widget keeps it: nothing is stored on the server."""

    model_config = ConfigDict(extra="forbid")

    question: StrictStr = Field(
        ..., min_length=1, max_length=QUESTION_SCHEMA_MAX, description="What the patient asked in that turn."
    )
    answer_id: StrictStr | None = Field(
        None, min_length=1, max_length=160, description="Id of the entry that answered it (null if none did)."
    )


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: StrictStr = Field(
        ...,
        min_length=1,
        max_length=QUESTION_SCHEMA_MAX,
        description="The patient's question, free text.",
        examples=["How long will my back spasm last?"],
    )
    top_k: TopK | None = Field(None, description="How many alternatives to return at most (default: QA_DEFAULT_TOP_K).")
    context: list[TurnIn] | None = Field(
        None,
        max_length=MAX_TURNS,
        description=(
            f"The conversation's previous turns, oldest first (at most {MAX_TURNS}), so that a follow-up such as "
            "'how long does it last?' is read with the topic before it. Used only when the message needs it; "
            "never stored."
        ),
        examples=[[{"question": "What is a back spasm?", "answer_id": "what-is-a-spasm-in-the-back"}]],
    )

    def turns(self) -> tuple[Turn, ...] | None:
        return tuple(Turn(turn.question, turn.answer_id) for turn in self.context) if self.context else None

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("question is empty or only whitespace")
        return value


class SourceOut(BaseModel):
    title: str | None = None
    publisher: str | None = None
    url: str | None = None
    author: str | None = None
    published: str | None = None
    updated: str | None = None
    section: str | None = None
    quotes: list[str] = Field(default_factory=list)

    @classmethod
    def from_source(cls, source: Source) -> SourceOut:
        return cls.model_validate(source.model_dump(exclude={"file"}))


class AnswerOut(BaseModel):
    id: str
    question: str
    answer: str = Field(description="Curated answer text, word for word; lists are lines starting '- ' or 'N. '.")
    score: float = Field(
        description="Calibrated confidence (0-1) that this entry answers the question; see README 'Confidence'."
    )
    source: SourceOut
    flags: list[str] = Field(default_factory=list, description="Review flags, e.g. 'truncated'.")


class AlternativeOut(BaseModel):
    id: str
    question: str
    score: float = Field(description="Calibrated confidence (0-1) that this entry is the one meant.")


class RedFlagOut(BaseModel):
    rule: str = Field(description="Id of the red-flag rule that fired (see the rules file).")
    description: str = Field(description="What the rule looks for, for staff and logs.")


class AskResponse(BaseModel):
    status: Status
    answer: AnswerOut | None
    alternatives: list[AlternativeOut]
    message: str
    red_flag: RedFlagOut | None = Field(None, description="Set when status is 'urgent': why the message was escalated.")
    note: str | None = Field(
        None, description="A note to show with the reply, e.g. to ask a clinician about one's own diagnosis or dose."
    )
    disclaimer: str = Field("", description="Shown with every reply (QA_DISCLAIMER).")
    context: str | None = Field(
        None,
        description=(
            "Set when the message was read together with the conversation's earlier turn: the question it was "
            "read with (show it as 'answering about: ...'). Null when the message was answered on its own."
        ),
    )

    @classmethod
    def from_decision(cls, decision: Decision) -> AskResponse:
        answer = None
        if decision.answer is not None:
            entry = decision.answer.entry
            answer = AnswerOut(
                id=entry.id,
                question=entry.question,
                answer=entry.answer,
                score=_round(decision.answer),
                source=SourceOut.from_source(entry.source),
                flags=list(entry.flags),
            )
        return cls(
            status=decision.status,
            answer=answer,
            alternatives=[
                AlternativeOut(id=c.entry.id, question=c.entry.question, score=_round(c)) for c in decision.alternatives
            ],
            message=decision.message,
            red_flag=(
                RedFlagOut(rule=decision.red_flag.rule, description=decision.red_flag.description)
                if decision.red_flag is not None
                else None
            ),
            note=decision.note,
            disclaimer=decision.disclaimer,
            context=decision.context,
        )


def _round(candidate: Candidate) -> float:
    return round(candidate.confidence if candidate.confidence is not None else candidate.score, 4)


class FaqSummary(BaseModel):
    id: str
    question: str
    alternates: list[str]
    flags: list[str]


class FaqPage(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[FaqSummary]


class FaqDetail(BaseModel):
    id: str
    question: str
    alternates: list[str]
    answer: str
    source: SourceOut
    flags: list[str]
    duplicates: list[str]

    @classmethod
    def from_entry(cls, entry: FaqEntry) -> FaqDetail:
        return cls(
            id=entry.id,
            question=entry.question,
            alternates=list(entry.alternates),
            answer=entry.answer,
            source=SourceOut.from_source(entry.source),
            flags=list(entry.flags),
            duplicates=list(entry.duplicates),
        )


class IndexSummary(BaseModel):
    build_id: str
    model: str
    dimension: int
    entry_count: int
    corpus_hash: str
    built_at: str

    @classmethod
    def from_manifest(cls, manifest: IndexManifest) -> IndexSummary:
        return cls.model_validate(manifest.summary())


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer_id: StrictStr = Field(..., min_length=1, max_length=160, description="Id of the answer being rated.")
    helpful: StrictBool = Field(..., description="Whether the answer helped.")
    reason: StrictStr | None = Field(None, max_length=1000, description="Optional free-text reason (scrubbed).")
    question: StrictStr | None = Field(
        None, max_length=QUESTION_SCHEMA_MAX, description="The question that was asked (scrubbed before storing)."
    )


class FeedbackResponse(BaseModel):
    recorded: Literal[True] = True


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"


class ReadyResponse(BaseModel):
    status: Literal["ready"] = "ready"
    index: IndexSummary
    last_reload_error: str | None = Field(
        None, description="Why the newest published index was refused (the index above keeps serving)."
    )
    published_build: str | None = Field(
        None,
        description="The build the index folder's CURRENT names. Equal to index.build_id once this "
        "process serves it: compare across replicas to see when all have switched.",
    )
    fallback: str | None = Field(
        None,
        description="Set when the process started while the published build could not be loaded and "
        "serves the newest earlier build that loads instead (null otherwise).",
    )


class ReloadResponse(BaseModel):
    reloaded: bool = Field(description="False when the published index was already being served.")
    index: IndexSummary


class ErrorDetail(BaseModel):
    location: str
    message: str


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable error name, e.g. invalid_request, not_found.")
    message: str = Field(description="What went wrong, for people.")
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    """The one error shape of every endpoint."""

    error: ErrorBody

    @classmethod
    def of(cls, code: str, message: str, details: list[dict[str, Any]] | None = None) -> ErrorResponse:
        return cls(error=ErrorBody(code=code, message=message, details=[ErrorDetail(**d) for d in details or []]))
