"""Building an index from corpus entries: which texts are embedded, embedding with progress, publishing."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from qa_service.calibration import offtopic_statistics, reference_questions
from qa_service.corpus import FaqEntry, hash_entries, load_corpus
from qa_service.duplicates import find_near_duplicates
from qa_service.embedder import Embedder, FineTuneReport, TrainableEmbedder, canonical_model_name
from qa_service.engine import weights_from_settings
from qa_service.errors import IndexUnavailableError
from qa_service.index import (
    BUILDS_DIR,
    FIELD_NAMES,
    BuildContent,
    IndexManifest,
    build_in_memory,
    current_build_id,
    publish_build,
    read_manifest,
)
from qa_service.keywords import KeywordIndex
from qa_service.retrieval import Retriever
from qa_service.settings import Settings
from qa_service.training import epochs_for, plan_training, training_pairs

logger = logging.getLogger(__name__)

# Texts embedded per entry: its question, each alternate phrasing, and question + answer together.
VECTOR_FIELDS = ["question", "alternate", "qa"]


def entry_texts(entry: FaqEntry, fields: Sequence[str] = VECTOR_FIELDS) -> list[tuple[str, str]]:
    """(field, text) pairs to embed for one entry."""
    texts: list[tuple[str, str]] = []
    if "question" in fields:
        texts.append(("question", entry.question))
    if "alternate" in fields:
        texts.extend(("alternate", alternate) for alternate in entry.alternates)
    if "qa" in fields and entry.answer:
        texts.append(("qa", f"{entry.question}\n{entry.answer}"))
    return texts


def served_entries(entries: Sequence[FaqEntry], exclude_flags: Sequence[str]) -> tuple[list[FaqEntry], list[str]]:
    """Entries that go into the index, and the ids left out because of their review flags."""
    excluded = set(exclude_flags)
    kept = [entry for entry in entries if not excluded.intersection(entry.flags)]
    dropped = [entry.id for entry in entries if excluded.intersection(entry.flags)]
    kept_ids = {entry.id for entry in kept}
    # A duplicate pointing at an excluded entry would dangle in the served index.
    kept = [
        entry.model_copy(update={"duplicates": [d for d in entry.duplicates if d in kept_ids]})
        if any(d not in kept_ids for d in entry.duplicates)
        else entry
        for entry in kept
    ]
    return kept, dropped


FINETUNE_BATCH_SIZE = 32
FINETUNE_TARGET_STEPS = 120  # small corpora: several passes up to about this many steps
FINETUNE_MAX_EPOCHS = 4
FINETUNE_MAX_SEQ_LENGTH = 128


def adapt_model(
    entries: Sequence[FaqEntry], embedder: Embedder, settings: Settings
) -> tuple[Embedder, FineTuneReport | None]:
    """The embedder to index with: fine-tuned on the corpus when enabled and possible."""
    if not settings.finetune or not isinstance(embedder, TrainableEmbedder):
        return embedder, None
    pairs = training_pairs(entries, seed=settings.finetune_seed)
    if len(pairs) < 2:
        return embedder, None
    epochs = epochs_for(
        len(pairs), FINETUNE_BATCH_SIZE, target_steps=FINETUNE_TARGET_STEPS, max_epochs=FINETUNE_MAX_EPOCHS
    )
    plan = plan_training(
        pairs,
        batch_size=FINETUNE_BATCH_SIZE,
        epochs=epochs,
        max_steps=settings.finetune_max_steps,
        seed=settings.finetune_seed,
    )
    logger.info("fine-tuning on %d pairs: %d steps (%d epochs)", len(pairs), plan.steps, epochs)
    trained, report = embedder.fine_tuned(
        plan,
        learning_rate=settings.finetune_learning_rate,
        seed=settings.finetune_seed,
        max_seq_length=FINETUNE_MAX_SEQ_LENGTH,
        max_seconds=settings.finetune_max_seconds,
    )
    if report.stopped_by_time_limit:
        logger.warning(
            "fine-tuning stopped by QA_FINETUNE_MAX_SECONDS after %d of %d steps; the build is not repeatable",
            report.steps,
            plan.steps,
        )
    return trained, report


def build_settings(settings: Settings) -> dict[str, object]:
    """The settings a build depends on; a change to any of them makes the index stale."""
    return settings.model_dump(
        mode="json",
        include={
            "exclude_flags",
            "finetune",
            "finetune_max_steps",
            "finetune_learning_rate",
            "finetune_seed",
            "question_weight",
            "keyword_weight",
        },
    )


def keyword_texts(entries: Sequence[FaqEntry]) -> list[list[str]]:
    """The keyword index's fields: question with alternates, and question with answer."""
    return [
        [" ".join([entry.question, *entry.alternates]) for entry in entries],
        [f"{entry.question} {entry.answer}" for entry in entries],
    ]


