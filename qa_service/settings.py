"""Service settings: one class, read from ``QA_*`` environment variables (or a ``.env`` file).

Settings are created in entry points (the CLI, the ``serve`` command) and passed down; nothing
here runs at import time. Every field is documented in the README (a test checks that).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from qa_service.corpus.entries import Flag

CoverageIntent = Literal["cost", "insurance", "referral", "booking", "population"]

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def _default_exclusions() -> list[Flag]:
    return ["advert"]


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
    encoder_precision: Literal["float32", "bfloat16", "auto"] = Field(
        "float32",
        description="Arithmetic of the encoder's linear layers: bfloat16 is faster in batches on CPUs that have it "
        "natively (AVX512-BF16/AMX) and moves scores by ~1e-5; auto = bfloat16 where the CPU has it.",
    )
    encode_batch_size: int = Field(64, ge=1, le=4096, description="Batch size when embedding at build time.")

    question_weight: float = Field(
        0.7, ge=0.0, le=1.0, description="Weight of question/alternate similarity against question+answer similarity."
    )
    keyword_weight: float = Field(0.2, ge=0.0, le=1.0, description="Weight of the keyword (BM25) score in ranking.")
    sentence_weight: float = Field(
        0.3, ge=0.0, le=1.0, description="Weight of the best single sentence when a question has several."
    )
    finetune: bool = Field(True, description="Adapt the embedding model to the corpus at build time.")
    finetune_max_steps: int = Field(250, ge=1, le=100_000, description="Most training steps of a build.")
    finetune_max_seconds: float = Field(
        900.0, gt=0, description="Safety limit on training time; a build that hits it says so in its manifest."
    )
    finetune_learning_rate: Annotated[float, Field(gt=0, le=1e-2)] | Literal["auto"] = Field(
        "auto",
        description="Learning rate of build-time training; auto: 2e-4 when training sees every pair of the corpus, "
        "else 5e-5.",
    )
    finetune_mix: Annotated[float, Field(ge=0, le=1)] | Literal["auto"] = Field(
        "auto",
        description="Share of the training's change to the weights that a build keeps (0: the base model, 1: all of "
        "it); auto: 0.5 when training sees every pair of the corpus, else 1.",
    )
    finetune_seed: int = Field(0, ge=0, description="Seed of build-time training (same seed, same model).")
    finetune_retrain_share: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="Share of entries changed since the served model was fine-tuned above which a build trains again.",
    )

    answer_threshold: float = Field(
        0.44,
        ge=0.0,
        le=1.0,
        description="Minimum confidence (calibrated probability that the answer is right) for an answer.",
    )
    clarify_margin: float = Field(
        0.45,
        ge=0.0,
        le=10.0,
        description="A different on-topic answer this close (in off-topic standard deviations) gives clarify.",
    )
    coverage_check: bool = Field(
        True, description="Decline questions on topics the corpus does not cover, however close they sound."
    )
    coverage_unknown_share: float = Field(
        0.33,
        ge=0.0,
        le=1.0,
        description="Share of a question's informative words (by rarity in general English) that no entry uses, from "
        "which it is not covered (unless it names one of the corpus's own topic words).",
    )
    coverage_level: float = Field(
        1.0,
        ge=-10.0,
        le=10.0,
        description="How far (standard deviations) the best match must score above questions on topics the corpus "
        "lacks (measured at build time) to count as covered.",
    )
    coverage_intents: list[CoverageIntent] = Field(
        default_factory=lambda: list(get_args(CoverageIntent)),
        description="Requests not covered when no entry's question or alternate mentions them.",
    )
    lay_words: bool = Field(
        True,
        description='Read common lay words as the FAQ\'s terms ("jab" as "vaccine", "nits" as "head lice"), '
        "besides the corpus's synonyms.txt; each applies only where the corpus uses the term. "
        "A change needs a rebuild.",
    )
    default_top_k: int = Field(3, ge=1, le=20, description="Alternatives returned when a request omits top_k.")
    max_question_chars: int = Field(1000, ge=10, le=20000, description="Longest question accepted (characters).")
    exclude_flags: list[Flag] = Field(
        default_factory=_default_exclusions,
        description="Entries carrying any of these review flags are left out of the index.",
    )
    keep_builds: int = Field(3, ge=1, le=50, description="Index builds kept on disk for rollback.")
    max_body_bytes: int = Field(65536, ge=1024, le=10_000_000, description="Largest request body accepted (413).")
    rate_limit_per_minute: float = Field(
        60.0, ge=0.0, le=1_000_000, description="Questions and feedback per client IP per minute (0: no limit)."
    )
    rate_limit_burst: int = Field(20, ge=1, le=100_000, description="Requests a client may send at once.")
    batch_max: int = Field(
        32, ge=1, le=256, description="Most questions answered in one encoder call when requests arrive together."
    )
    batch_window_ms: float = Field(
        2.0, ge=0.0, le=100.0, description="While busy, how long the batcher waits for more questions (ms)."
    )
    cache_size: int = Field(
        4096, ge=0, le=1_000_000, description="Decisions kept for repeated questions (0: no cache)."
    )
    reload_poll_seconds: float = Field(
        2.0, ge=0.0, le=3600, description="How often the server checks for a newly published index (0: never)."
    )
    admin_api_key: SecretStr | None = Field(
        None, description="API key of the admin endpoints (Authorization: Bearer KEY); unset: admin disabled."
    )

    uncovered_message: str = Field(
        "Our FAQ does not cover that topic, so I cannot answer it here. Please contact the clinic and our staff will "
        "help you.",
        description="Message of a no_answer reply to a question on a topic the corpus does not cover.",
    )
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

    crisis_message: str = Field(
        "You deserve support right now. If you are thinking about suicide or harming yourself, call or text 988 "
        "(Suicide & Crisis Lifeline, US), call 116 123 (Samaritans, UK and Ireland) or your local emergency number. "
        "If you are in immediate danger, call your emergency number now.",
        description="Message of an urgent reply to a message about suicide or self-harm.",
    )
    disclaimer: str = Field(
        "This is general information from our clinic's FAQ, not medical advice for your situation. "
        "If you are worried about your symptoms, contact the clinic or a clinician.",
        description="Disclaimer carried by every reply.",
    )
    diagnosis_note: str = Field(
        "Only a clinician who examines you can tell what you have. The answer below is general information.",
        description="Note added to a reply when the question asks about the asker's own diagnosis.",
    )
    dose_note: str = Field(
        "Ask your doctor or pharmacist how much to take: the right dose depends on you and your other medicines. "
        "Always follow the label.",
        description="Note added to a reply when the question asks how much of a medicine to take.",
    )
    feedback_db: Path | str = Field(
        Path("data/feedback.sqlite3"),
        description="Feedback and review store: an SQLite file, or a postgresql:// URL (shared by replicas).",
    )
    feedback_pool_size: int = Field(
        10, ge=1, le=1000, description="PostgreSQL feedback store: most connections each process opens."
    )
    record_unanswered: bool = Field(
        False, description="Store (scrubbed) questions that got no_answer or clarify, for `qa-service review`."
    )
    retention_days: float = Field(30.0, gt=0, le=3650, description="Stored questions are deleted after this many days.")
    log_questions: bool = Field(False, description="Log the (scrubbed) text of each question.")
    red_flags_file: Path | None = Field(
        None,
        description="Red-flag rules (YAML); empty: the bundled qa_service/data/red_flags.yaml. Cannot be disabled.",
    )

    languages: list[str] = Field(
        default_factory=lambda: ["en"],
        description="Languages the model handles (ISO 639-1 codes); others get no_answer. [] turns the check off.",
    )
    unsupported_language_message: str = Field(
        "Sorry, I can only answer questions in {languages}. Please ask again in {languages}, or contact the clinic.",
        description="Message of a no_answer reply to a question in another language; {languages} is filled in.",
    )

    host: str = Field("127.0.0.1", description="Address `qa-service serve` binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port `qa-service serve` listens on.")
    log_level: str = Field("INFO", description="Logging level of the CLI and the server.")
    log_format: Literal["text", "json"] = Field("text", description="Log lines as text, or one JSON object each.")
    access_log: bool = Field(True, description="One INFO line per HTTP request (method, path, status).")
    forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description="Proxies (IP addresses or networks, comma-separated; '*' for any) whose X-Forwarded-For "
        "and X-Forwarded-Proto are believed: the client address of rate limits and logs.",
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Web origins (https://clinic.example) allowed to call the API from a browser."
    )
    clinic_name: str = Field(
        "Our clinic", min_length=1, max_length=120, description="Clinic name on the demo page (/demo) and its widget."
    )
    clinic_phone: str = Field("", max_length=40, description="Clinic phone number for the demo page's widget.")
    clinic_contact_url: str = Field(
        "", max_length=2000, description="Clinic contact page (http/https) linked by the demo page's widget."
    )

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, value: list[str]) -> list[str]:
        from qa_service.answering.language import CANDIDATE_LANGUAGES

        unknown = [code for code in value if code not in CANDIDATE_LANGUAGES]
        if unknown:
            raise ValueError(f"unknown language code(s) {unknown}; use codes among {', '.join(CANDIDATE_LANGUAGES)}")
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _addresses(cls, value: str) -> str:
        value = value.strip()
        if value == "*":
            return value
        items = [item.strip() for item in value.split(",") if item.strip()]
        for item in items:
            try:
                ipaddress.ip_network(item, strict=False) if "/" in item else ipaddress.ip_address(item)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/8)") from None
        return ",".join(items)

    @field_validator("clinic_contact_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip()
        if value and not re.match(r"^https?://[^\s/?#]+", value, flags=re.IGNORECASE):
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value

    @field_validator("feedback_db", mode="before")
    @classmethod
    def _path_or_postgresql_url(cls, value: object) -> object:
        from qa_service.ops.storage import POSTGRESQL_SCHEMES

        if not isinstance(value, str):
            return value
        if value.startswith(POSTGRESQL_SCHEMES):
            return value
        scheme = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://", value)
        if scheme:  # the value itself is not echoed: a URL may carry a password
            raise ValueError(f"{scheme.group(1)}:// is not a supported store; use a file path or a postgresql:// URL")
        return Path(value)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}; use DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level
