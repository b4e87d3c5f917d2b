"""Build-time adaptation of the embedding model to one corpus, from the corpus alone (no user queries).

Training pairs come from what the corpus says is equivalent: a question and its answer, an alternate
phrasing and its question (and answer), and questions of different entries that share one answer.
Batches hold at most one pair per answer group, so an in-batch "negative" is never a true match.

The whole fine-tune policy lives here: the pairs and the plan (how many steps), how hard to train
(``QA_FINETUNE_LEARNING_RATE`` / ``QA_FINETUNE_MIX`` "auto"), and when the served build's trained
model is reused instead of training again (``adapt_model``). The training loop itself lives with the
model, in ``qa_service.model.embedder``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import random
import shutil
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from qa_service.corpus.entries import FaqEntry, content_hashes
from qa_service.errors import IndexUnavailableError
from qa_service.index.embedcache import model_key
from qa_service.index.store import (
    BUILDS_DIR,
    MODEL_DIR,
    IndexManifest,
    current_build_id,
    library_versions,
    read_manifest,
)
from qa_service.model.embedder import Embedder, TrainableEmbedder, canonical_model_name, embedder_from_settings
from qa_service.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingPair:
    anchor: str
    positive: str
    group: str  # pairs of one group must not meet in a batch


@dataclass(frozen=True)
class TrainingPlan:
    """What to train on and for how long; ``steps`` follows from the data, so a build is repeatable."""

    batches: list[list[TrainingPair]]
    epochs: int
    pair_count: int

    @property
    def steps(self) -> int:
        return len(self.batches)


def _answer_key(entry: FaqEntry) -> str:
    return " ".join(entry.answer.lower().split())


def training_pairs(
    entries: Sequence[FaqEntry], *, max_question_pairs_per_group: int = 12, seed: int = 0
) -> list[TrainingPair]:
    """Equivalences the corpus states, as (anchor, positive, group) pairs."""
    rng = random.Random(seed)
    pairs: list[TrainingPair] = []
    by_answer: dict[str, list[FaqEntry]] = defaultdict(list)
    for entry in entries:
        if entry.answer:
            by_answer[_answer_key(entry)].append(entry)
    for key, members in by_answer.items():
        answer = members[0].answer
        questions = list(dict.fromkeys(q for m in members for q in [m.question, *m.alternates]))
        pairs.extend(TrainingPair(question, answer, key) for question in questions)
        pairs.extend(
            TrainingPair(alternate, member.question, key) for member in members for alternate in member.alternates
        )
        if len(members) > 1:  # different entries with one answer: their questions mean the same
            own = [m.question for m in members]
            same = [TrainingPair(a, b, key) for i, a in enumerate(own) for j, b in enumerate(own) if i != j]
            rng.shuffle(same)
            pairs.extend(same[:max_question_pairs_per_group])
    return pairs


def plan_training(
    pairs: Sequence[TrainingPair], *, batch_size: int, epochs: int, max_steps: int, seed: int
) -> TrainingPlan:
    """Shuffle (seeded) into batches in which no group and no text occurs twice, epoch after epoch.

    A pair that does not fit the current batch waits for the next one; a batch needs two pairs
    (one pair has no negatives), so a last lonely pair of an epoch is left out."""
    rng = random.Random(seed)
    batches: list[list[TrainingPair]] = []
    for _ in range(epochs):
        waiting = list(pairs)
        rng.shuffle(waiting)
        while waiting:
            batch: list[TrainingPair] = []
            groups: set[str] = set()
            texts: set[str] = set()
            rest: list[TrainingPair] = []
            for number, pair in enumerate(waiting):
                if len(batch) == batch_size:  # full: the others wait, in order (no need to look at each)
                    rest.extend(waiting[number:])
                    break
                if pair.group not in groups and not {pair.anchor, pair.positive} & texts:
                    batch.append(pair)
                    groups.add(pair.group)
                    texts |= {pair.anchor, pair.positive}
                else:
                    rest.append(pair)
            if len(batch) >= 2:
                batches.append(batch)
                if len(batches) >= max_steps:
                    return TrainingPlan(batches, epochs, len(pairs))
            waiting = rest
    return TrainingPlan(batches, epochs, len(pairs))


def epochs_for(pair_count: int, batch_size: int, *, target_steps: int, max_epochs: int) -> int:
    """Small corpora get several passes, large ones one: about ``target_steps`` steps in all."""
    per_epoch = max(1, math.ceil(pair_count / batch_size))
    return max(1, min(max_epochs, target_steps // per_epoch))


FINETUNE_BATCH_SIZE = 32
FINETUNE_TARGET_STEPS = 120  # small corpora: several passes up to about this many steps
FINETUNE_MAX_EPOCHS = 4
FINETUNE_MAX_SEQ_LENGTH = 128
TRAINED_ON = "trained_on.json"  # in model/: digests of the entries the model was trained on
# (learning rate, mix) of QA_FINETUNE_LEARNING_RATE / QA_FINETUNE_MIX "auto"; chosen on all four dev
# sets together (docs/benchmarks.md, "Answer quality")
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
    progress: bool = False,
) -> AdaptedModel:
    """The embedder to index with: fine-tuned on the corpus when enabled and possible (with a
    progress bar of the training steps when ``progress``).

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
    with tqdm(total=plan.steps, unit="step", desc="fine-tuning", disable=not progress, leave=False) as bar:

        def step(_: int) -> None:
            bar.update(1)

        trained, report = embedder.fine_tuned(
            plan,
            learning_rate=learning_rate,
            mix=mix,
            seed=settings.finetune_seed,
            max_seq_length=FINETUNE_MAX_SEQ_LENGTH,
            max_seconds=settings.finetune_max_seconds,
            on_step=step,
        )
    logger.info("fine-tuned in %.0f s (%d steps)", report.seconds, report.steps)
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
