"""The docs promise what the code does: every setting, command and endpoint is documented, and the site builds."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from qa_service.cli import _parser
from qa_service.settings import Settings
from tests.conftest import ROOT

DOCS = ROOT / "docs"
README = (ROOT / "README.md").read_text(encoding="utf-8")
SETTINGS_PAGE = (DOCS / "reference" / "settings.md").read_text(encoding="utf-8")
CLI_PAGE = (DOCS / "reference" / "cli.md").read_text(encoding="utf-8")
HTTP_API_PAGE = (DOCS / "reference" / "http-api.md").read_text(encoding="utf-8")

NOTEBOOK_PHRASE = re.compile(
    r"(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth) session", re.IGNORECASE
)


def test_every_setting_is_documented() -> None:
    missing = [f"QA_{name.upper()}" for name in Settings.model_fields if f"`QA_{name.upper()}`" not in SETTINGS_PAGE]
    assert missing == []


def test_every_cli_command_is_documented() -> None:
    commands = _parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    missing = [name for name in commands if f"qa-service {name}" not in CLI_PAGE]
    assert missing == []


def test_every_endpoint_is_documented(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    documented = [
        f"`{method.upper()} {path.replace('{entry_id}', '{id}')}`" for path, item in paths.items() for method in item
    ]
    missing = [endpoint for endpoint in documented if endpoint not in HTTP_API_PAGE]
    assert missing == []


def test_the_two_setup_commands_are_in_the_readme() -> None:
    assert "make run" in README and "make test" in README


def test_documented_defaults_match_the_code() -> None:
    """A number or switch in the settings table is the default the code really uses."""
    rows = dict(re.findall(r"^\| `QA_([A-Z_]+)` \| `([^`]*)` \|", SETTINGS_PAGE, flags=re.MULTILINE))
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
            wrong.append(f"QA_{name.upper()}: settings page {documented!r}, code {default!r}")
    assert wrong == []


def test_the_readme_stays_short() -> None:
    assert len(README.splitlines()) <= 160


def test_the_docs_have_no_lab_notebook_entries() -> None:
    pages = sorted(DOCS.rglob("*.md"))
    assert pages
    dated = [
        f"{page.relative_to(ROOT)}: {match.group(0)!r}"
        for page in pages
        for match in NOTEBOOK_PHRASE.finditer(page.read_text(encoding="utf-8"))
    ]
    assert dated == []


def test_the_site_builds_in_strict_mode(tmp_path: Path) -> None:
    """Broken links, missing anchors and pages left out of the nav fail the build."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--site-dir",
            str(tmp_path / "site"),
            "--config-file",
            str(ROOT / "mkdocs.yml"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},  # the theme's notice about MkDocs 2.0 is not our failure
    )
    assert result.returncode == 0, result.stderr


def test_the_http_reference_lists_every_status_of_the_schema(client: TestClient) -> None:
    """docs/reference/http-api.md's "Statuses by endpoint" table is the OpenAPI schema's responses."""
    page = (ROOT / "docs" / "reference" / "http-api.md").read_text(encoding="utf-8")
    table = page[page.index("### Statuses by endpoint") :]
    documented = {
        endpoint: {int(status) for status in statuses.split(", ")}
        for endpoint, statuses in re.findall(r"^\| `([A-Z]+ [^`]+)` \| ([0-9, ]+) \|$", table, flags=re.MULTILINE)
    }
    paths = client.get("/openapi.json").json()["paths"]
    in_schema = {
        f"{method.upper()} {path.replace('{entry_id}', '{id}')}": {int(status) for status in operation["responses"]}
        for path, item in paths.items()
        for method, operation in item.items()
    }
    assert documented == in_schema
    errors = [
        (endpoint, status)
        for path, item in paths.items()
        for method, operation in item.items()
        for status, response in operation["responses"].items()
        if int(status) >= 400
        and response["content"]["application/json"]["schema"] != {"$ref": "#/components/schemas/ErrorResponse"}
        for endpoint in [f"{method.upper()} {path}"]
    ]
    assert errors == []  # every error is documented with the one error shape
