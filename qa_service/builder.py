"""Building an index from corpus entries: which texts are embedded, embedding with progress, publishing."""

from __future__ import annotations

import fcntl
import functools
import gc
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from pydantic_core import from_json
from tqdm import tqdm

from qa_service.calibration import offtopic_statistics, reference_questions
from qa_service.corpus import FaqEntry, content_hashes, hash_entries, load_corpus
from qa_service.coverage import (
    CorpusCoverage,
    CoverageRules,
    english_for,
    uncovered_reference_questions,
    uncovered_statistics,
)
from qa_service.duplicates import KnownPairs, find_near_duplicates
from qa_service.embedcache import CACHE_DIR, EmbeddingCache, model_key
from qa_service.embedder import Embedder, TrainableEmbedder, canonical_model_name
from qa_service.engine import embedder_from_settings, weights_from_settings
from qa_service.errors import BuildInProgressError, CorpusError, IndexUnavailableError
from qa_service.index import (
    BUILDS_DIR,
    ENTRIES,
    FIELD_NAMES,
    MODEL_DIR,
    NEAR_DUPLICATES,
    BuildContent,
    FaqIndex,
    IndexManifest,
    build_in_memory,
    current_build_id,
    library_versions,
    publish_build,
    read_manifest,
)
from qa_service.keywords import TERMS_FILE, KeywordIndex, TermCache
from qa_service.retrieval import Retriever, Scored
from qa_service.settings import Settings
from qa_service.training import TrainingPair, TrainingPlan, epochs_for, plan_training, training_pairs

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
# (learning rate, mix) of QA_FINETUNE_LEARNING_RATE / QA_FINETUNE_MIX "auto"; chosen on all four dev
# sets together (BENCHMARKS.md, "Answer quality")
THOROUGH = (2e-4, 0.5)  # training sees every pair: train hard, keep half of the change
GENTLE = (5e-5, 1.0)  # most pairs are never seen in the step budget: train gently, keep all of it


@dataclass(frozen=True)
class PreviousBuild:
    """The build being served when a new one starts: what can be reused from it."""

    path: Path
    manifest: IndexManifest

    @classmethod
    def of(cls, index_dir: Path) -> PreviousBuild | None:
        try:
            path = index_dir / BUILDS_DIR / current_build_id(index_dir)
            return cls(path, read_manifest(path))
        except IndexUnavailableError:
            return None


@dataclass(frozen=True)
class AdaptedModel:
    """The encoder a build embeds with, and how it came about."""

    encoder: Embedder
    fine_tune: dict[str, object] | None = None  # recorded in the manifest
    save_model: Callable[[Path], None] | None = None  # writes the model (and what it was trained on)
    base_weights: str | None = None  # weights_digest of the configured model this one starts from

    @property
    def embedding_key(self) -> str:
        return embedding_key(
            canonical_model_name(self.encoder.name),
            self.fine_tune,
            library_versions(),
            self.encoder.precision,
            self.base_weights,
        )


def embedding_key(
    model: str,
    fine_tune: Mapping[str, object] | None,
    libraries: Mapping[str, str],
    precision: str,
    base_weights: str | None,
) -> str:
    """Identity of the vectors a model produces: its name and the hash of its files, or what it was
    trained on (the training key covers the base model's files), the libraries, the arithmetic
    (float32 keys are those of releases before bfloat16 existed, so their caches stay valid)."""
    if fine_tune:
        trained = [f"{fine_tune.get('training_key')}:{fine_tune.get('steps')}"]
    else:
        trained = ["base"] if base_weights is None else ["base", base_weights]
    versions = [libraries.get(name, "") for name in ("torch", "sentence-transformers", "transformers")]
    arithmetic = [] if precision == "float32" else [precision]
    return model_key(model, *trained, *versions, *arithmetic)


def entry_digests(entries: Sequence[FaqEntry]) -> list[str]:
    """Short content hashes of entries (what a fine-tuned model was trained on)."""
    return sorted(content_hashes(entries)[1])


def training_strength(plan: TrainingPlan, settings: Settings) -> tuple[float, float]:
    """The learning rate and mix of a build's training. "auto": THOROUGH when the plan shows the model
    every pair at least once (a clinic's FAQ, up to a few thousand entries), GENTLE when the step
    budget covers only part of the corpus (tens of thousands of entries): training harder would move
    the model away from what serves the many entries it never sees."""
    covers_all = sum(len(batch) for batch in plan.batches) >= plan.pair_count
    learning_rate, mix = THOROUGH if covers_all else GENTLE
    if settings.finetune_learning_rate != "auto":
        learning_rate = settings.finetune_learning_rate
    if settings.finetune_mix != "auto":
        mix = settings.finetune_mix
    return learning_rate, mix