def prepare_build(
    entries: Sequence[FaqEntry], embedder: Embedder, settings: Settings, *, progress: bool = False
) -> BuildContent:
    """Adapt the model, embed the entries' texts, index their keywords; nothing is written."""
    started = time.perf_counter()
    kept, dropped = served_entries(entries, settings.exclude_flags)
    embedder.load()
    encoder, report = adapt_model(kept, embedder, settings)
    row_entry: list[int] = []
    row_field: list[int] = []
    texts: list[str] = []
    for position, entry in enumerate(kept):
        for field, text in entry_texts(entry):
            row_entry.append(position)
            row_field.append(FIELD_NAMES.index(field))
            texts.append(text)
    with tqdm(total=len(texts), unit="text", desc="embedding", disable=not progress, leave=False) as bar:

        def advance(count: int) -> None:
            bar.update(count)

        vectors = encoder.encode(texts, batch_size=settings.encode_batch_size, on_batch=advance)
    if not len(vectors):
        vectors = np.zeros((0, embedder.dimension), dtype=np.float32)
    content = BuildContent(
        entries=kept,
        vectors=vectors,
        row_entry=np.asarray(row_entry, dtype=np.int32),
        row_field=np.asarray(row_field, dtype=np.int8),
        model=canonical_model_name(embedder.name),
        vector_fields=list(VECTOR_FIELDS),
        corpus_hash=hash_entries(kept),
        excluded_ids=dropped,
        build_seconds=time.perf_counter() - started,
        keywords=KeywordIndex.build(keyword_texts(kept)) if kept else None,
        keyword_fields=["question+alternates", "question+answer"] if kept else [],
        build_settings=build_settings(settings),
        fine_tune=asdict(report) if report is not None else None,
        save_model=encoder.save if report is not None and isinstance(encoder, TrainableEmbedder) else None,
    )
    question_rows = content.row_field == FIELD_NAMES.index("question")
    near = find_near_duplicates(kept, vectors[question_rows]) if kept else []
    return replace(
        content,
        calibration=measure_offtopic(content, encoder, settings),
        near_duplicates=[pair.as_dict() for pair in near],
    )


def measure_offtopic(content: BuildContent, encoder: Embedder, settings: Settings) -> dict[str, float]:
    """How high the reference off-topic questions score against this build (see calibration.py)."""
    questions = reference_questions()
    retriever = Retriever(build_in_memory(content), weights_from_settings(settings))
    ranked = retriever.rank(encoder.encode(questions), questions, k=1)
    return offtopic_statistics([scored[0] for scored in ranked if scored])


def index_is_current(settings: Settings, model: str) -> str | None:
    """None when the current index was built from this corpus with this model, else why it is stale."""
    try:
        manifest = read_manifest(settings.index_dir / BUILDS_DIR / current_build_id(settings.index_dir))
    except IndexUnavailableError:
        return f"there is no usable index in {settings.index_dir} yet"
    if manifest.model != canonical_model_name(model):
        return f"the index was built with model {manifest.model!r}, the configuration says {model!r}"
    kept, _ = served_entries(load_corpus(settings.corpus_dir).entries, settings.exclude_flags)
    if manifest.corpus_hash != hash_entries(kept):
        return "the corpus changed since the index was built"
    if manifest.build_settings != build_settings(settings):
        return "build settings changed since the index was built"
    return None


def build_index(
    settings: Settings,
    embedder: Embedder,
    *,
    corpus_dir: Path | None = None,
    index_dir: Path | None = None,
    progress: bool = False,
) -> IndexManifest:
    """Load and validate the corpus, embed it, and publish a new index build atomically."""
    corpus = load_corpus(corpus_dir or settings.corpus_dir)
    content = prepare_build(corpus.entries, embedder, settings, progress=progress)
    manifest = publish_build(index_dir or settings.index_dir, content, keep_builds=settings.keep_builds)
    logger.info(
        "published index build %s: %d entries, %d vectors, %d excluded by flags, %.1fs",
        manifest.build_id,
        manifest.entry_count,
        manifest.vector_count,
        len(manifest.excluded_ids),
        manifest.build_seconds,
    )
    return manifest
