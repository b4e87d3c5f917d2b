"""Building an index from corpus entries: which texts are embedded, embedding with progress, keywords,
near-duplicates, the off-topic and uncovered-topic calibration, one build at a time, publishing."""

from __future__ import annotations

import fcntl
import gc
import json
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
from pydantic_core import from_json
from tqdm import tqdm

from qa_service.answering.calibration import offtopic_statistics, reference_questions
from qa_service.answering.coverage import (
    CorpusCoverage,
    CoverageRules,
    english_for,
    uncovered_reference_questions,
    uncovered_statistics,
)
from qa_service.answering.retrieval import RankingWeights, Retriever, Scored, weights_from_settings
from qa_service.build.finetune import PreviousBuild, adapt_model, embedding_key
from qa_service.corpus.duplicates import KnownPairs, find_near_duplicates
from qa_service.corpus.entries import FaqEntry, content_hashes, hash_entries, load_corpus
from qa_service.corpus.synonyms import SYNONYMS_FILE, Synonyms, load_synonyms, vocabulary
from qa_service.errors import BuildInProgressError, CorpusError, IndexUnavailableError
from qa_service.index.embedcache import CACHE_DIR, EmbeddingCache
from qa_service.index.keywords import TERMS_FILE, KeywordIndex, TermCache
from qa_service.index.store import (
    BUILDS_DIR,
    ENTRIES,
    FIELD_NAMES,
    NEAR_DUPLICATES,
    BuildContent,
    IndexManifest,
    build_in_memory,
    current_build_id,
    publish_build,
    read_manifest,
)
from qa_service.model.embedder import Embedder, canonical_model_name
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


def build_settings(settings: Settings) -> dict[str, object]:
    """The settings a build depends on; a change to any of them makes the index stale."""
    return settings.model_dump(
        mode="json",
        include={
            "exclude_flags",
            "finetune",
            "finetune_max_steps",
            "finetune_learning_rate",
            "finetune_mix",
            "finetune_seed",
            "question_weight",
            "keyword_weight",
        },
    )


def corpus_vocabulary(own: Synonyms, entries: Sequence[FaqEntry], settings: Settings) -> Synonyms:
    """The clinic's synonyms with the built-in lay words that fit these entries (``QA_LAY_WORDS``)."""
    texts = (text for entry in entries for text in (entry.question, *entry.alternates, entry.answer))
    return vocabulary(own, texts, lay=settings.lay_words)


def keyword_texts(entries: Sequence[FaqEntry], synonyms: Synonyms | None = None) -> list[list[str]]:
    """The keyword index's fields: question with alternates, and question with answer (read in the
    FAQ's terms, see ``synonyms``)."""
    read = synonyms.canonical if synonyms else str
    return [
        [read(" ".join([entry.question, *entry.alternates])) for entry in entries],
        [read(f"{entry.question} {entry.answer}") for entry in entries],
    ]


