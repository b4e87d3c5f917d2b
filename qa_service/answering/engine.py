"""Wiring: settings -> embedder + index -> answerer. Used by the HTTP app and the CLI alike."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from qa_service.answering.answerer import Answerer
from qa_service.answering.coverage import CoverageRules
from qa_service.answering.decision import DecisionPolicy
from qa_service.answering.redflags import RedFlagRules, red_flags_from_settings
from qa_service.answering.retrieval import weights_from_settings
from qa_service.index.store import FaqIndex, check_model, load_index
from qa_service.model.embedder import Embedder, canonical_model_name, embedder_from_settings
from qa_service.settings import Settings

logger = logging.getLogger(__name__)


def policy_from_settings(settings: Settings) -> DecisionPolicy:
    return DecisionPolicy(
        answer_threshold=settings.answer_threshold,
        clarify_margin=settings.clarify_margin,
        answered_message=settings.answered_message,
        clarify_message=settings.clarify_message,
        fallback_message=settings.fallback_message,
        max_question_chars=settings.max_question_chars,
        languages=tuple(settings.languages),
        unsupported_language_message=settings.unsupported_language_message,
        urgent_message=settings.urgent_message,
        crisis_message=settings.crisis_message,
        disclaimer=settings.disclaimer,
        diagnosis_note=settings.diagnosis_note,
        dose_note=settings.dose_note,
        uncovered_message=settings.uncovered_message,
        coverage=coverage_rules(settings),
    )


def coverage_rules(settings: Settings) -> CoverageRules:
    return CoverageRules(
        enabled=settings.coverage_check,
        unknown_share=settings.coverage_unknown_share,
        level_margin=settings.coverage_level,
        intents=tuple(settings.coverage_intents),
    )


@dataclass(frozen=True)
class Engine:
    """A loaded index and the model that queries it."""

    settings: Settings
    embedder: Embedder
    index: FaqIndex
    answerer: Answerer


def load_engine(
    settings: Settings,
    embedder: Embedder | None = None,
    red_flags: RedFlagRules | None = None,
    *,
    build_id: str | None = None,
) -> Engine:
    """Load the current (or a named) index build and the model; refuses an index built for another model.

    When the build carries its model (fine-tuned, or the base model it embedded with), that copy
    answers the questions; builds made before base models were kept use the configured model."""
    red_flags = red_flags or red_flags_from_settings(settings)  # first: no service without its emergency rules
    model = canonical_model_name(embedder.name if embedder is not None else settings.model)
    index = load_index(settings.index_dir, model=model, build_id=build_id)  # checks the model name before the slow load
    if index.model_path is not None:
        embedder = embedder_from_settings(settings, model=model, path=index.model_path)
    embedder = embedder or embedder_from_settings(settings)
    embedder.load()
    check_model(index.manifest, model=model, dimension=embedder.dimension, where=str(index.path))
    logger.info(
        "serving index build %s (%d entries, model %s)",
        index.manifest.build_id,
        index.manifest.entry_count,
        index.manifest.model,
    )
    return Engine(
        settings,
        embedder,
        index,
        Answerer(index, embedder, policy_from_settings(settings), weights_from_settings(settings), red_flags),
    )
