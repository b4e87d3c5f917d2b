"""Build-time fine-tuning with the real model: repeatable, bounded, optional, and what gets served."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from qa_service.answering.engine import load_engine
from qa_service.build.pipeline import build_index, index_is_current
from qa_service.corpus.entries import dump_corpus, load_corpus
from qa_service.index.store import load_index
from qa_service.model.embedder import (
    SentenceTransformerEmbedder,
    embedder_from_settings,
    folder_digest,
    resolve_model_path,
)
from qa_service.settings import DEFAULT_MODEL
from tests.conftest import make_settings

pytestmark = pytest.mark.model


def test_fine_tuning_is_repeatable_and_served(
    tmp_path: Path, tiny_corpus: Path, real_embedder: SentenceTransformerEmbedder
) -> None:
    first = make_settings(tmp_path, model=DEFAULT_MODEL, index_dir=tmp_path / "one")
    second = make_settings(tmp_path, model=DEFAULT_MODEL, index_dir=tmp_path / "two")
    one = build_index(first, real_embedder)
    two = build_index(second, real_embedder)
    assert one.fine_tune is not None and one.fine_tune["steps"] > 0
    assert one.fine_tune["stopped_by_time_limit"] is False
    assert one.files["vectors.faiss"] == two.files["vectors.faiss"]  # same corpus and seed, same vectors
    assert one.files["model/model.safetensors"] == two.files["model/model.safetensors"]
    assert "model/qa_packed_check.json" in one.files
    engine = load_engine(first, real_embedder)
    assert engine.embedder is not real_embedder  # the build's own model answers
    assert isinstance(engine.embedder, SentenceTransformerEmbedder) and not engine.embedder.loaded_library  # fast start
    assert engine.index.model_path == tmp_path / "one" / "builds" / one.build_id / "model"
    decision = engine.answerer.ask("how long does a back spasm last")
    assert decision.status in {"answered", "clarify"}
    top = decision.answer or decision.alternatives[0]
    assert top.entry.id == "spasm-duration"


def test_without_fine_tuning_the_build_keeps_the_base_model_and_starts_fast(
    tmp_path: Path, tiny_corpus: Path, real_embedder: SentenceTransformerEmbedder
) -> None:
    settings = make_settings(tmp_path, model=DEFAULT_MODEL, finetune=False)
    manifest = build_index(settings, real_embedder)
    assert manifest.fine_tune is None
    packaged = Path(resolve_model_path(DEFAULT_MODEL)) / "model.safetensors"
    kept = settings.index_dir / "builds" / manifest.build_id / "model" / "model.safetensors"
    assert manifest.files["model/model.safetensors"] == hashlib.sha256(packaged.read_bytes()).hexdigest()
    assert kept.read_bytes() == packaged.read_bytes()  # the very model its vectors came from
    assert "model/qa_packed_check.json" in manifest.files
    engine = load_engine(settings, real_embedder)
    assert isinstance(engine.embedder, SentenceTransformerEmbedder) and not engine.embedder.loaded_library
    assert engine.answerer.ask("is massage good for back spasms").answer.entry.id == "massage"  # type: ignore[union-attr]


def test_a_build_made_before_base_models_were_kept_serves_the_configured_model(
    tmp_path: Path, tiny_corpus: Path, real_embedder: SentenceTransformerEmbedder
) -> None:
    settings = make_settings(tmp_path, model=DEFAULT_MODEL, finetune=False)
    manifest = build_index(settings, real_embedder)
    folder = settings.index_dir / "builds" / manifest.build_id
    shutil.rmtree(folder / "model")  # what an earlier version wrote: no model/ without fine-tuning
    old = manifest.model_copy(update={"files": {k: v for k, v in manifest.files.items() if not k.startswith("model/")}})
    (folder / "manifest.json").write_text(old.model_dump_json(indent=2), encoding="utf-8")
    engine = load_engine(settings, real_embedder)
    assert engine.index.model_path is None
    assert engine.embedder is real_embedder
    assert engine.answerer.ask("is massage good for back spasms").answer.entry.id == "massage"  # type: ignore[union-attr]


def test_a_mix_of_zero_keeps_none_of_the_training(
    tmp_path: Path, tiny_corpus: Path, real_embedder: SentenceTransformerEmbedder
) -> None:
    """QA_FINETUNE_MIX scales what training changed: at 0 the build embeds exactly as the base model."""
    none_kept = make_settings(
        tmp_path, model=DEFAULT_MODEL, finetune_mix=0.0, finetune_max_steps=3, index_dir=tmp_path / "a"
    )
    untrained = make_settings(tmp_path, model=DEFAULT_MODEL, finetune=False, index_dir=tmp_path / "b")
    manifest = build_index(none_kept, real_embedder)
    build_index(untrained, real_embedder)
    assert manifest.fine_tune is not None and manifest.fine_tune["steps"] == 3 and manifest.fine_tune["mix"] == 0.0
    assert manifest.fine_tune["learning_rate"] == 2e-4  # auto: each step sees all 10 pairs of the tiny corpus
    mixed = load_index(none_kept.index_dir, model=DEFAULT_MODEL).vectors
    base = load_index(untrained.index_dir, model=DEFAULT_MODEL).vectors
    assert np.allclose(mixed, base, atol=1e-6)


def test_training_time_is_bounded(
    tmp_path: Path, tiny_corpus: Path, real_embedder: SentenceTransformerEmbedder
) -> None:
    settings = make_settings(tmp_path, model=DEFAULT_MODEL, finetune_max_seconds=1e-6)
    manifest = build_index(settings, real_embedder)
    assert manifest.fine_tune is not None
    assert manifest.fine_tune["stopped_by_time_limit"] is True and manifest.fine_tune["steps"] == 0
    assert load_index(settings.index_dir, model=DEFAULT_MODEL).manifest.build_id == manifest.build_id


def test_a_small_edit_reuses_the_fine_tuned_model_and_retrain_trains_again(
    tmp_path: Path, tiny_corpus: Path, real_embedder: SentenceTransformerEmbedder
) -> None:
    settings = make_settings(tmp_path, model=DEFAULT_MODEL, finetune_retrain_share=0.25)
    first = build_index(settings, real_embedder)
    assert first.fine_tune is not None and "reused_from" not in first.fine_tune
    corpus = load_corpus(settings.corpus_dir)
    edited = [
        e.model_copy(update={"answer": "Walking for ten minutes three times a day eases a back spasm."})
        if e.id == "walking"
        else e
        for e in corpus.entries
    ]
    (settings.corpus_dir / "tiny.yaml").write_text(dump_corpus(edited))

    second = build_index(settings, real_embedder)  # 1 of 7 served entries changed: 14% <= 25%
    assert second.fine_tune is not None
    assert second.fine_tune["reused_from"] == first.build_id
    assert second.fine_tune["changed_since_training"] == pytest.approx(1 / second.entry_count, abs=1e-4)
    assert second.files["model/model.safetensors"] == first.files["model/model.safetensors"]
    engine = load_engine(settings, real_embedder)
    answer = engine.answerer.ask("is walking good for back spasms").answer
    assert answer is not None and answer.entry.answer.startswith("Walking for ten minutes")

    third = build_index(settings, real_embedder, retrain=True)
    assert third.fine_tune is not None and "reused_from" not in third.fine_tune
    strict = build_index(settings.model_copy(update={"finetune_retrain_share": 0.0}), real_embedder)
    assert strict.fine_tune is not None
    assert strict.fine_tune["reused_from"] == third.build_id  # trained on exactly this corpus: reused


def test_more_changes_than_the_share_train_again(
    tmp_path: Path, tiny_corpus: Path, real_embedder: SentenceTransformerEmbedder
) -> None:
    settings = make_settings(tmp_path, model=DEFAULT_MODEL)  # default share 5%: any edit of 7 entries is more
    build_index(settings, real_embedder)
    corpus = load_corpus(settings.corpus_dir)
    edited = [
        e.model_copy(update={"answer": e.answer + " Ask us."}) if e.id == "massage" else e for e in corpus.entries
    ]
    (settings.corpus_dir / "tiny.yaml").write_text(dump_corpus(edited))
    again = build_index(settings, real_embedder)
    assert again.fine_tune is not None and "reused_from" not in again.fine_tune


def test_a_reused_model_saved_without_a_check_gets_one(
    tmp_path: Path, tiny_corpus: Path, real_embedder: SentenceTransformerEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path, model=DEFAULT_MODEL, finetune_retrain_share=0.25)
    with monkeypatch.context() as older_version:
        older_version.setattr(SentenceTransformerEmbedder, "ensure_check", lambda self, folder: None)
        first = build_index(settings, real_embedder)
    assert "model/qa_packed_check.json" not in first.files
    engine = load_engine(settings, real_embedder)
    assert isinstance(engine.embedder, SentenceTransformerEmbedder) and engine.embedder.loaded_library  # slow start
    corpus = load_corpus(settings.corpus_dir)
    edited = [
        e.model_copy(update={"answer": e.answer + " Ask us."}) if e.id == "walking" else e for e in corpus.entries
    ]
    (settings.corpus_dir / "tiny.yaml").write_text(dump_corpus(edited))
    second = build_index(settings, real_embedder)
    assert second.fine_tune is not None and second.fine_tune["reused_from"] == first.build_id
    assert second.files["model/model.safetensors"] == first.files["model/model.safetensors"]
    assert "model/qa_packed_check.json" in second.files
    engine = load_engine(settings, real_embedder)
    assert isinstance(engine.embedder, SentenceTransformerEmbedder) and not engine.embedder.loaded_library
    assert engine.answerer.ask("is walking good for back spasms").answer is not None


def test_model_files_changed_in_place_are_neither_reused_nor_their_vectors(tmp_path: Path, tiny_corpus: Path) -> None:
    """QA_MODEL=<a local folder> whose weights are replaced under the same name (retrained in place,
    or a new version of a model package): the next build trains again from the new files and
    embeds everything again, exactly as a build from scratch would."""
    folder = tmp_path / "my-model"
    shutil.copytree(resolve_model_path(DEFAULT_MODEL), folder)
    settings = make_settings(tmp_path, model=str(folder), finetune_retrain_share=0.25)
    first = build_index(settings, embedder_from_settings(settings))
    assert first.model_weights == folder_digest(folder)

    weights = load_file(folder / "model.safetensors")
    name = "encoder.layer.0.attention.self.query.weight"
    save_file({**weights, name: weights[name] * 1.1}, folder / "model.safetensors", metadata={"format": "pt"})
    assert index_is_current(settings, embedder_from_settings(settings)) == (
        f"the files of model {str(folder)!r} changed since the index was built"
    )
    second = build_index(settings, embedder_from_settings(settings))  # the corpus did not change
    assert second.fine_tune is not None and "reused_from" not in second.fine_tune
    assert second.model_weights == folder_digest(folder) != first.model_weights
    assert second.files["vectors.faiss"] != first.files["vectors.faiss"]
    fresh = make_settings(tmp_path, model=str(folder), index_dir=tmp_path / "fresh")
    assert build_index(fresh, embedder_from_settings(fresh)).files["vectors.faiss"] == second.files["vectors.faiss"]