def prepare_build(
    entries: Sequence[FaqEntry],
    embedder: Embedder,
    settings: Settings,
    *,
    progress: bool = False,
    index_dir: Path | None = None,
    retrain: bool = False,
    synonyms: Synonyms | None = None,
) -> BuildContent:
    """Adapt the model, embed the entries' texts, index their keywords; nothing is written.

    ``synonyms`` (the corpus folder's synonyms.txt), with the built-in lay words that fit the corpus
    (``corpus_vocabulary``), is how the texts are read: patients' words in the FAQ's terms, at build as
    at question time; the manifest records it.

    With ``index_dir``, the build being served there lends what has not changed: its fine-tuned
    model (see ``adapt_model``), the vectors of unchanged texts (embedding cache) and its
    near-duplicate pairs among unchanged entries."""
    started = time.perf_counter()
    kept, dropped = served_entries(entries, settings.exclude_flags)
    synonyms = corpus_vocabulary(synonyms or Synonyms(), kept, settings)
    embedder.load()
    previous = PreviousBuild.of(index_dir) if index_dir is not None else None
    corpus_hash, digests = content_hashes(kept)
    adapted = adapt_model(
        kept, embedder, settings, previous=previous, retrain=retrain, digests=digests, progress=progress
    )
    cache = EmbeddingCache(index_dir / CACHE_DIR if index_dir else None, adapted.embedding_key, embedder.dimension)
    row_entry: list[int] = []
    row_field: list[int] = []
    texts: list[str] = []
    read = synonyms.canonical
    for position, entry in enumerate(kept):
        for field, text in entry_texts(entry):
            row_entry.append(position)
            row_field.append(FIELD_NAMES.index(field))
            texts.append(read(text))
    logger.info("embedding %d texts of %d entries", len(texts), len(kept))
    embedding_started = time.perf_counter()
    with tqdm(total=len(texts), unit="text", desc="embedding", disable=not progress, leave=False) as bar:

        def advance(count: int) -> None:
            bar.update(count)

        vectors = cache.encode(adapted.encoder, texts, batch_size=settings.encode_batch_size, on_batch=advance)
    logger.info(
        "embedded in %.1f s; indexing keywords, near-duplicates and calibration",
        time.perf_counter() - embedding_started,
    )
    with _collector_paused():  # keywords, near-duplicates, calibration: no garbage cycles worth finding
        terms = TermCache(index_dir / CACHE_DIR / TERMS_FILE if index_dir else None)
        content = BuildContent(
            entries=kept,
            vectors=vectors,
            row_entry=np.asarray(row_entry, dtype=np.int32),
            row_field=np.asarray(row_field, dtype=np.int8),
            model=canonical_model_name(embedder.name),
            vector_fields=list(VECTOR_FIELDS),
            corpus_hash=corpus_hash,
            excluded_ids=dropped,
            build_seconds=time.perf_counter() - started,
            keywords=KeywordIndex.build(keyword_texts(kept, synonyms), terms) if kept else None,
            keyword_fields=["question+alternates", "question+answer"] if kept else [],
            build_settings=build_settings(settings),
            encoder_precision=adapted.encoder.precision,
            fine_tune=adapted.fine_tune,
            model_weights=adapted.base_weights,
            save_model=adapted.save_model,
            synonyms=synonyms.as_dict(),
        )
        question_rows = content.row_field == FIELD_NAMES.index("question")
        known = known_pairs(previous, kept, adapted.embedding_key) if previous is not None else None
        near = find_near_duplicates(kept, vectors[question_rows], known=known) if kept else []
        calibration = measure_offtopic(content, cache, adapted.encoder, settings)
        cache.save(only_used=True)  # this build's texts and the reference questions
        terms.save()
    logger.info(
        "caches: %d texts' vectors reused, %d embedded; %d texts' keywords reused, %d tokenised",
        cache.hits,
        cache.misses,
        terms.hits,
        terms.misses,
    )
    return replace(
        content,
        calibration=calibration,
        near_duplicates=[pair.as_dict() for pair in near],
        build_seconds=time.perf_counter() - started,
    )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector off for a while: with tens of thousands of entries alive, each
    collection walks them all (about 0.4 s of a 5 s one-edit rebuild of 44k entries)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def known_pairs(previous: PreviousBuild, entries: Sequence[FaqEntry], key: str) -> KnownPairs | None:
    """The previous build's near-duplicate pairs, when its question vectors are comparable to ours."""
    manifest = previous.manifest
    if (
        embedding_key(
            manifest.model, manifest.fine_tune, manifest.libraries, manifest.encoder_precision, manifest.model_weights
        )
        != key
    ):
        return None
    try:
        old = {raw["id"]: (raw["question"], raw["answer"]) for raw in from_json((previous.path / ENTRIES).read_bytes())}
        old_pairs = json.loads((previous.path / NEAR_DUPLICATES).read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    positions = {entry.id: position for position, entry in enumerate(entries)}
    before = [old.get(entry.id, (None, None)) for entry in entries]
    unchanged = frozenset(p for p, e in enumerate(entries) if before[p][0] == e.question)
    same_answer = frozenset(p for p, e in enumerate(entries) if before[p][1] == e.answer)
    similar: dict[tuple[int, int], float] = {}
    answers: dict[tuple[int, int], tuple[float, bool]] = {}
    for pair in old_pairs:
        first, second = positions.get(pair.get("first")), positions.get(pair.get("second"))
        if first is not None and second is not None:
            positions_of_pair = (min(first, second), max(first, second))
            similar[positions_of_pair] = float(pair["question_similarity"])
            overlap, differ = pair.get("answer_overlap"), pair.get("answers_differ")
            usable = isinstance(overlap, float | int) and isinstance(differ, bool)
            if usable and first in same_answer and second in same_answer:
                answers[positions_of_pair] = (float(overlap), differ)
    return KnownPairs(unchanged, similar, answers)


def measure_offtopic(
    content: BuildContent, cache: EmbeddingCache, encoder: Embedder, settings: Settings
) -> dict[str, float]:
    """How high questions this corpus does not answer score against this build: the off-topic
    reference (clinic admin, chit-chat; see calibration.py) and medical questions about topics the
    corpus lacks (see coverage.py).

    The off-topic levels are measured on vectors alone (keyword weight 0), as the confidence model's
    coefficients were fitted; the uncovered level with keywords too, exactly as the service scores a
    best match."""
    # exact: a few hundred searches need no approximate index (whose build takes minutes above 100k vectors)
    index = build_in_memory(content, kind="flat")
    weights = weights_from_settings(settings)

    read = Synonyms.from_dict(content.synonyms).canonical  # as the service will read questions

    def tops(questions: list[str], weights: RankingWeights) -> list[Scored]:
        if not questions:
            return []
        questions = [read(question) for question in questions]
        ranked = Retriever(index, weights).rank(cache.encode(encoder, questions), questions, k=1)
        return [scored[0] for scored in ranked if scored]

    statistics = offtopic_statistics(tops(reference_questions(), replace(weights, keyword_weight=0.0)))
    corpus = CorpusCoverage(content.keywords, None, CoverageRules(), english_for(settings.languages))
    statistics.update(uncovered_statistics(tops(uncovered_reference_questions(corpus), weights)))
    return statistics


def index_is_current(settings: Settings, embedder: Embedder) -> str | None:
    """None when the current index was built from this corpus with this model, else why it is stale."""
    try:
        manifest = read_manifest(settings.index_dir / BUILDS_DIR / current_build_id(settings.index_dir))
    except IndexUnavailableError:
        return f"there is no usable index in {settings.index_dir} yet"
    model = embedder.name
    if manifest.model != canonical_model_name(model):
        return f"the index was built with model {manifest.model!r}, the configuration says {model!r}"
    if manifest.model_weights is not None and manifest.model_weights != embedder.weights_digest:
        return f"the files of model {model!r} changed since the index was built"
    kept, _ = served_entries(load_corpus(settings.corpus_dir).entries, settings.exclude_flags)
    if manifest.corpus_hash != hash_entries(kept):
        return "the corpus changed since the index was built"
    if manifest.build_settings != build_settings(settings):
        return "build settings changed since the index was built"
    if manifest.synonyms != corpus_vocabulary(load_synonyms(settings.corpus_dir), kept, settings).as_dict():
        return f"the synonyms ({SYNONYMS_FILE}, or the built-in lay words) changed since the index was built"
    if "uncovered_count" not in (manifest.calibration or {}):
        return "the index was built before builds measured the coverage check's reference level"
    return None


def build_index(
    settings: Settings,
    embedder: Embedder,
    *,
    corpus_dir: Path | None = None,
    index_dir: Path | None = None,
    progress: bool = False,
    retrain: bool = False,
) -> IndexManifest:
    """Load and validate the corpus, embed it, and publish a new index build atomically."""
    corpus_dir = corpus_dir or settings.corpus_dir
    corpus = load_corpus(corpus_dir)  # a corpus error stops the build before anything is written
    synonyms = load_synonyms(corpus_dir)  # so does an error in the synonyms file
    kept, dropped = served_entries(corpus.entries, settings.exclude_flags)
    if not kept:  # publishing would replace the served index with one that answers nothing
        raise CorpusError(
            f"{corpus_dir}: all {len(dropped)} entries carry a flag in QA_EXCLUDE_FLAGS "
            f"({', '.join(settings.exclude_flags)}): nothing to serve, so no build was published"
        )
    index_dir = index_dir or settings.index_dir
    with _only_build(index_dir):
        content = prepare_build(
            corpus.entries,
            embedder,
            settings,
            progress=progress,
            index_dir=index_dir,
            retrain=retrain,
            synonyms=synonyms,
        )
        manifest = publish_build(index_dir, content, keep_builds=settings.keep_builds)
    logger.info(
        "published index build %s: %d entries, %d vectors, %d excluded by flags, %.1fs",
        manifest.build_id,
        manifest.entry_count,
        manifest.vector_count,
        len(manifest.excluded_ids),
        manifest.build_seconds,
    )
    return manifest


BUILD_LOCK = ".build.lock"


@contextmanager
def _only_build(index_dir: Path) -> Iterator[None]:
    """Hold the index folder's build lock, or refuse: two builds into one folder would share its
    caches and remove each other's half-written builds. The system drops the lock when the process
    ends, however it ends, so a killed build never leaves a stale lock."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with (index_dir / BUILD_LOCK).open("a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BuildInProgressError(
                f"{index_dir}: another build into this folder is running; run this one when it has finished"
            ) from None
        yield  # closing the file releases the lock
