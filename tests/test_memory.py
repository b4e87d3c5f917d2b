"""Handing the encoder's freed memory back to the system (see qa_service/memory.py)."""

from __future__ import annotations

import sys

import pytest

from qa_service.memory import HeapTrimmer


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