def _training_key(
    pairs: Sequence[TrainingPair],
    plan_steps: int,
    model: str,
    base_weights: str | None,
    strength: tuple[float, float],
    settings: Settings,
) -> str:
    learning_rate, mix = strength
    digest = hashlib.sha256()
    digest.update(
        json.dumps([model, learning_rate, settings.finetune_seed, plan_steps, FINETUNE_MAX_SEQ_LENGTH]).encode()
    )
    if mix != 1:  # keys of builds made before mixing existed stay as they were
        digest.update(f"mix={mix!r}".encode())
    if base_weights is not None:  # keys of builds made before weights were hashed stay as they were
        digest.update(base_weights.encode())
    dumps = json.dumps
    for pair in pairs:  # exactly the bytes of json.dumps(asdict(pair)), an order of magnitude faster
        anchor, positive, group = dumps(pair.anchor), dumps(pair.positive), dumps(pair.group)
        digest.update(f'{{"anchor": {anchor}, "positive": {positive}, "group": {group}}}'.encode())
    return digest.hexdigest()[:24]


def _reusable(
    previous: PreviousBuild | None, model: str, base_weights: Callable[[], str | None], settings: Settings
) -> Path | None:
    """The previous build's fine-tuned model folder, if it was trained the way this build would train,
    from the same base model files (when it recorded them: builds made before did not)."""
    if previous is None or previous.manifest.model != model or not previous.manifest.fine_tune:
        return None
    tune = previous.manifest.fine_tune
    folder = previous.path / MODEL_DIR
    recorded = previous.manifest.model_weights
    configured = previous.manifest.build_settings  # "auto" or a number, as set
    same = (
        (recorded is None or recorded == base_weights())
        and configured.get("finetune_learning_rate") == settings.finetune_learning_rate
        and configured.get("finetune_mix", 1.0) == settings.finetune_mix
        and tune.get("seed") == settings.finetune_seed
        and tune.get("max_steps", settings.finetune_max_steps) == settings.finetune_max_steps
        and (folder / TRAINED_ON).is_file()
        and tune.get("training_key")
    )
    return folder if same else None


TRAINED_ON = "trained_on.json"  # in model/: digests of the entries the model was trained on


def _untrained(embedder: TrainableEmbedder) -> AdaptedModel:
    """A build that trains nothing still keeps the model it embedded with in ``model/``: the build
    then serves exactly the model its vectors came from (upgrading the package that ships it changes
    nothing until the next build), and starts fast (``ensure_check``). A local model's files are
    hard-linked, so this costs neither time nor disk; a hub model is saved by the library."""
    source = embedder.folder
    return AdaptedModel(
        embedder,
        save_model=embedder.save if source is None else _copy_model(source, embedder),
        base_weights=embedder.weights_digest,
    )


def _copy_model(source: Path, model: TrainableEmbedder) -> Callable[[Path], None]:
    def save(folder: Path) -> None:
        def link(src: str, dst: str) -> None:  # builds are immutable: hard links are safe and instant
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)

        shutil.copytree(source, folder, copy_function=link)
        # a folder without a check (the base model's own files, or a model saved by an earlier
        # version) gets one now, so that the service starts fast on this build
        model.ensure_check(folder)

    return save


