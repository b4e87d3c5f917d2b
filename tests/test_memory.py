"""The server's allocator setting (see qa_service/memory.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from qa_service.memory import fix_malloc_mmap_threshold


def test_the_operators_own_setting_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert fix_malloc_mmap_threshold() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_server_fixes_the_threshold_on_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    """The effect (memory flat under load) is measured by `qa-service bench --load`, see BENCHMARKS.md."""
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    script = "from qa_service.memory import fix_malloc_mmap_threshold as f; print(f())"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "True"
