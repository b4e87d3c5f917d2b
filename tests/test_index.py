from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qa_service.build.pipeline import build_index, entry_texts, prepare_build
from qa_service.corpus.entries import load_corpus
from qa_service.errors import IndexMismatchError, IndexUnavailableError
from qa_service.index import store as index_module
from qa_service.index.store import current_build_id, list_builds, load_index, set_current_build
from qa_service.settings import Settings
from tests.conftest import make_settings
from tests.fakes import HashingEmbedder


def test_build_writes_a_complete_manifest(built_settings: Settings) -> None:
    index = load_index(built_settings.index_dir, model=HashingEmbedder().name)
    manifest = index.manifest
    assert manifest.format_version == 2
    assert manifest.model == "test/hashing-embedder"
    assert manifest.dimension == 256 and manifest.metric == "cosine"
    assert manifest.entry_count == 7  # the advert is left out
    assert manifest.excluded_ids == ["gadget"]
    assert manifest.vector_count == 7 + 1 + 7  # questions, one alternate, question+answer
    corpus = load_corpus(built_settings.corpus_dir)
    assert manifest.corpus_hash.startswith("sha256:") and len(manifest.corpus_hash) == 71
    assert manifest.corpus_hash != corpus.content_hash()  # hashes what is served, not the excluded advert
    assert {"python", "faiss-cpu", "numpy"} <= set(manifest.libraries)
    assert set(manifest.files) == {
        "entries.json",
        "rows.npz",
        "vectors.faiss",
        "keywords.npz",
        "keywords.vocab.json",
        "near_duplicates.json",
    }
    assert manifest.keyword_fields == ["question+alternates", "question+answer"]
    assert manifest.fine_tune is None  # the fake model cannot be trained; the build goes on without
    assert manifest.calibration is not None and set(manifest.calibration) == {
        "offtopic_mean",
        "offtopic_std",
        "offtopic_p95",
        "offtopic_max",
        "question_mean",
        "question_std",
        "qa_mean",
        "qa_std",
        "uncovered_count",
        "uncovered_mean",
        "uncovered_std",
        "uncovered_p95",
    }
    assert manifest.calibration["uncovered_count"] >= 100  # the tiny corpus lacks nearly every reference topic
    assert manifest.near_duplicate_pairs == 1 and manifest.near_duplicates_differing == 1  # prevent / prevent-2
    assert manifest.build_settings["exclude_flags"] == ["advert"]
    assert manifest.built_at.endswith("+00:00")
    assert index.entry("spasm-duration") is not None and index.entry("gadget") is None


def test_entry_texts_cover_question_alternates_and_answer(tiny_settings: Settings) -> None:
    entry = load_corpus(tiny_settings.corpus_dir).entries[0]
    assert entry_texts(entry) == [
        ("question", "How long do back spasms last?"),
        ("alternate", "When will my back spasm go away?"),
        ("qa", "How long do back spasms last?\nMost episodes of back spasms last for only a few days."),
    ]


def test_search_returns_distinct_entries_best_first(built_settings: Settings, fake_embedder: HashingEmbedder) -> None:
    index = load_index(built_settings.index_dir, model=fake_embedder.name)
    (hits,) = index.search(fake_embedder.encode(["When will my back spasm go away?"]), k=3)
    assert index.entries[hits[0].entry].id == "spasm-duration"
    assert hits[0].field == "alternate" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert len({h.entry for h in hits}) == len(hits) == 3
    assert hits[0].score >= hits[1].score >= hits[2].score
    questions = ["When will my back spasm go away?", "heat or ice", "parking at the clinic"]
    vectors = fake_embedder.encode(questions)
    found = index.candidate_entries(vectors, k=4)  # what the ranking uses: the same entries, no objects
    assert [entries.tolist() for entries in found] == [[h.entry for h in hits] for hits in index.search(vectors, k=4)]


@pytest.mark.parametrize("k", [1, 4, 7, 50])
def test_a_small_flat_index_ranks_entries_from_every_score_as_its_search_would(
    built_settings: Settings, fake_embedder: HashingEmbedder, monkeypatch: pytest.MonkeyPatch, k: int
) -> None:
    index = load_index(built_settings.index_dir, model=fake_embedder.name)
    assert index.vector_index.kind == "flat" and len(index.vectors) <= index_module.SCORE_ALL_MAX_ROWS
    questions = ["When will my back spasm go away?", "heat or ice", "parking at the clinic", "stretches"]
    vectors = fake_embedder.encode(questions)
    every_score = [entries.tolist() for entries in index.candidate_entries(vectors, k=k)]
    monkeypatch.setattr(index_module, "SCORE_ALL_MAX_ROWS", 0)  # as a larger index: faiss's search
    searched = [entries.tolist() for entries in index.candidate_entries(vectors, k=k)]
    exact = vectors @ index.vectors.T
    for row, mine, theirs in zip(exact, every_score, searched, strict=True):
        assert len(mine) == len(theirs) == min(k, len(index.entries))
        best = {entry: float(max(row[index.row_entry == entry])) for entry in range(len(index.entries))}
        assert [best[e] for e in mine] == sorted((best[e] for e in mine), reverse=True)  # best first
        assert [best[e] for e in mine] == pytest.approx([best[e] for e in theirs], abs=1e-6)
        # the same entries, except that equal scores at the k-th place may keep either
        last = best[mine[-1]]
        assert {e for e in mine if best[e] > last + 1e-6} == {e for e in theirs if best[e] > last + 1e-6}