def adapt_model(
    entries: Sequence[FaqEntry],
    embedder: Embedder,
    settings: Settings,
    *,
    previous: PreviousBuild | None = None,
    retrain: bool = False,
    digests: Sequence[str] | None = None,
) -> AdaptedModel:
    """The embedder to index with: fine-tuned on the corpus when enabled and possible.

    The previous build's fine-tuned model is reused, without training, when it was trained the same
    way on entries of which at most ``QA_FINETUNE_RETRAIN_SHARE`` have changed since (edits, additions
    and removals): a small edit then costs seconds, not a training run. ``retrain`` always trains."""
    if not isinstance(embedder, TrainableEmbedder):
        return AdaptedModel(embedder, base_weights=embedder.weights_digest)
    if not settings.finetune:
        return _untrained(embedder)
    model = canonical_model_name(embedder.name)
    base_weights = functools.cache(lambda: embedder.weights_digest)  # hashed only when needed

    @functools.cache
    def planned() -> tuple[list[TrainingPair], TrainingPlan, tuple[float, float], str]:
        """The pairs, the plan and its key: ~1 s for 44k entries, so not made for a small edit."""
        pairs = training_pairs(entries, seed=settings.finetune_seed)
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
        strength = training_strength(plan, settings)
        return pairs, plan, strength, _training_key(pairs, plan.steps, model, base_weights(), strength, settings)

    digests = sorted(digests) if digests is not None else entry_digests(entries)  # given: computed already
    folder = None if retrain else _reusable(previous, model, base_weights, settings)
    if folder is not None and previous is not None and previous.manifest.fine_tune is not None:
        trained_on = set(json.loads((folder / TRAINED_ON).read_text(encoding="utf-8")))
        changed = len(trained_on.symmetric_difference(digests)) / max(1, len(trained_on) + len(digests))
        small_edit = changed <= settings.finetune_retrain_share
        if small_edit or previous.manifest.fine_tune.get("training_key") == planned()[3]:
            logger.info(
                "reusing the fine-tuned model of build %s (%.2f%% of entries changed since it was trained)",
                previous.manifest.build_id,
                100 * changed,
            )
            # loaded only if a text is missing from the embedding cache
            reused = embedder_from_settings(settings, model=model, path=folder)
            fine_tune = {
                **previous.manifest.fine_tune,
                "reused_from": previous.manifest.build_id,
                "changed_since_training": round(changed, 4),
            }
            return AdaptedModel(reused, fine_tune, _copy_model(folder, reused), previous.manifest.model_weights)
    pairs, plan, (learning_rate, mix), key = planned()
    if len(pairs) < 2:
        return _untrained(embedder)
    logger.info(
        "fine-tuning on %d pairs: %d steps (%d epochs), learning rate %g, keeping %g of the change",
        len(pairs),
        plan.steps,
        plan.epochs,
        learning_rate,
        mix,
    )
    trained, report = embedder.fine_tuned(
        plan,
        learning_rate=learning_rate,
        mix=mix,
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

    def save(folder: Path) -> None:
        trained.save(folder)
        (folder / TRAINED_ON).write_text(json.dumps(digests), encoding="utf-8")

    fine_tune = {**asdict(report), "max_steps": settings.finetune_max_steps, "training_key": key}
    return AdaptedModel(trained, fine_tune, save, base_weights())


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


def keyword_texts(entries: Sequence[FaqEntry]) -> list[list[str]]:
    """The keyword index's fields: question with alternates, and question with answer."""
    return [
        [" ".join([entry.question, *entry.alternates]) for entry in entries],
        [f"{entry.question} {entry.answer}" for entry in entries],
    ]


def prepare_build(
    entries: Sequence[FaqEntry],
    embedder: Embedder,
    settings: Settings,
    *,
    progress: bool = False,
    index_dir: Path | None = None,
    retrain: bool = False,
) -> BuildContent:
    """Adapt the model, embed the entries' texts, index their keywords; nothing is written.

    With ``index_dir``, the build being served there lends what has not changed: its fine-tuned
    model (see ``adapt_model``), the vectors of unchanged texts (embedding cache) and its
    near-duplicate pairs among unchanged entries."""
    started = time.perf_counter()
    kept, dropped = served_entries(entries, settings.exclude_flags)
    embedder.load()
    previous = PreviousBuild.of(index_dir) if index_dir is not None else None
    corpus_hash, digests = content_hashes(kept)
    adapted = adapt_model(kept, embedder, settings, previous=previous, retrain=retrain, digests=digests)
    cache = EmbeddingCache(index_dir / CACHE_DIR if index_dir else None, adapted.embedding_key, embedder.dimension)
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

        vectors = cache.encode(adapted.encoder, texts, batch_size=settings.encode_batch_size, on_batch=advance)
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
            keywords=KeywordIndex.build(keyword_texts(kept), terms) if kept else None,
            keyword_fields=["question+alternates", "question+answer"] if kept else [],
            build_settings=build_settings(settings),
            encoder_precision=adapted.encoder.precision,
            fine_tune=adapted.fine_tune,
            model_weights=adapted.base_weights,
            save_model=adapted.save_model,
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

    The off-topic levels are measured on vectors alone, as the confidence model's coefficients were
    fitted; the uncovered level with keywords too, exactly as the service scores a best match."""
    weights = weights_from_settings(settings)

    def tops(questions: list[str], index: FaqIndex) -> list[Scored]:
        if not questions:
            return []
        ranked = Retriever(index, weights).rank(cache.encode(encoder, questions), questions, k=1)
        return [scored[0] for scored in ranked if scored]

    # exact: a few hundred searches need no approximate index (whose build takes minutes above 100k vectors)
    statistics = offtopic_statistics(tops(reference_questions(), build_in_memory(content, kind="flat")))
    corpus = CorpusCoverage(content.keywords, None, CoverageRules(), english_for(settings.languages))
    served = build_in_memory(content, kind="flat", keywords=True)
    statistics.update(uncovered_statistics(tops(uncovered_reference_questions(corpus), served)))
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
    kept, dropped = served_entries(corpus.entries, settings.exclude_flags)
    if not kept:  # publishing would replace the served index with one that answers nothing
        raise CorpusError(
            f"{corpus_dir}: all {len(dropped)} entries carry a flag in QA_EXCLUDE_FLAGS "
            f"({', '.join(settings.exclude_flags)}): nothing to serve, so no build was published"
        )
    index_dir = index_dir or settings.index_dir
    with _only_build(index_dir):
        content = prepare_build(
            corpus.entries, embedder, settings, progress=progress, index_dir=index_dir, retrain=retrain
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
