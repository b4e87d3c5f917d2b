"""Packed encoding: which texts share a call, and (real model) that it gives the library's vectors."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from qa_service.embedder import SentenceTransformerEmbedder
from qa_service.packed import PACKED_MAX_TOKENS, PackedEncoder, direct_tokenizer, packed_encoder, token_groups
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
    with caplog.at_level(logging.INFO, logger="qa_service.packed"):
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
    with caplog.at_level(logging.INFO, logger="qa_service.packed"):
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
    with caplog.at_level(logging.WARNING, logger="qa_service.packed"):
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
    with caplog.at_level(logging.WARNING, logger="qa_service.packed"):
        assert direct_tokenizer(exact._model) is None
    assert "differ" in caplog.text
