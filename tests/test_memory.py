"""Handing the encoder's freed memory back to the system (see qa_service/model/memory.py)."""

from __future__ import annotations

import gc
import sys
import weakref
from collections.abc import Iterator

import pytest

from qa_service.model.memory import HeapTrimmer, settle_heap


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_trims_at_most_once_per_period() -> None:
    calls: list[int] = []
    clock = Clock()
    trimmer = HeapTrimmer(1.0, trim=lambda: calls.append(1), clock=clock)
    assert trimmer.maybe_trim() is True  # the first batch trims
    clock.now += 0.5
    assert trimmer.maybe_trim() is False
    clock.now += 0.6
    assert trimmer.maybe_trim() is True
    assert len(calls) == trimmer.trims == 2


def test_a_failing_trim_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> None:
        raise OSError("no")

    assert HeapTrimmer(trim=broken).maybe_trim() is False
    assert "malloc_trim failed" in caplog.text


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_glibc_trim_is_found_and_runs_on_linux() -> None:
    trimmer = HeapTrimmer()
    assert trimmer.available and trimmer.maybe_trim() is True


class Node:
    """An object in a reference cycle: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # leave the test process as it was


def test_settling_frees_cycles_and_freezes_the_rest(unfrozen: None) -> None:
    kept, dropped = Node(), Node()
    gone = weakref.ref(dropped)
    del dropped
    assert settle_heap() is True
    assert gone() is None  # garbage collected before freezing, not frozen forever
    assert gc.get_freeze_count() > 0
    assert all(o is not kept for o in gc.get_objects())  # out of the collector's sight


def test_a_previous_build_still_in_use_is_never_frozen(unfrozen: None) -> None:
    settle_heap()
    previous = Node()  # the replaced build, still held by a request in flight
    assert settle_heap([weakref.ref(previous)]) is False
    assert gc.get_freeze_count() == 0  # the last load's objects are collectable again, nothing frozen
    ref = weakref.ref(previous)
    del previous
    assert settle_heap([ref]) is True  # the next settle, once it is gone, frees it and freezes
    assert ref() is None