def test_each_query_gets_its_own_best_row_per_entry_and_unfilled_rows_are_skipped(
    built_settings: Settings, fake_embedder: HashingEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = load_index(built_settings.index_dir, model=fake_embedder.name)
    vectors = fake_embedder.encode(["When will my back spasm go away?", "heat or ice", "parking at the clinic"])
    scores, ids = index.vector_index.search(vectors, len(index.vectors))
    for number, rows in enumerate(ids):  # each query on its own: entries in the order of their best (first) row
        expected = list(dict.fromkeys(int(index.row_entry[row]) for row in rows))[:3]
        assert index.candidate_entries(vectors[number : number + 1], k=3)[0].tolist() == expected
        assert index.candidate_entries(vectors, k=3)[number].tolist() == expected  # and among the others
    # an approximate search that fills fewer rows than asked pads with -1: those rows are not entries
    ids[:, 2:] = -1
    monkeypatch.setattr(index.vector_index, "kind", "hnsw")
    monkeypatch.setattr(index.vector_index, "search", lambda queries, k: (scores[:, :k], ids[:, :k]))
    found = index.candidate_entries(vectors, k=5)
    assert [entries.tolist() for entries in found] == [
        list(dict.fromkeys(int(index.row_entry[r]) for r in rows[:2])) for rows in ids
    ]


def test_a_failed_build_leaves_the_previous_index_serving(
    built_settings: Settings, fake_embedder: HashingEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = current_build_id(built_settings.index_dir)

    def broken_write(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(index_module.faiss, "write_index", broken_write)
    with pytest.raises(OSError, match="disk full"):
        build_index(built_settings, fake_embedder)
    assert current_build_id(built_settings.index_dir) == before
    assert list_builds(built_settings.index_dir) == [before]
    assert not [p for p in (built_settings.index_dir / "builds").iterdir() if p.name.startswith(".tmp")]
    assert load_index(built_settings.index_dir, model=fake_embedder.name).manifest.build_id == before


def test_an_interrupted_build_folder_is_never_served_and_is_cleaned(
    built_settings: Settings, fake_embedder: HashingEmbedder
) -> None:
    before = current_build_id(built_settings.index_dir)
    stale = built_settings.index_dir / "builds" / ".tmp-20990101T000000Z-dead00"
    stale.mkdir()
    (stale / "entries.json").write_text("[")  # what a killed build leaves behind
    assert load_index(built_settings.index_dir, model=fake_embedder.name).manifest.build_id == before
    build_index(built_settings, fake_embedder)
    assert not stale.exists()


def test_old_builds_are_pruned_but_kept_for_rollback(tiny_settings: Settings, fake_embedder: HashingEmbedder) -> None:
    settings = tiny_settings.model_copy(update={"keep_builds": 2})
    ids = [build_index(settings, fake_embedder).build_id for _ in range(3)]
    assert list_builds(settings.index_dir) == ids[1:]
    set_current_build(settings.index_dir, ids[1])
    assert load_index(settings.index_dir, model=fake_embedder.name).manifest.build_id == ids[1]
    with pytest.raises(IndexUnavailableError, match="no such complete build"):
        set_current_build(settings.index_dir, ids[0])


def test_missing_index_says_how_to_build(tmp_path: Path) -> None:
    with pytest.raises(IndexUnavailableError, match="no index has been built yet; run `qa-service build`"):
        load_index(tmp_path / "index", model="m")


def test_model_mismatch_is_refused_with_a_clear_message(built_settings: Settings) -> None:
    with pytest.raises(IndexMismatchError) as err:
        load_index(built_settings.index_dir, model="sentence-transformers/all-MiniLM-L6-v2")
    message = str(err.value)
    assert "built with model 'test/hashing-embedder'" in message
    assert "configured for 'sentence-transformers/all-MiniLM-L6-v2'" in message
    assert "rebuild with `qa-service build`" in message


def test_dimension_mismatch_is_refused(built_settings: Settings) -> None:
    from qa_service.answering.engine import load_engine

    other = HashingEmbedder(dimension=128)  # same name, other vector size
    with pytest.raises(IndexMismatchError, match="dimension 256 but model 'test/hashing-embedder' produces 128"):
        load_engine(built_settings, other)


def test_corrupt_build_is_refused(built_settings: Settings, fake_embedder: HashingEmbedder) -> None:
    build_dir = built_settings.index_dir / "builds" / current_build_id(built_settings.index_dir)
    entries = json.loads((build_dir / "entries.json").read_text())
    entries[0]["answer"] = "tampered"
    (build_dir / "entries.json").write_text(json.dumps(entries))
    with pytest.raises(IndexUnavailableError, match="checksum mismatch"):
        load_index(built_settings.index_dir, model=fake_embedder.name)


def test_unknown_format_version_is_refused(built_settings: Settings, fake_embedder: HashingEmbedder) -> None:
    build_dir = built_settings.index_dir / "builds" / current_build_id(built_settings.index_dir)
    manifest = json.loads((build_dir / "manifest.json").read_text())
    manifest["format_version"] = 99
    (build_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match="index format 99 is not supported"):
        load_index(built_settings.index_dir, model=fake_embedder.name)


def test_current_pointing_nowhere_is_reported(built_settings: Settings, fake_embedder: HashingEmbedder) -> None:
    (built_settings.index_dir / "CURRENT").write_text("20000101T000000Z-gone00\n")
    with pytest.raises(IndexUnavailableError, match="does not exist"):
        load_index(built_settings.index_dir, model=fake_embedder.name)


def test_empty_prepare_has_the_model_dimension(fake_embedder: HashingEmbedder) -> None:
    content = prepare_build([], fake_embedder, Settings(_env_file=None))  # type: ignore[call-arg]
    assert content.vectors.shape == (0, 256) and content.vectors.dtype == np.float32


def test_corpus_errors_stop_the_build_before_anything_is_written(
    tmp_path: Path, fake_embedder: HashingEmbedder
) -> None:
    settings = make_settings(tmp_path)
    settings.corpus_dir.mkdir()
    (settings.corpus_dir / "bad.yaml").write_text("version: 1\nentries:\n- id: a\n  question: Q?\n  answer: ''\n")
    from qa_service.errors import CorpusError

    with pytest.raises(CorpusError, match=r"bad\.yaml:3: entry 'a': answer is empty"):
        build_index(settings, fake_embedder)
    assert not settings.index_dir.exists()


def test_a_corpus_with_every_entry_excluded_does_not_replace_the_served_index(
    built_settings: Settings, fake_embedder: HashingEmbedder
) -> None:
    from qa_service.errors import CorpusError

    served = current_build_id(built_settings.index_dir)
    for path in built_settings.corpus_dir.glob("*.yaml"):
        path.unlink()
    (built_settings.corpus_dir / "ads.yaml").write_text(
        "version: 1\nentries:\n- id: ad\n  question: Buy now?\n  answer: Yes.\n  flags: [advert]\n"
    )
    with pytest.raises(CorpusError, match=r"all 1 entries carry a flag in QA_EXCLUDE_FLAGS \(advert\)"):
        build_index(built_settings, fake_embedder)
    assert current_build_id(built_settings.index_dir) == served
    assert load_index(built_settings.index_dir, model=fake_embedder.name).entries


def test_a_second_build_into_the_same_folder_is_refused_while_one_runs(
    built_settings: Settings, fake_embedder: HashingEmbedder
) -> None:
    import fcntl

    from qa_service.build.pipeline import BUILD_LOCK
    from qa_service.errors import BuildInProgressError

    served = current_build_id(built_settings.index_dir)
    with (built_settings.index_dir / BUILD_LOCK).open("a") as running:  # as a build in another process holds it
        fcntl.flock(running.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(BuildInProgressError, match="another build into this folder is running"):
            build_index(built_settings, fake_embedder)
        assert current_build_id(built_settings.index_dir) == served
    build_index(built_settings, fake_embedder)  # the lock is gone with its holder
    assert current_build_id(built_settings.index_dir) != served


def test_a_manifest_from_before_index_kinds_still_loads(
    built_settings: Settings, fake_embedder: HashingEmbedder
) -> None:
    build_dir = built_settings.index_dir / "builds" / current_build_id(built_settings.index_dir)
    manifest = json.loads((build_dir / "manifest.json").read_text())
    del manifest["index_params"]  # written before index kinds existed
    (build_dir / "manifest.json").write_text(json.dumps(manifest))
    index = load_index(built_settings.index_dir, model=fake_embedder.name)
    assert index.manifest.index_type == "flat" and index.manifest.index_params == {}
    (hits,) = index.search(fake_embedder.encode(["When will my back spasm go away?"]), k=1)
    assert index.entries[hits[0].entry].id == "spasm-duration"


def test_an_approximate_index_ranks_like_the_exact_one(
    tiny_settings: Settings, fake_embedder: HashingEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qa_service.answering.retrieval import RankingWeights, Retriever

    questions = ["When will my back spasm go away?", "Can I prevent spasms?", "Is surgery needed?"]
    vectors = fake_embedder.encode(questions)
    build_index(tiny_settings, fake_embedder)
    exact = load_index(tiny_settings.index_dir, model=fake_embedder.name)
    monkeypatch.setattr(index_module, "EXACT_MAX_ROWS", 2)
    build_index(tiny_settings, fake_embedder)
    approximate = load_index(tiny_settings.index_dir, model=fake_embedder.name)
    assert (exact.manifest.index_type, approximate.manifest.index_type) == ("flat", "hnsw")
    assert np.array_equal(approximate.vectors, exact.vectors)  # exact rescoring reads the same vectors
    weights = RankingWeights()
    assert Retriever(approximate, weights).rank(vectors, questions, k=5) == Retriever(exact, weights).rank(
        vectors, questions, k=5
    )
