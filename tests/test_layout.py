"""The package's floor plan: who may import what (the architecture, kept by a test)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "qa_service"
CORE = ("corpus", "index", "model", "build", "answering")


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports inside functions included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def modules() -> dict[str, set[str]]:
    return {str(path.relative_to(PACKAGE)): imports_of(path) for path in sorted(PACKAGE.rglob("*.py"))}


def importers_of(prefix: str) -> list[str]:
    return sorted(
        name for name, imported in modules().items() if any(m == prefix or m.startswith(prefix + ".") for m in imported)
    )


@pytest.mark.parametrize(
    ("library", "allowed"),
    [
        ("fastapi", "api/"),
        ("faiss", "index/store.py"),
        ("sentence_transformers", "model/"),
        ("torch", "model/"),
        ("wordfreq", "answering/coverage.py"),
        ("psycopg", "ops/storage_pg.py"),
        ("psycopg_pool", "ops/storage_pg.py"),
    ],
)
def test_each_heavy_library_is_imported_in_one_place(library: str, allowed: str) -> None:
    assert [name for name in importers_of(library) if not name.startswith(allowed)] == []


def test_the_core_never_reaches_up_to_the_api_the_tooling_or_the_cli() -> None:
    upward = ("qa_service.api", "qa_service.tooling", "qa_service.cli")
    offenders = [
        f"{name} imports {module}"
        for name, imported in modules().items()
        if name.startswith(CORE)
        for module in imported
        if module.startswith(upward)
    ]
    assert offenders == []


def test_building_does_not_need_the_serving_composition() -> None:
    served = {"qa_service.answering.engine", "qa_service.answering.service"}
    assert [name for name, imported in modules().items() if name.startswith("build/") and served & imported] == []


def test_every_subpackage_says_what_it_owns() -> None:
    for init in PACKAGE.rglob("__init__.py"):
        docstring = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert docstring and len(docstring) > 80, f"{init.relative_to(ROOT)} needs a docstring saying what it owns"
