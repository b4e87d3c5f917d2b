"""Build-time fine-tuning with the real model: repeatable, bounded, optional, and what gets served."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa_service.builder import build_index
from qa_service.embedder import SentenceTransformerEmbedder
from qa_service.engine import load_engine
from qa_service.index import load_index
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
    engine = load_engine(first, real_embedder)
    assert engine.embedder is not real_embedder  # the build's own model answers
    assert engine.index.model_path == tmp_path / "one" / "builds" / one.build_id / "model"
    decision = engine.answerer.ask("how long does a back spasm last")
    assert decision.status in {"answered", "clarify"}
    top = decision.answer or decision.alternatives[0]
    assert top.entry.id == "spasm-duration"


def test_without_fine_tuning_the_base_model_serves(
    tmp_path: Path, tiny_corpus: Path, real_embedder: SentenceTransformerEmbedder
) -> None:
    settings = make_settings(tmp_path, model=DEFAULT_MODEL, finetune=False)
    manifest = build_index(settings, real_embedder)
    assert manifest.fine_tune is None
    assert not any(name.startswith("model/") for name in manifest.files)
    engine = load_engine(settings, real_embedder)
    assert engine.embedder is real_embedder
    assert engine.answerer.ask("is massage good for back spasms").answer.entry.id == "massage"  # type: ignore[union-attr]


def test_training_time_is_bounded(
    tmp_path: Path, tiny_corpus: Path, real_embedder: SentenceTransformerEmbedder
) -> None:
    settings = make_settings(tmp_path, model=DEFAULT_MODEL, finetune_max_seconds=1e-6)
    manifest = build_index(settings, real_embedder)
    assert manifest.fine_tune is not None
    assert manifest.fine_tune["stopped_by_time_limit"] is True and manifest.fine_tune["steps"] == 0
    assert load_index(settings.index_dir, model=DEFAULT_MODEL).manifest.build_id == manifest.build_id
