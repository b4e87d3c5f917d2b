"""Packed encoding: which texts share a call, and (real model) that it gives the library's vectors."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from qa_service.errors import ModelLoadError
from qa_service.model.embedder import SentenceTransformerEmbedder
from qa_service.model.packed import (
    CHECK_FILE,
    PACKED_MAX_TOKENS,
    PackedEncoder,
    direct_tokenizer,
    packed_encoder,
    token_groups,
)
from qa_service.settings import DEFAULT_MODEL


def test_groups_are_longest_first_and_cover_every_text_once() -> None:
    lengths = [5, 40, 12, 40, 7, 3]
    groups = token_groups(lengths, max_texts=64)
    assert groups == [[1, 3, 2, 4, 0, 5]]  # longest first, ties in input order
    assert sorted(position for group in groups for position in group) == list(range(len(lengths)))


def test_groups_respect_the_token_and_text_limits() -> None:
    lengths = [100] * 12
    assert [len(group) for group in token_groups(lengths, max_texts=64, max_tokens=512)] == [5, 5, 2]
    assert [len(group) for group in token_groups(lengths, max_texts=4, max_tokens=10_000)] == [4, 4, 4]
    assert token_groups([300, 900, 20], max_texts=64, max_tokens=PACKED_MAX_TOKENS) == [[1], [0, 2]]
    assert token_groups([], max_texts=8) == []


def test_a_model_on_another_device_keeps_the_library(caplog: pytest.LogCaptureFixture) -> None:
    on_gpu = SimpleNamespace(device="cuda:0", tokenizer=SimpleNamespace(padding_side="right"))
    with caplog.at_level(logging.INFO, logger="qa_service.model.packed"):
        assert packed_encoder(on_gpu) is None
    assert "cuda:0" in caplog.text


@pytest.fixture(scope="module")
def exact() -> SentenceTransformerEmbedder:
    embedder = SentenceTransformerEmbedder(DEFAULT_MODEL, precision="float32")
    embedder.load()
    return embedder


@pytest.mark.model
def test_packed_vectors_are_the_librarys_for_mixed_lengths_alone_or_together(
    exact: SentenceTransformerEmbedder,
) -> None:
    assert exact.runs_packed  # the default model runs packed
    texts = [f"question {i} about back pain" + " and more detail" * (i % 7) for i in range(40)]
    texts += ["spasm", "x " * 400]  # one word, and a message cut at the model's 256 tokens
    library = exact._model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    packed = exact.encode(texts)
    assert np.abs(packed - library).max() < 1e-5
    alone = np.vstack([exact.encode([text]) for text in texts[::7]])
    assert np.abs(alone - packed[::7]).max() < 1e-5


@pytest.mark.model
def test_a_model_the_packed_encoder_cannot_run_keeps_the_library(
    exact: SentenceTransformerEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    from sentence_transformers import SentenceTransformer, models

    transformer = exact._model[0]
    cls_pooled = SentenceTransformer(modules=[transformer, models.Pooling(384, pooling_mode="cls")], device="cpu")
    with caplog.at_level(logging.INFO, logger="qa_service.model.packed"):
        assert packed_encoder(cls_pooled) is None
    assert "pooling" in caplog.text


@pytest.mark.model
def test_a_packed_encoder_that_disagrees_with_the_library_is_not_used(
    exact: SentenceTransformerEmbedder, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    original = PackedEncoder.encode

    def off_by_a_little(self: PackedEncoder, features: dict[str, Any]) -> Any:
        return original(self, features) * 1.001

    monkeypatch.setattr(PackedEncoder, "encode", off_by_a_little)
    with caplog.at_level(logging.WARNING, logger="qa_service.model.packed"):
        assert packed_encoder(exact._model) is None
    assert "differ" in caplog.text


@pytest.mark.model
def test_texts_are_tokenized_directly_exactly_as_the_library_does(exact: SentenceTransformerEmbedder) -> None:
    import torch

    assert exact._packed is not None and exact._packed.tokenize != exact._model.preprocess  # passed its check
    texts = ["back pain", "  Spaces,  CAPITALS and punctuation!?  ", "¿Qué? naïve — 3½ mg 😀", "x " * 400, "a"]
    expected, actual = exact._model.preprocess(texts), exact._packed.tokenize(texts)
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        assert torch.equal(expected[key], actual[key]), key
    assert actual["input_ids"].shape == (5, exact._model.max_seq_length)  # the long text is cut, the rest padded


@pytest.mark.model
def test_a_direct_tokenizer_that_disagrees_with_the_library_is_not_used(
    exact: SentenceTransformerEmbedder, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    library = exact._model.preprocess

    def padding_counted_as_text(texts: list[str], *args: Any, **kwargs: Any) -> dict[str, Any]:
        features = library(texts, *args, **kwargs)
        return {**features, "attention_mask": features["attention_mask"] * 0 + 1}

    monkeypatch.setattr(exact._model, "preprocess", padding_counted_as_text)
    with caplog.at_level(logging.WARNING, logger="qa_service.model.packed"):
        assert direct_tokenizer(exact._model) is None
    assert "differ" in caplog.text


@pytest.fixture(scope="module")
def saved(exact: SentenceTransformerEmbedder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    exact.save(folder)
    return folder


_MIXED = ["back pain", "How long does a spasm last?", "  Spaces,  CAPITALS!? ", "naïve — 3½ mg 😀", "x " * 400]


@pytest.mark.model
def test_a_saved_model_loads_without_the_library_and_gives_its_vectors(
    exact: SentenceTransformerEmbedder, saved: Path
) -> None:
    assert (saved / CHECK_FILE).is_file()
    direct = SentenceTransformerEmbedder(DEFAULT_MODEL, precision="float32", path=saved)
    direct.load()
    assert direct.runs_packed and not direct.loaded_library and direct.dimension == exact.dimension
    library = exact._model.encode(_MIXED, normalize_embeddings=True, convert_to_numpy=True)
    assert np.abs(direct.encode(_MIXED) - library).max() < 1e-5
    assert np.abs(direct.encode(_MIXED[:1]) - library[:1]).max() < 1e-5
    # what a fast start rests on: a process answering from the folder never imports the libraries
    script = (
        "import sys; from pathlib import Path; from qa_service.model.embedder import SentenceTransformerEmbedder as E; "
        f"e = E('m', path=Path({str(saved)!r}), precision='float32'); e.encode(['back pain']); "
        "print(sorted(m for m in ('sentence_transformers', 'transformers', 'sklearn') if m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    assert run.stdout.strip() == "[]"


@pytest.mark.model
def test_a_directly_loaded_model_fetches_the_library_only_when_needed(saved: Path, tmp_path: Path) -> None:
    direct = SentenceTransformerEmbedder(DEFAULT_MODEL, precision="float32", path=saved)
    assert direct.encode(["back pain"]).shape == (1, 384) and not direct.loaded_library
    direct.save(tmp_path)  # e.g. a rebuild reusing the fine-tuned model: needs the library's save
    assert direct.loaded_library and (tmp_path / CHECK_FILE).is_file()
    again = SentenceTransformerEmbedder(DEFAULT_MODEL, precision="float32", path=tmp_path)
    assert np.abs(again.encode(_MIXED) - direct.encode(_MIXED)).max() < 1e-5 and not again.loaded_library


@pytest.mark.model
@pytest.mark.parametrize(
    "damage", ["no check", "check differs", "check not a record", "other activation", "weights missing"]
)
def test_a_folder_the_direct_load_cannot_reproduce_loads_through_the_library(
    saved: Path, tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(saved, folder)
    check = json.loads((folder / CHECK_FILE).read_text())
    config = json.loads((folder / "config.json").read_text())
    if damage == "no check":  # a model saved by an older version, or by the library itself
        (folder / CHECK_FILE).unlink()
    elif damage == "check differs":  # e.g. weights edited after the build
        check["vectors"][0][0] += 0.01
        (folder / CHECK_FILE).write_text(json.dumps(check))
    elif damage == "check not a record":
        (folder / CHECK_FILE).write_text("[1, 2]")
    elif damage == "other activation":
        (folder / "config.json").write_text(json.dumps({**config, "hidden_act": "relu"}))
    else:
        (folder / "model.safetensors").write_bytes(b"")
    embedder = SentenceTransformerEmbedder(DEFAULT_MODEL, precision="float32", path=folder)
    with caplog.at_level(logging.INFO, logger="qa_service.model.packed"):
        if damage == "weights missing":  # the library cannot read it either: a clear load error
            with pytest.raises(ModelLoadError):
                embedder.load()
            return
        embedder.load()
    assert embedder.loaded_library and "through sentence-transformers" in caplog.text
    assert embedder.encode(["back pain"]).shape == (1, 384)
