"""Search time and recall at scale, without the encoder (issue 6, "Speed and scale").

The benchmark harness calls ``measure_scale``; it returns, per index measured:

- ``real``: the rows of a real FAQ (medquad_liveqa: 44k entries, ~60k rows of question and question +
  answer vectors from the real model), searched with real consumer questions;
- ``random``: N synthetic random unit vectors (1M by default), searched with random unit queries;
- ``clustered``: N synthetic vectors made from the real rows plus small Gaussian noise (renormalised,
  cycled to N rows), searched with the real questions, which are held out (not among the rows).

and for each: the index kind chosen by row count (see ``qa_service.index.store.EXACT_MAX_ROWS``), its
parameters, build seconds, single-query search time (p50/p95/p99 ms, as the service searches: one
question per call, faiss' default threads), recall@k of the index against exact search (an exhaustive
inner-product search over the same stored vectors; 1.0 by construction for an exact index), and the
process' resident memory (VmRSS now, VmHWM peak, and VmRSS before the index was built).

Random unit vectors in 384 dimensions have no neighbourhood structure (all points are about equally
far apart): the worst case for any approximate index, reported for honesty. Real embeddings are
clustered, which ``clustered`` imitates; the targets are judged on it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from qa_service.index.store import (
    FaqIndex,
    VectorIndex,
    library_versions,
    make_vector_index,
    new_vector_index,
    read_vector_index,
    search_threads,
    set_search_threads,
    write_vector_index,
)
from qa_service.model.embedder import Embedder, canonical_model_name

logger = logging.getLogger(__name__)

Vectors = npt.NDArray[np.float32]

FULL_ROWS = 1_000_000
QUICK_ROWS = 10_000  # quick mode: a CI smoke run in seconds (approximate indexes all the same)
CLUSTER_NOISE = 0.5  # norm of the Gaussian noise added to a real vector (before renormalising); cos ~0.9
CHUNK_ROWS = 1 << 16  # synthetic rows are generated and added in chunks, never all at once
INDEXES = ("real", "random", "clustered")
SEARCH_PARAMS = ("ef_search",)  # index parameters that apply when searching, not when building


def memory_mb() -> dict[str, float]:
    """This process' resident memory now (VmRSS) and at its peak so far (VmHWM), in MiB (Linux)."""
    values = {"rss_mb": float("nan"), "peak_rss_mb": float("nan")}
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        return values
    for line in status.splitlines():
        name, _, rest = line.partition(":")
        key = {"VmRSS": "rss_mb", "VmHWM": "peak_rss_mb"}.get(name)
        if key is not None:
            values[key] = round(int(rest.split()[0]) / 1024, 1)  # reported in kB
    return values


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/mean/max in milliseconds."""
    ms = np.asarray(seconds, dtype=np.float64) * 1000
    if not len(ms):
        return {}
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {
        "p50_ms": round(float(p50), 3),
        "p95_ms": round(float(p95), 3),
        "p99_ms": round(float(p99), 3),
        "mean_ms": round(float(ms.mean()), 3),
        "max_ms": round(float(ms.max()), 3),
    }


def measure_search(
    index: FaqIndex | VectorIndex | Vectors,
    queries: Vectors,
    *,
    k: int = 10,
    warmup: int = 20,
    threads: int | None = None,
) -> dict[str, Any]:
    """Time of single-query searches (one query per call, as the service asks), k results each.

    ``index``: a loaded FaqIndex (its search, distinct entries), a VectorIndex (rows), or raw vectors
    (searched exactly). ``threads``: faiss (OpenMP) threads during the run; None keeps the current
    setting, which the service never changes (all cores)."""
    searchable = make_vector_index(index, kind="flat") if isinstance(index, np.ndarray) else index
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    previous = search_threads()
    if threads is not None:
        set_search_threads(threads)
    try:
        used = search_threads()
        for number in range(min(warmup, len(queries))):
            searchable.search(queries[number : number + 1], k)
        timings = []
        for number in range(len(queries)):
            query = queries[number : number + 1]
            started = time.perf_counter()
            searchable.search(query, k)
            timings.append(time.perf_counter() - started)
    finally:
        set_search_threads(previous)
    return {"queries": len(queries), "k": k, "threads": used, **latency_summary(timings)}


def recall_at_k(approx_ids: npt.ArrayLike, exact_ids: npt.ArrayLike, k: int | None = None) -> float:
    """Mean share of each query's exact top ``k`` ids that the approximate top ``k`` also holds (-1: none)."""
    approx = np.asarray(approx_ids)
    exact = np.asarray(exact_ids)
    if approx.shape[0] != exact.shape[0]:
        raise ValueError(f"{approx.shape[0]} approximate result lists but {exact.shape[0]} exact ones")
    k = k or exact.shape[1]
    shares = []
    for found, truth in zip(approx[:, :k], exact[:, :k], strict=True):
        wanted = {int(row) for row in truth if row >= 0}
        if wanted:
            shares.append(len(wanted.intersection(int(row) for row in found if row >= 0)) / len(wanted))
    return float(np.mean(shares)) if shares else 1.0


