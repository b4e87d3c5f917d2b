"""How texts are grouped into encoder calls, and the encoder's arithmetic (pure functions; no model)."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from qa_service.model.embedder import (
    SentenceTransformerEmbedder,
    fixed_batches,
    folder_digest,
    padded_rows,
    plan_batches,
    resolve_precision,
)


def _cost(groups: list[list[int]], lengths: list[int], overhead: float) -> float:
    return sum(overhead + max(lengths[i] for i in group) * len(group) for group in groups)


def test_one_long_message_gets_a_call_of_its_own() -> None:
    lengths = [10] * 20 + [200]
    groups = plan_batches(lengths, max_batch=64, overhead=50)
    assert groups == [[20], list(range(20))]


def test_short_questions_share_one_call_up_to_the_limit() -> None:
    assert plan_batches([12, 9, 11, 10], max_batch=64, overhead=50) == [[0, 2, 3, 1]]
    groups = plan_batches([10] * 70, max_batch=32, overhead=50)
    assert len(groups) == 3 and all(len(group) <= 32 for group in groups)  # as few calls as the limit allows


def test_the_plan_is_the_cheapest_partition_and_covers_every_text_once() -> None:
    rng = random.Random(7)
    for _ in range(200):
        count = rng.randint(1, 8)
        lengths = [rng.choice([5, 8, 12, 30, 60, 128, 256]) for _ in range(count)]
        max_batch = rng.randint(1, 8)
        groups = plan_batches(lengths, max_batch=max_batch, overhead=50)
        assert sorted(i for group in groups for i in group) == list(range(count))
        assert all(len(group) <= max_batch for group in groups)
        # exhaustively: every way to cut the longest-first order into runs of at most max_batch
        order = sorted(range(count), key=lambda i: (-lengths[i], i))
        cheapest = min(
            _cost([order[a:b] for a, b in itertools.pairwise((0, *cuts, count))], lengths, 50)
            for size in range(count)
            for cuts in itertools.combinations(range(1, count), size)
            if all(b - a <= max_batch for a, b in itertools.pairwise((0, *cuts, count)))
        )
        assert _cost(groups, lengths, 50) == cheapest


def test_fixed_batches_sort_longest_first() -> None:
    assert fixed_batches([3, 9, 1, 7, 5], 2) == [[1, 3], [4, 0], [2]]
    assert plan_batches([], max_batch=8) == [] and fixed_batches([], 8) == []


CPUINFO = "processor\t: {n}\nmodel name\t: Some CPU\nflags\t\t: fpu sse2 avx2 avx512f {extra}\n\n"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [("amx_bf16 amx_tile", "bfloat16"), ("avx512_bf16", "bfloat16"), ("avx512_fp16", "float32"), ("", "float32")],
)
def test_auto_precision_is_bfloat16_only_where_the_cpu_multiplies_it_natively(
    tmp_path: Path, extra: str, expected: str
) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO.format(n=0, extra=extra) + CPUINFO.format(n=1, extra=extra))
    assert resolve_precision("auto", cpuinfo) == expected


def test_an_explicit_precision_is_kept_and_an_unreadable_cpuinfo_means_float32(tmp_path: Path) -> None:
    assert resolve_precision("float32", tmp_path / "none") == "float32"
    assert resolve_precision("bfloat16", tmp_path / "none") == "bfloat16"
    assert resolve_precision("auto", tmp_path / "none") == "float32"


def test_bfloat16_products_are_padded_to_few_shapes_at_little_cost() -> None:
    sizes = [padded_rows(rows) for rows in range(1, 64 * 256 + 1)]  # up to 64 texts of 256 tokens
    assert all(size >= rows for rows, size in enumerate(sizes, start=1))
    assert all(size <= max(16 * ((rows + 15) // 16), rows * 1.125) for rows, size in enumerate(sizes, start=1))
    assert sizes[:16] == [16] * 16 and padded_rows(129) == 144
    assert len(set(sizes)) <= 70  # oneDNN keeps ~1,000 compiled kernels: these (x4 layer shapes) all stay


def _hub_snapshot(cache: Path, repo: str, commit: str, weights: bytes) -> Path:
    """A model as the Hugging Face hub client leaves it in its cache after a download."""
    model = cache / f"models--{repo.replace('/', '--')}"
    snapshot = model / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}", encoding="utf-8")
    (snapshot / "model.safetensors").write_bytes(weights)
    (model / "refs").mkdir(exist_ok=True)
    (model / "refs" / "main").write_text(commit, encoding="utf-8")
    return snapshot


def test_a_hub_model_is_identified_by_its_downloaded_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA_MODEL=<a hub name>: a new revision downloaded under the same name gets a new weights digest
    (so builds do not reuse vectors or a fine-tuned model made from the old weights), found in the
    local hub cache without the network; a name never downloaded has none."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    first = _hub_snapshot(tmp_path, "acme/faq-model", "a" * 40, b"old weights")
    assert SentenceTransformerEmbedder("acme/faq-model").weights_digest == folder_digest(first)
    second = _hub_snapshot(tmp_path, "acme/faq-model", "b" * 40, b"new weights")  # main moved on
    assert SentenceTransformerEmbedder("acme/faq-model").weights_digest == folder_digest(second)
    assert folder_digest(second) != folder_digest(first)
    short = _hub_snapshot(tmp_path, "sentence-transformers/some-model", "c" * 40, b"weights")
    assert SentenceTransformerEmbedder("some-model").weights_digest == folder_digest(short)  # the library's prefix
    assert SentenceTransformerEmbedder("acme/never-downloaded").weights_digest is None
    assert SentenceTransformerEmbedder("not a hub name").weights_digest is None
