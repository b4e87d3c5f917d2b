"""Incremental rebuilds: unchanged texts are not embedded again, and the result is the same as a
build from scratch (vectors, near-duplicate report); a damaged cache only costs time."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from qa_service.build.pipeline import build_index, index_is_current
from qa_service.corpus import duplicates as duplicates_module
from qa_service.corpus.duplicates import KnownPairs, find_near_duplicates
from qa_service.corpus.entries import FaqEntry, dump_corpus, load_corpus
from qa_service.index.embedcache import CACHE_DIR, EmbeddingCache
from qa_service.index.store import BUILDS_DIR, NEAR_DUPLICATES, load_index
from qa_service.model.embedder import Vectors
from qa_service.settings import Settings
from tests.fakes import HashingEmbedder


class CountingEmbedder(HashingEmbedder):
    """Remembers every text it was asked to embed."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, on_batch: Callable[[int], None] | None = None
    ) -> Vectors:
        self.texts.extend(texts)
        return super().encode(texts, batch_size=batch_size, on_batch=on_batch)


def edit(settings: Settings, entry_id: str, **changes: object) -> None:
    corpus = load_corpus(settings.corpus_dir)
    entries = [e.model_copy(update=changes) if e.id == entry_id else e for e in corpus.entries]
    (settings.corpus_dir / "tiny.yaml").write_text(dump_corpus(entries))


def stored(settings: Settings) -> tuple[np.ndarray, list[dict[str, object]]]:
    index = load_index(settings.index_dir, model=HashingEmbedder().name)
    assert index.path is not None
    return index.vectors.copy(), json.loads((index.path / NEAR_DUPLICATES).read_text())


def test_a_rebuild_embeds_only_changed_texts_and_matches_a_fresh_build(tiny_settings: Settings) -> None:
    embedder = CountingEmbedder()
    build_index(tiny_settings, embedder)
    first_count = len(embedder.texts)
    assert first_count > 200  # the entries' texts and the 200 off-topic reference questions

    embedder.texts.clear()
    build_index(tiny_settings, embedder)  # nothing changed: nothing embedded
    assert embedder.texts == []

    edit(tiny_settings, "walking", answer="Walk for ten minutes, three times a day.")
    build_index(tiny_settings, embedder)
    assert embedder.texts == ["Is walking good for back spasms?\nWalk for ten minutes, three times a day."]

    fresh = tiny_settings.model_copy(update={"index_dir": tiny_settings.index_dir.parent / "fresh"})
    build_index(fresh, HashingEmbedder())
    incremental_vectors, incremental_pairs = stored(tiny_settings)
    fresh_vectors, fresh_pairs = stored(fresh)
    assert np.array_equal(incremental_vectors, fresh_vectors)
    assert incremental_pairs == fresh_pairs


