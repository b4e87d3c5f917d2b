"""The README is the front door: every setting, command and endpoint it promises is documented."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from qa_service.cli import _parser
from qa_service.settings import Settings
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_documented() -> None:
    missing = [f"QA_{name.upper()}" for name in Settings.model_fields if f"`QA_{name.upper()}`" not in README]
    assert missing == []


def test_every_cli_command_is_documented() -> None:
    commands = _parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    missing = [name for name in commands if f"qa-service {name}" not in README]
    assert missing == []


def test_every_endpoint_is_documented(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    documented = [
        f"`{method.upper()} {path.replace('{entry_id}', '{id}')}`" for path, item in paths.items() for method in item
    ]
    missing = [endpoint for endpoint in documented if endpoint not in README]
    assert missing == []


def test_the_two_setup_commands_are_in_the_readme() -> None:
    assert "make run" in README and "make test" in README


def test_documented_defaults_match_the_code() -> None:
    """A number or switch in the settings table is the default the code really uses."""
    rows = dict(re.findall(r"^\| `QA_([A-Z_]+)` \| `([^`]*)` \|", README, flags=re.MULTILINE))
    wrong = []
    for name, field in Settings.model_fields.items():
        default, documented = field.default, rows.get(name.upper())
        if isinstance(default, bool):
            same = documented == str(default).lower()
        elif isinstance(default, int | float):
            same = documented is not None and float(documented) == default
        elif isinstance(default, Path):
            same = documented == str(default)
        else:
            continue
        if not same:
            wrong.append(f"QA_{name.upper()}: README {documented!r}, code {default!r}")
    assert wrong == []
