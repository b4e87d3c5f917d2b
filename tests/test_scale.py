from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from qa_service.corpus.entries import FaqEntry
from qa_service.index import store as index_module
from qa_service.index.store import (
    BUILDS_DIR,
    MANIFEST,
    BuildContent,
    build_in_memory,
    current_build_id,
    load_index,
    make_vector_index,
    publish_build,
    search_threads,
    vector_index_kind,
)
from qa_service.model.embedder import SentenceTransformerEmbedder
from qa_service.tooling import scale as scale_module
from qa_service.tooling.scale import (
    dataset_texts,
    encode_cached,
    encode_dataset,
    main,
    measure_scale,
    measure_search,
    recall_at_k,
    synthetic_index,
    synthetic_vectors,
)
from tests.fakes import HashingEmbedder

DIM = 32
MODEL = "test/clustered"


def clustered(rows: int, *, seed: int = 7, centres: int = 60, noise: float = 0.35) -> npt.NDArray[np.float32]:
    """Unit vectors around a few random centres: structured like real embeddings, unlike random ones."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((centres, DIM)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    return np.vstack(list(synthetic_vectors(rows, DIM, seed, base, noise=noise, chunk_rows=500)))


def content_for(vectors: npt.NDArray[np.float32]) -> BuildContent:
    """One entry per vector (row i is entry i)."""
    return BuildContent(
        entries=[FaqEntry(id=f"e{i}", question=f"Question {i}?", answer="Answer.") for i in range(len(vectors))],
        vectors=vectors,
        row_entry=np.arange(len(vectors), dtype=np.int32),
        row_field=np.zeros(len(vectors), dtype=np.int8),
        model=MODEL,
        vector_fields=["question"],
        corpus_hash="sha256:test",
        excluded_ids=[],
        build_seconds=0.0,
    )


def exact_top(vectors: npt.NDArray[np.float32], queries: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.int64]:
    return np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :k]


def test_the_index_kind_switches_at_the_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    assert vector_index_kind(0) == "flat"
    assert vector_index_kind(index_module.EXACT_MAX_ROWS) == "flat"
    assert vector_index_kind(index_module.EXACT_MAX_ROWS + 1) == "hnsw"
    assert index_module.EXACT_MAX_ROWS >= 60_000  # medquad_liveqa (~60k rows) stays exact
    monkeypatch.setattr(index_module, "EXACT_MAX_ROWS", 100)
    vectors = clustered(101)
    assert build_in_memory(content_for(vectors[:100])).manifest.index_type == "flat"
    approximate = build_in_memory(content_for(vectors))
    assert approximate.manifest.index_type == "hnsw"
    assert approximate.vector_index.kind == "hnsw"


def test_an_approximate_build_saves_loads_and_finds_the_exact_neighbours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index_module, "EXACT_MAX_ROWS", 1000)
    vectors = clustered(4000)
    queries = clustered(200, seed=99)  # other points near the same centres
    manifest = publish_build(tmp_path / "index", content_for(vectors))
    assert manifest.index_type == "hnsw"
    assert manifest.index_params == {
        "M": index_module.HNSW_M,
        "ef_construction": index_module.HNSW_EF_CONSTRUCTION,
        "ef_search": index_module.HNSW_EF_SEARCH,
    }
    saved = json.loads((tmp_path / "index" / BUILDS_DIR / manifest.build_id / MANIFEST).read_text())
    assert saved["index_type"] == "hnsw" and saved["index_params"] == manifest.index_params
    loaded = load_index(tmp_path / "index", model=MODEL)
    assert loaded.vector_index.kind == "hnsw"
    found = [[hit.entry for hit in hits] for hits in loaded.search(queries, k=10)]
    assert recall_at_k(found, exact_top(vectors, queries, 10)) >= 0.98


def test_search_parameters_come_from_the_manifest_on_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "EXACT_MAX_ROWS", 100)
    monkeypatch.setattr(index_module, "HNSW_EF_SEARCH", 48)
    publish_build(tmp_path / "index", content_for(clustered(300)))
    monkeypatch.setattr(index_module, "HNSW_EF_SEARCH", 500)  # a later release changes the default
    loaded = load_index(tmp_path / "index", model=MODEL)
    assert loaded.manifest.index_params["ef_search"] == 48
    assert loaded.vector_index.faiss_index.hnsw.efSearch == 48


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_vectors_are_the_stored_vectors_for_every_kind(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vectors = clustered(500)
    assert np.array_equal(make_vector_index(vectors, kind=kind).vectors, vectors)
    monkeypatch.setattr(index_module, "EXACT_MAX_ROWS", 499 if kind == "hnsw" else 500)
    assert np.array_equal(build_in_memory(content_for(vectors)).vectors, vectors)
    publish_build(tmp_path / "index", content_for(vectors))
    loaded = load_index(tmp_path / "index", model=MODEL)
    assert loaded.manifest.index_type == kind
    assert loaded.vectors.shape == vectors.shape and np.array_equal(loaded.vectors, vectors)


def test_vectors_added_in_chunks_stay_readable() -> None:
    vectors = clustered(900)
    index = make_vector_index(vectors[:300], kind="hnsw")
    first = index.vectors.copy()
    index.add(vectors[300:])  # the storage grows (and may move)
    assert np.array_equal(first, vectors[:300])
    assert np.array_equal(index.vectors, vectors)


def test_exact_search_of_an_approximate_index_is_exhaustive() -> None:
    vectors = clustered(2000)
    queries = clustered(50, seed=5)
    _, ids = make_vector_index(vectors, kind="hnsw").search(queries, 10, exact=True)
    assert np.array_equal(ids, exact_top(vectors, queries, 10))


def test_a_large_batch_of_queries_finds_what_each_query_finds_alone() -> None:
    """Batches of BLAS_MIN_QUERIES or more take faiss' matrix-product path (a build's 200 off-topic
    questions): the same rows, best first, as the query-by-query loop that serves questions."""
    vectors = clustered(3000)
    queries = clustered(index_module.BLAS_MIN_QUERIES + 36, seed=5)
    index = make_vector_index(vectors, kind="flat")
    scores, ids = index.search(queries, 10)
    for number in range(len(queries)):
        alone_scores, alone_ids = index.search(queries[number : number + 1], 10)
        assert np.array_equal(ids[number], alone_ids[0])
        np.testing.assert_allclose(scores[number], alone_scores[0], atol=1e-5)


def test_a_manifest_that_names_the_wrong_kind_is_refused(tmp_path: Path) -> None:
    publish_build(tmp_path / "index", content_for(clustered(50)))  # flat
    path = tmp_path / "index" / BUILDS_DIR / current_build_id(tmp_path / "index") / MANIFEST
    manifest = json.loads(path.read_text())
    manifest["index_type"] = "hnsw"
    path.write_text(json.dumps(manifest))
    from qa_service.errors import IndexUnavailableError

    with pytest.raises(IndexUnavailableError, match="holds a IndexFlatIP, not a 'hnsw' index; rebuild"):
        load_index(tmp_path / "index", model=MODEL)


def test_recall_at_k_counts_the_exact_neighbours_found() -> None:
    assert recall_at_k([[1, 2, 3], [4, 5, 6]], [[1, 2, 3], [4, 5, 6]]) == 1.0
    assert recall_at_k([[1, 2, 9], [4, 9, 8]], [[1, 2, 3], [4, 5, 6]]) == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert recall_at_k([[3, 2, 1]], [[1, 2, 3]]) == 1.0  # order within the top k does not matter
    assert recall_at_k([[1, -1, -1]], [[1, 2, -1]]) == 0.5  # -1: no row
    assert recall_at_k([[1, 2, 3]], [[1, 5, 3]], k=2) == 0.5
    with pytest.raises(ValueError, match="2 approximate result lists but 1 exact ones"):
        recall_at_k([[1], [2]], [[1]])


def test_synthetic_vectors_are_repeatable_unit_vectors_near_their_base() -> None:
    base = clustered(10)
    one = np.vstack(list(synthetic_vectors(25, DIM, 3, base, noise=0.3, chunk_rows=7)))
    two = np.vstack(list(synthetic_vectors(25, DIM, 3, base, noise=0.3, chunk_rows=7)))
    assert one.dtype == np.float32 and one.shape == (25, DIM)
    assert np.array_equal(one, two)
    assert np.allclose(np.linalg.norm(one, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(one * base[np.arange(25) % 10], axis=1)
    assert cosines.min() > 0.85  # noise of norm 0.3: cos ~0.96
    random = np.vstack(list(synthetic_vectors(25, DIM, 3)))
    assert np.allclose(np.linalg.norm(random, axis=1), 1.0, atol=1e-5) and not np.allclose(random, one)
    assert synthetic_index(25, DIM, 3, base, noise=0.3).vectors.tolist() == one.tolist()


def test_measure_search_times_every_query_and_restores_the_threads() -> None:
    before = search_threads()
    figures = measure_search(clustered(300), clustered(40, seed=1), k=5, threads=1)
    assert figures["queries"] == 40 and figures["k"] == 5 and figures["threads"] == 1
    assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"] <= figures["max_ms"]
    assert search_threads() == before


def test_measure_scale_quick_returns_sane_figures() -> None:
    real = clustered(1500)
    questions = clustered(60, seed=11)
    figures = measure_scale(real_vectors=real, real_queries=questions, quick=True, rows=3000)
    assert figures["quick"] is True and figures["k"] == 10
    exact = figures["real"]
    assert exact["kind"] == "flat" and exact["rows"] == 1500 and exact["recall_at_10"] == 1.0
    for name in ("random", "clustered"):
        assert figures[name]["kind"] == "hnsw" and figures[name]["rows"] == 3000  # quick: approximate even small
    assert figures["clustered"]["recall_at_10"] >= 0.98 and figures["clustered"]["noise"] > 0
    assert 0 < figures["random"]["recall_at_10"] <= 1
    for name in ("real", "random", "clustered"):
        search = figures[name]["search"]
        assert search["queries"] == (100 if name == "random" else 60)  # quick: at most 100 queries
        assert 0 < search["p50_ms"] <= search["p99_ms"]
        assert figures[name]["build_seconds"] >= 0
        assert 0 < figures[name]["rss_mb"] <= figures[name]["peak_rss_mb"] <= figures["peak_rss_mb"]


def test_kept_synthetic_indexes_are_read_back_instead_of_built(tmp_path: Path) -> None:
    real = clustered(800)
    questions = clustered(40, seed=11)
    options = {"real_vectors": real, "real_queries": questions, "quick": True, "rows": 2000, "keep_dir": tmp_path}
    first = measure_scale(indexes=["clustered", "random"], **options)  # type: ignore[arg-type]
    assert len(list(tmp_path.glob("index-*.faiss"))) == 2
    again = measure_scale(indexes=["clustered", "random"], **options)  # type: ignore[arg-type]
    for name in ("clustered", "random"):
        assert first[name]["index_reused"] is False and again[name]["index_reused"] is True
        assert again[name]["build_seconds"] == first[name]["build_seconds"]  # as recorded when built
        assert again[name]["recall_at_10"] == first[name]["recall_at_10"]  # the same index
        assert again[name]["kind"] == "hnsw" and again[name]["params"] == first[name]["params"]
    other = measure_scale(indexes=["clustered"], **{**options, "rows": 2100})  # type: ignore[arg-type]
    assert other["clustered"]["index_reused"] is False  # other rows: another index
    for kept in tmp_path.glob("index-*.faiss"):
        kept.write_bytes(b"garbage")
    rebuilt = measure_scale(indexes=["random"], **options)  # type: ignore[arg-type]
    assert rebuilt["random"]["index_reused"] is False and rebuilt["random"]["rows"] == 2000


def test_a_kept_index_is_searched_as_configured_now_and_built_anew_when_its_build_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = {"real_vectors": clustered(800), "real_queries": clustered(40, seed=11), "rows": 2000}
    options |= {"quick": True, "keep_dir": tmp_path, "indexes": ["clustered"]}
    first = measure_scale(**options)["clustered"]  # type: ignore[arg-type]
    assert first["params"]["ef_search"] == index_module.HNSW_EF_SEARCH
    monkeypatch.setattr(index_module, "HNSW_EF_SEARCH", 64)  # a search setting: the kept index serves
    searched = measure_scale(**options)["clustered"]  # type: ignore[arg-type]
    assert searched["index_reused"] is True and searched["params"]["ef_search"] == 64
    monkeypatch.setattr(index_module, "HNSW_EF_CONSTRUCTION", 40)  # a build setting: another index
    rebuilt = measure_scale(**options)["clustered"]  # type: ignore[arg-type]
    assert rebuilt["index_reused"] is False and rebuilt["params"]["ef_construction"] == 40
    assert len(list(tmp_path.glob("index-*.faiss"))) == 2


def test_measure_scale_skips_what_it_has_no_vectors_for() -> None:
    figures = measure_scale(quick=True, rows=500, indexes=["real", "random"])
    assert figures["real"] == {"skipped": "no real vectors and queries given"}
    assert figures["random"]["rows"] == 500 and figures["random"]["dimension"] == 384
    assert "clustered" not in figures
    with pytest.raises(ValueError, match="unknown indexes"):
        measure_scale(quick=True, indexes=["huge"])


def test_encoded_vectors_are_cached_by_model_and_texts(tmp_path: Path) -> None:
    embedder = HashingEmbedder()
    first = encode_cached(embedder, ["Is it safe?", "How long?"], tmp_path)
    again = encode_cached(embedder, ["Is it safe?", "How long?"], tmp_path)
    assert embedder.calls == 1 and np.array_equal(first, again)
    other = encode_cached(embedder, ["How long?", "Is it safe?"], tmp_path)  # other texts (order): encoded
    assert embedder.calls == 2 and np.array_equal(other, first[::-1])
    assert encode_cached(HashingEmbedder(name="other/model"), ["Is it safe?", "How long?"], tmp_path) is not None
    assert len(list(tmp_path.glob("vectors-*.npy"))) == 3


def test_encode_dataset_embeds_what_a_build_indexes(tmp_path: Path) -> None:
    faq = tmp_path / "faq.jsonl"
    rows = [
        {"id": "a", "question": "How long do spasms last?", "answer": "A few days.", "source": "https://x.org"},
        {"id": "b", "question": "Can I drive?", "answer": "", "source": "https://x.org"},  # question only
    ]
    faq.write_text("".join(json.dumps(row) + "\n" for row in rows))
    queries = tmp_path / "queries.dev.jsonl"
    queries.write_text('{"query": "spasm length", "relevant": ["a"]}\n{"query": "spasm length", "relevant": []}\n')
    vectors, questions = encode_dataset(HashingEmbedder(), faq, [queries])
    assert vectors.shape == (3, 256)  # a: question, question+answer; b: question
    assert questions.shape == (1, 256)  # distinct questions


def test_the_command_prints_the_figures_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quick", "--rows", "400", "--queries", "20", "--only", "random"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["random"]["rows"] == 400 and figures["random"]["search"]["queries"] == 20


@pytest.mark.model
def test_the_dataset_is_encoded_in_a_child_process_and_only_read_back_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, real_embedder: SentenceTransformerEmbedder
) -> None:
    """The figures of a first run are the index's: the model never loads in the measuring process."""
    dataset, cache = tmp_path / "set", tmp_path / "cache"
    dataset.mkdir()
    rows = [
        {"id": "a", "question": "How long do back spasms last?", "answer": "A few days.", "source": "https://x.org"},
        {"id": "b", "question": "Can heat help a spasm?", "answer": "Yes, often.", "source": "https://x.org"},
        {"id": "c", "question": "When should I see a doctor?", "answer": "", "source": "https://x.org"},
    ]
    (dataset / "faq.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (dataset / "queries.dev.jsonl").write_text('{"query": "spasm duration", "relevant": ["a"]}\n')

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded in the measuring process")

    monkeypatch.setattr(SentenceTransformerEmbedder, "load", refuse)  # a spawned child imports its own copy
    command = ["--quick", "--rows", "300", "--only", "real", "--dataset", str(dataset), "--cache", str(cache)]
    assert main(command) == 0
    monkeypatch.setattr(scale_module, "_encode_into", refuse)  # cached now: no child is needed
    rows_read, questions_read = scale_module.encode_dataset_apart(
        "all-MiniLM-L6-v2", dataset / "faq.jsonl", [dataset / "queries.dev.jsonl"], cache
    )
    monkeypatch.undo()
    texts, questions = dataset_texts(dataset / "faq.jsonl", [dataset / "queries.dev.jsonl"])
    assert rows_read.shape == (5, 384) and questions_read.shape == (1, 384)  # a, b: question and q+a; c: question
    np.testing.assert_allclose(rows_read, real_embedder.encode(texts), atol=2e-3)
    np.testing.assert_allclose(questions_read, real_embedder.encode(questions), atol=2e-3)