def synthetic_vectors(
    n: int,
    dim: int,
    seed: int,
    base_vectors: Vectors | None = None,
    *,
    noise: float = CLUSTER_NOISE,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[Vectors]:
    """``n`` float32 unit vectors in chunks, the same for the same arguments.

    Without ``base_vectors``: uniformly random directions. With them: row i is base row ``i % len(base)``
    plus Gaussian noise of expected norm ``noise``, renormalised (clusters around the real vectors)."""
    if base_vectors is not None and (base_vectors.ndim != 2 or base_vectors.shape[1] != dim or not len(base_vectors)):
        raise ValueError(f"base vectors must have shape (m > 0, {dim})")
    rng = np.random.default_rng(seed)
    scale = np.float32(noise / np.sqrt(dim))
    for start in range(0, n, chunk_rows):
        rows = min(chunk_rows, n - start)
        chunk = rng.standard_normal((rows, dim), dtype=np.float32)
        if base_vectors is not None:
            chunk *= scale
            chunk += base_vectors[np.arange(start, start + rows) % len(base_vectors)]
        chunk /= np.linalg.norm(chunk, axis=1, keepdims=True)
        yield chunk


def synthetic_index(
    n: int,
    dim: int,
    seed: int,
    base_vectors: Vectors | None = None,
    *,
    noise: float = CLUSTER_NOISE,
    kind: str | None = None,
    progress: bool = False,
) -> VectorIndex:
    """A vector index over ``synthetic_vectors(n, dim, seed, base_vectors)``, added chunk by chunk (the
    vectors are never held twice). Its kind is chosen by ``n`` as for a real build, unless ``kind``."""
    index = new_vector_index(dim, n, kind=kind)
    chunks = synthetic_vectors(n, dim, seed, base_vectors, noise=noise)
    with tqdm(total=n, unit="row", desc=f"building {index.kind}", disable=not progress, leave=False) as bar:
        for chunk in chunks:
            index.add(chunk)
            bar.update(len(chunk))
    return index


def random_queries(count: int, dim: int, seed: int) -> Vectors:
    return next(synthetic_vectors(count, dim, seed, chunk_rows=max(1, count)))


def measure_index(index: VectorIndex, queries: Vectors, *, k: int = 10) -> dict[str, Any]:
    """Search time, recall@k against an exhaustive search of the same vectors, and memory, for one index."""
    search = measure_search(index, queries, k=k)
    _, approx = index.search(queries, k)
    _, exact = index.search(queries, k, exact=True)
    return {
        "rows": len(index),
        "dimension": index.dimension,
        "kind": index.kind,
        "params": dict(index.params),
        "search": search,
        f"recall_at_{k}": round(recall_at_k(approx, exact, k), 4),
    }


def _measured(
    build: Callable[[], VectorIndex],
    queries: Vectors,
    *,
    k: int,
    keep: Path | None = None,
    search_params: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """Build an index (timed, memory before and after), measure it, and let it go.

    ``keep``: a file for the built index. When it exists the index is read from it instead of built
    (the 1M-row HNSW build takes ~7 minutes on 2 cores; its search is what is measured), and the
    build time reported is the one recorded when it was built. ``search_params`` (e.g. ``ef_search``)
    apply to a read-back index over those recorded: searching is measured as configured now."""
    before = memory_mb()["rss_mb"]
    started = time.perf_counter()
    index, seconds, reused = None, 0.0, False
    if keep is not None and keep.is_file() and keep.with_suffix(".json").is_file():
        try:
            recorded = json.loads(keep.with_suffix(".json").read_text(encoding="utf-8"))
            params = {**recorded["params"], **(search_params or {})}
            index = read_vector_index(keep, recorded["kind"], params)
            seconds, reused = float(recorded["build_seconds"]), True
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("building again: cannot read the kept index %s: %s", keep, exc)
    if index is None:
        index = build()
        seconds = time.perf_counter() - started
        if keep is not None:
            keep.parent.mkdir(parents=True, exist_ok=True)
            write_vector_index(index, keep.with_suffix(".tmp"))
            keep.with_suffix(".tmp").replace(keep)
            recorded = {"kind": index.kind, "params": dict(index.params), "build_seconds": round(seconds, 2)}
            keep.with_suffix(".json").write_text(json.dumps(recorded), encoding="utf-8")
    figures = measure_index(index, queries, k=k)
    memory = memory_mb()
    del index
    return {**figures, "build_seconds": round(seconds, 2), "index_reused": reused, "rss_before_mb": before, **memory}


def kept_index_path(cache_dir: Path, name: str, *parts: object, base: Vectors | None = None) -> Path:
    """Where a synthetic index is kept between runs: named by everything that makes it what it is."""
    digest = hashlib.sha256(
        "\x1f".join(str(part) for part in (name, *parts, library_versions().get("faiss-cpu"))).encode()
    )
    if base is not None:
        digest.update(np.ascontiguousarray(base).tobytes())
    return cache_dir / f"index-{name}-{digest.hexdigest()[:20]}.faiss"


def measure_scale(
    *,
    real_vectors: Vectors | None = None,
    real_queries: Vectors | None = None,
    rows: int | None = None,
    query_count: int | None = None,
    k: int = 10,
    seed: int = 0,
    noise: float = CLUSTER_NOISE,
    quick: bool = False,
    indexes: Sequence[str] = INDEXES,
    progress: bool = False,
    keep_dir: Path | None = None,
) -> dict[str, Any]:
    """Figures for the ``indexes`` named (see the module docstring); the harness calls this.

    ``real_vectors``: the row vectors of a real FAQ index (e.g. medquad_liveqa's, as ``encode_dataset``
    gives them, or ``FaqIndex.vectors`` of a built index); ``real_queries``: real question vectors not
    among them. Without both, ``real`` and ``clustered`` are skipped. ``rows``: synthetic rows (1M; 10k
    when ``quick``, which also uses at most 100 queries and builds the synthetic indexes approximate so
    that a smoke run exercises that path). ``query_count``: at most this many queries (default: all the
    real ones; 1000 random). Synthetic indexes are built in chunks and freed after use;
    memory figures are those of this process (run one index per process for clean peaks).
    ``keep_dir``: keep the synthetic indexes there and read them back next time (see ``_measured``)."""
    unknown = set(indexes) - set(INDEXES)
    if unknown:
        raise ValueError(f"unknown indexes {sorted(unknown)}; expected some of {', '.join(INDEXES)}")
    rows = rows or (QUICK_ROWS if quick else FULL_ROWS)
    if quick:
        query_count = min(query_count or 100, 100)
    kind = "hnsw" if quick else None
    results: dict[str, Any] = {"k": k, "seed": seed, "quick": quick, "search_threads": search_threads()}
    real = None
    if real_vectors is not None and real_queries is not None and len(real_vectors) and len(real_queries):
        real = (
            np.ascontiguousarray(real_vectors, dtype=np.float32),
            np.ascontiguousarray(real_queries[: query_count or len(real_queries)], dtype=np.float32),
        )
    dim = real[0].shape[1] if real is not None else 384
    # a synthetic index as it would be made today: its kind and build parameters name a kept copy
    # (so changed defaults build anew), its search parameters apply to one read back
    made = new_vector_index(dim, rows, kind=kind)
    built_as = [made.kind, *sorted((key, value) for key, value in made.params.items() if key not in SEARCH_PARAMS)]
    searched_as = {key: value for key, value in made.params.items() if key in SEARCH_PARAMS}
    del made
    for name in indexes:
        if name == "random":
            build = partial(synthetic_index, rows, dim, seed, kind=kind, progress=progress)
            keep = kept_index_path(keep_dir, name, rows, dim, seed, *built_as) if keep_dir else None
            queries = random_queries(query_count or 1000, dim, seed + 1)
            results[name] = _measured(build, queries, k=k, keep=keep, search_params=searched_as)
        elif real is None:
            results[name] = {"skipped": "no real vectors and queries given"}
        elif name == "real":
            results[name] = _measured(partial(make_vector_index, real[0]), real[1], k=k)
        else:
            build = partial(synthetic_index, rows, dim, seed, real[0], noise=noise, kind=kind, progress=progress)
            keep = (
                kept_index_path(keep_dir, name, rows, dim, seed, noise, *built_as, base=real[0]) if keep_dir else None
            )
            measured = _measured(build, real[1], k=k, keep=keep, search_params=searched_as)
            results[name] = {**measured, "noise": noise}
        logger.info("scale %s: %s", name, results[name])
    results["peak_rss_mb"] = memory_mb()["peak_rss_mb"]
    return results


def cache_path(cache_dir: Path, model: str, texts: Sequence[str]) -> Path:
    """Where ``encode_cached`` keeps the vectors of ``texts`` by ``model`` (any spelling of its name)."""
    digest = hashlib.sha256(canonical_model_name(model).encode())
    for text in texts:
        digest.update(b"\0" + text.encode())
    return cache_dir / f"vectors-{digest.hexdigest()[:24]}.npy"


def encode_cached(embedder: Embedder, texts: Sequence[str], cache_dir: Path | None = None) -> Vectors:
    """``embedder.encode(texts)``, kept in ``cache_dir`` under a hash of the model name and the texts."""
    if cache_dir is None:
        return embedder.encode(texts)
    path = cache_path(cache_dir, embedder.name, texts)
    if path.is_file():
        cached: Vectors = np.load(path).astype(np.float32, copy=False)
        return cached
    vectors = embedder.encode(texts)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(path)
    return vectors


def dataset_texts(faq: Path, queries: Sequence[Path]) -> tuple[list[str], list[str]]:
    """The row texts a build of ``faq`` would index (``builder.entry_texts`` of every entry) and the
    distinct questions of the ``queries`` JSONL files, in order."""
    from qa_service.build.pipeline import entry_texts
    from qa_service.tooling.evaluation import load_faq, load_queries

    texts = [text for entry in load_faq(faq) for _, text in entry_texts(entry)]
    questions = list(dict.fromkeys(labelled.query for path in queries for labelled in load_queries(path)))
    return texts, questions


def encode_dataset(
    embedder: Embedder, faq: Path, queries: Sequence[Path], cache_dir: Path | None = None
) -> tuple[Vectors, Vectors]:
    """The vectors of ``dataset_texts(faq, queries)``: the rows and the questions."""
    texts, questions = dataset_texts(faq, queries)
    return encode_cached(embedder, texts, cache_dir), encode_cached(embedder, questions, cache_dir)


def _encode_into(model: str, text_lists: Sequence[Sequence[str]], cache_dir: Path) -> None:
    """Child process of ``encode_dataset_apart``: encode each list into ``cache_dir``."""
    from qa_service.model.embedder import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder(model)
    for texts in text_lists:
        encode_cached(embedder, texts, cache_dir)


def encode_dataset_apart(model: str, faq: Path, queries: Sequence[Path], cache_dir: Path) -> tuple[Vectors, Vectors]:
    """``encode_dataset`` with ``model``, whose encoding (if not cached yet) runs in a child process that
    fills ``cache_dir``; this process only reads the vectors back. So the model, torch and the
    encoder's buffers never count in this process' memory figures, on a first run as on later ones."""
    import multiprocessing

    lists = dataset_texts(faq, queries)
    missing = [texts for texts in lists if not cache_path(cache_dir, model, texts).is_file()]
    if missing:
        child = multiprocessing.get_context("spawn").Process(target=_encode_into, args=(model, missing, cache_dir))
        child.start()
        child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"encoding {faq} with {model} failed in its child process (exit {child.exitcode})")
    rows, questions = (np.load(cache_path(cache_dir, model, texts)).astype(np.float32, copy=False) for texts in lists)
    return rows, questions


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m qa_service.tooling.scale``: print measure_scale's figures as JSON."""
    parser = argparse.ArgumentParser(prog="python -m qa_service.tooling.scale", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small and fast (CI smoke run)")
    parser.add_argument("--rows", type=int, default=None, help="synthetic rows (default 1M, quick 10k)")
    parser.add_argument("--queries", type=int, help="queries per index (default: all real ones, 1000 random)")
    parser.add_argument("--only", default=",".join(INDEXES), help="comma-separated: real,random,clustered")
    parser.add_argument("--dataset", type=Path, help="a dataset folder with faq.jsonl and queries*.dev.jsonl")
    parser.add_argument("--queries-from", type=Path, action="append", default=[], help="more queries JSONL files")
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--cache", type=Path, help="folder for the encoded vectors (e.g. under /tmp)")
    parser.add_argument(
        "--keep-indexes",
        action="store_true",
        help="keep the synthetic indexes in --cache and read them back next time instead of building them",
    )
    args = parser.parse_args(argv)
    real: tuple[Vectors, Vectors] | None = None
    if args.dataset is not None:
        query_files = sorted(args.dataset.glob("queries*.dev.jsonl")) + list(args.queries_from)
        with tempfile.TemporaryDirectory(prefix="qa-scale-") as tmp:  # used when no --cache is given
            real = encode_dataset_apart(args.model, args.dataset / "faq.jsonl", query_files, args.cache or Path(tmp))
    figures = measure_scale(
        real_vectors=real[0] if real else None,
        real_queries=real[1] if real else None,
        rows=args.rows,
        query_count=args.queries,
        quick=args.quick,
        indexes=[name.strip() for name in args.only.split(",") if name.strip()],
        progress=sys.stderr.isatty(),
        keep_dir=args.cache if args.keep_indexes else None,
    )
    sys.stdout.write(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