def test_a_rebuild_judges_near_duplicate_answers_again_only_where_an_answer_changed(
    tiny_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def prevent_pair() -> dict[str, object]:
        pairs = stored(tiny_settings)[1]
        return next(pair for pair in pairs if {pair["first"], pair["second"]} == {"prevent", "prevent-2"})

    build_index(tiny_settings, HashingEmbedder())
    assert prevent_pair()["answers_differ"] is True
    same = "Stay hydrated and stretch before and after workouts."
    edit(tiny_settings, "prevent-2", answer=same)  # now the two say the same: a plain duplicate
    build_index(tiny_settings, HashingEmbedder())
    assert prevent_pair()["answers_differ"] is False and prevent_pair()["answer_overlap"] == 1.0
    read: list[str] = []
    words = duplicates_module._words
    monkeypatch.setattr(duplicates_module, "_words", lambda text: read.append(text) or words(text))
    edit(tiny_settings, "walking", answer="Walk for ten minutes, three times a day.")  # elsewhere
    build_index(tiny_settings, HashingEmbedder())
    assert same not in read  # the pair's answers are unchanged: their overlap is carried over
    assert prevent_pair()["answers_differ"] is False
    fresh = tiny_settings.model_copy(update={"index_dir": tiny_settings.index_dir.parent / "fresh"})
    build_index(fresh, HashingEmbedder())
    assert stored(tiny_settings)[1] == stored(fresh)[1]


def test_a_cache_with_nothing_new_is_not_written_again(tmp_path: Path) -> None:
    """A rebuild that embeds nothing and keeps every cached text leaves the file as it is (on 44k
    entries it is 92 MB); one that adds or drops a text writes it."""
    embedder = HashingEmbedder()
    first = EmbeddingCache(tmp_path, "key", embedder.dimension)
    first.encode(embedder, ["a", "b"])
    first.save(only_used=True)
    assert first.path is not None
    written = first.path.stat().st_ino

    again = EmbeddingCache(tmp_path, "key", embedder.dimension)
    counting = CountingEmbedder()
    again.encode(counting, ["b", "a"])
    again.save(only_used=True)
    assert counting.texts == [] and first.path.stat().st_ino == written  # not replaced
    assert np.allclose(
        EmbeddingCache(tmp_path, "key", embedder.dimension).encode(counting, ["a", "b"]), embedder.encode(["a", "b"])
    )

    fewer = EmbeddingCache(tmp_path, "key", embedder.dimension)
    fewer.encode(counting, ["a"])
    fewer.save(only_used=True)
    assert first.path.stat().st_ino != written  # "b" dropped: written
    more = EmbeddingCache(tmp_path, "key", embedder.dimension)
    more.encode(counting, ["a", "c"])
    kept = first.path.stat().st_ino
    more.save(only_used=True)
    assert counting.texts == ["c"] and first.path.stat().st_ino != kept  # "c" added: written


def test_a_damaged_cache_is_ignored(tiny_settings: Settings) -> None:
    embedder = CountingEmbedder()
    build_index(tiny_settings, embedder)
    for path in (tiny_settings.index_dir / CACHE_DIR).glob("embeddings-*.npz"):
        path.write_bytes(b"not a numpy file")
    embedder.texts.clear()
    build_index(tiny_settings, embedder)
    assert len(embedder.texts) > 200  # embedded again, and the build is served as usual
    assert load_index(tiny_settings.index_dir, model=embedder.name).manifest.entry_count > 0


def test_the_cache_keeps_only_the_current_texts(tmp_path: Path) -> None:
    embedder = HashingEmbedder()
    cache = EmbeddingCache(tmp_path, "key", embedder.dimension)
    cache.encode(embedder, ["a", "b", "c"])
    cache.save(keep=["a", "c"])
    again = EmbeddingCache(tmp_path, "key", embedder.dimension)
    counting = CountingEmbedder()
    vectors = again.encode(counting, ["a", "b", "c"])
    assert counting.texts == ["b"]
    assert np.allclose(vectors, embedder.encode(["a", "b", "c"]))
    other_model = EmbeddingCache(tmp_path, "other", embedder.dimension)
    other_model.encode(counting, ["a"])
    assert counting.texts == ["b", "a"]  # another model's vectors are never used


def test_known_pairs_give_the_same_near_duplicates_as_comparing_everything() -> None:
    rng = np.random.default_rng(7)
    base = rng.standard_normal((60, 16)).astype(np.float32)
    vectors = np.vstack([base, base[:20] + 0.05 * rng.standard_normal((20, 16)).astype(np.float32)])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    entries = [FaqEntry(id=f"e{i}", question=f"question {i}", answer=f"answer {i % 7}") for i in range(len(vectors))]
    before = find_near_duplicates(entries, vectors, threshold=0.95)
    assert before  # the perturbed copies are near duplicates

    changed = [3, 25, 61, 70]
    after_vectors = vectors.copy()
    after_vectors[changed] = vectors[[10, 40, 5, 11]] + 0.01  # edits make new near duplicates and break old ones
    after_vectors /= np.linalg.norm(after_vectors, axis=1, keepdims=True)
    positions = {entry.id: p for p, entry in enumerate(entries)}
    known = KnownPairs(
        unchanged=frozenset(p for p in range(len(entries)) if p not in changed),
        similar={(positions[d.first], positions[d.second]): d.question_similarity for d in before},
    )
    full = find_near_duplicates(entries, after_vectors, threshold=0.95)
    incremental = find_near_duplicates(entries, after_vectors, threshold=0.95, known=known)
    assert [(d.first, d.second, d.answers_differ) for d in incremental] == [
        (d.first, d.second, d.answers_differ) for d in full
    ]
    assert [d.question_similarity for d in incremental] == pytest.approx(
        [d.question_similarity for d in full], abs=1e-4
    )


def test_a_new_model_gets_its_own_cache(tiny_settings: Settings) -> None:
    build_index(tiny_settings, CountingEmbedder())
    other = CountingEmbedder()
    other._name = "test/another-model"
    build_index(tiny_settings.model_copy(update={"model": other.name}), other)
    assert len(other.texts) > 200  # nothing reused from the first model's vectors
    assert len(list((tiny_settings.index_dir / CACHE_DIR).glob("embeddings-*.npz"))) == 2
    assert (tiny_settings.index_dir / BUILDS_DIR).is_dir()


def test_vectors_of_another_arithmetic_get_their_own_cache(tiny_settings: Settings) -> None:
    """bfloat16 vectors differ from float32 ones in the fifth decimal: never mixed in one cache."""
    build_index(tiny_settings, CountingEmbedder())
    assert load_index(tiny_settings.index_dir, model=CountingEmbedder().name).manifest.encoder_precision == "float32"

    class BFloat16(CountingEmbedder):
        @property
        def precision(self) -> str:
            return "bfloat16"

    fast = BFloat16()
    build_index(tiny_settings, fast)
    assert len(fast.texts) > 200  # nothing reused from the float32 vectors
    assert load_index(tiny_settings.index_dir, model=fast.name).manifest.encoder_precision == "bfloat16"
    assert len(list((tiny_settings.index_dir / CACHE_DIR).glob("embeddings-*.npz"))) == 2


def test_new_files_under_the_same_model_name_get_their_own_cache(tiny_settings: Settings) -> None:
    """A local model folder retrained in place, or an upgraded model package: the name stays, the
    files' hash changes, and no vector the old files made is reused."""
    old = CountingEmbedder()
    old.weights_digest = "1" * 64
    assert build_index(tiny_settings, old).model_weights == "1" * 64
    assert index_is_current(tiny_settings, old) is None

    new = CountingEmbedder()
    new.weights_digest = "2" * 64
    reason = index_is_current(tiny_settings, new)
    assert reason == "the files of model 'test/hashing-embedder' changed since the index was built"
    assert build_index(tiny_settings, new).model_weights == "2" * 64
    assert len(new.texts) > 200  # every text embedded again
    assert len(list((tiny_settings.index_dir / CACHE_DIR).glob("embeddings-*.npz"))) == 2
    assert index_is_current(tiny_settings, new) is None
