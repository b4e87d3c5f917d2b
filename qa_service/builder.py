"""Building an index from corpus entries: which texts are embedded, embedding with progress, publishing."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from qa_service.corpus import FaqEntry, hash_entries, load_corpus
from qa_service.embedder import Embedder, canonical_model_name
from qa_service.errors import IndexUnavailableError
from qa_service.index import (
    BUILDS_DIR,
    FIELD_NAMES,
    BuildContent,
    IndexManifest,
    current_build_id,
    publish_build,
    read_manifest,
)
from qa_service.settings import Settings

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


def prepare_build(
    entries: Sequence[FaqEntry],
    embedder: Embedder,
    *,
    exclude_flags: Sequence[str] = (),
    batch_size: int = 64,
    progress: bool = False,
) -> BuildContent:
    """Embed the entries' texts; nothing is written."""
    started = time.perf_counter()
    kept, dropped = served_entries(entries, exclude_flags)
    row_entry: list[int] = []
    row_field: list[int] = []
    texts: list[str] = []
    for position, entry in enumerate(kept):
        for field, text in entry_texts(entry):
            row_entry.append(position)
            row_field.append(FIELD_NAMES.index(field))
            texts.append(text)
    embedder.load()
    with tqdm(total=len(texts), unit="text", desc="embedding", disable=not progress, leave=False) as bar:

        def advance(count: int) -> None:
            bar.update(count)

        vectors = embedder.encode(texts, batch_size=batch_size, on_batch=advance)
    if not len(vectors):
        vectors = np.zeros((0, embedder.dimension), dtype=np.float32)
    return BuildContent(
        entries=kept,
        vectors=vectors,
        row_entry=np.asarray(row_entry, dtype=np.int32),
        row_field=np.asarray(row_field, dtype=np.int8),
        model=canonical_model_name(embedder.name),
        vector_fields=list(VECTOR_FIELDS),
        corpus_hash=hash_entries(kept),
        excluded_ids=dropped,
        build_seconds=time.perf_counter() - started,
    )


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
    content = prepare_build(
        corpus.entries,
        embedder,
        exclude_flags=settings.exclude_flags,
        batch_size=settings.encode_batch_size,
        progress=progress,
    )
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
