"""How texts are grouped into encoder calls (pure functions; no model)."""

from __future__ import annotations

import itertools
import random

from qa_service.embedder import fixed_batches, plan_batches


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
