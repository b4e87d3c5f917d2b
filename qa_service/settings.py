"""Service settings: one class, read from ``QA_*`` environment variables (or a ``.env`` file).

Settings are created in entry points (the CLI, the ``serve`` command) and passed down; nothing
here runs at import time. Every field is documented in the README (a test checks that).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


class Settings(BaseSettings):
    """Everything an operator can configure. Environment variables use the ``QA_`` prefix."""

    model_config = SettingsConfigDict(
        env_prefix="QA_", env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    corpus_dir: Path = Field(Path("corpus"), description="Folder of curated corpus files (*.yaml).")
    index_dir: Path = Field(Path("index"), description="Folder holding index builds and the CURRENT pointer.")
    model: str = Field(
        DEFAULT_MODEL,
        description="Sentence-transformers model name or local path used to embed questions.",
    )
    device: str = Field("cpu", description="Torch device for the embedding model.")
    torch_threads: int = Field(0, ge=0, description="Torch CPU threads (0 = torch's default).")
    encode_batch_size: int = Field(64, ge=1, le=4096, description="Batch size when embedding at build time.")

    answer_threshold: float = Field(
        0.55,
        ge=-1.0,
        le=1.0,
        description="Minimum similarity of the best entry for an answer; below it the reply is no_answer.",
    )
    clarify_margin: float = Field(
        0.03,
        ge=0.0,
        le=1.0,
        description="When a second distinct entry scores within this margin of the best, reply clarify.",
    )
    default_top_k: int = Field(3, ge=1, le=20, description="Alternatives returned when a request omits top_k.")
    max_question_chars: int = Field(1000, ge=10, le=20000, description="Longest question accepted (characters).")
    exclude_flags: list[str] = Field(
        default_factory=lambda: ["advert"],
        description="Entries carrying any of these review flags are left out of the index.",
    )
    keep_builds: int = Field(3, ge=1, le=50, description="Index builds kept on disk for rollback.")

    fallback_message: str = Field(
        "Sorry, I could not find an answer to that in our FAQ. Please contact the clinic and our staff will help you.",
        description="Message of a no_answer reply.",
    )
    clarify_message: str = Field(
        "I found more than one possible answer. Did you mean one of these?",
        description="Message of a clarify reply.",
    )
    answered_message: str = Field(
        "Here is the answer from our clinic's FAQ.", description="Message of an answered reply."
    )
    urgent_message: str = Field(
        "Your message may describe a medical emergency. Call your local emergency number now (911 in the US, "
        "112 in Europe) or go to the nearest emergency department. Do not wait for an online answer.",
        description="Message of an urgent reply.",
    )

    host: str = Field("127.0.0.1", description="Address `qa-service serve` binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port `qa-service serve` listens on.")
    log_level: str = Field("INFO", description="Logging level of the CLI and the server.")

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}; use DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level
