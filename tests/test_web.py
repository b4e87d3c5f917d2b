"""The chat widget's files and demo page as HTTP resources: types, caching, security headers, escaping.
How the widget behaves in a browser is tested in test_widget_browser.py."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from qa_service.api.widget import STATIC_DIR
from qa_service.settings import Settings
from tests.conftest import ROOT, make_settings

WIDGET_FILES = {"/widget.js": "text/javascript; charset=utf-8", "/widget.css": "text/css; charset=utf-8"}


@pytest.mark.parametrize("path", sorted(WIDGET_FILES))
def test_widget_files_can_be_loaded_by_clinic_sites_and_are_cached(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == WIDGET_FILES[path]
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.headers.get_list("cross-origin-resource-policy") == ["cross-origin"]  # not also same-site
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.content == (STATIC_DIR / path.lstrip("/")).read_bytes()
    unchanged = client.get(path, headers={"if-none-match": response.headers["etag"]})
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged.headers["cache-control"] == "public, max-age=300"


def test_other_responses_keep_the_same_site_resource_policy(client: TestClient) -> None:
    for path in ("/healthz", "/demo", "/demo.css", "/v1/faq"):
        assert client.get(path).headers.get_list("cross-origin-resource-policy") == ["same-site"], path


def test_the_demo_page_has_a_strict_content_security_policy(client: TestClient) -> None:
    response = client.get("/demo")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    directives = [d.partition(" ") for d in response.headers["content-security-policy"].split("; ")]
    policy = {name: value for name, _, value in directives}
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'" and policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'" and policy["base-uri"] == "'none'"
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"
    # no inline script or style: the page would break under its own policy
    assert re.findall(r"<script(?![^>]*\bsrc=)", response.text) == []
    assert "<style" not in response.text and " style=" not in response.text
    assert client.get("/demo.css").headers["content-type"] == "text/css; charset=utf-8"


def test_the_demo_page_embeds_the_widget_with_the_clinic_settings_escaped(
    tiny_settings: Settings, client_for: Callable[[Settings], TestClient]
) -> None:
    settings = tiny_settings.model_copy(
        update={
            "clinic_name": 'Back & <Spine> "Care"',
            "clinic_phone": "+44 20 7946 0958",
            "clinic_contact_url": "https://clinic.example/contact?a=1&b=2",
        }
    )
    page = client_for(settings).get("/demo").text
    tag = re.search(r'<script src="widget\.js" async(.*?)></script>', page, flags=re.DOTALL)
    assert tag is not None
    attributes = dict(re.findall(r'(data-[a-z-]+)="([^"]*)"', tag.group(1)))
    assert attributes == {
        "data-title": "Back &amp; &lt;Spine&gt; &quot;Care&quot; FAQ",
        "data-clinic-name": "Back &amp; &lt;Spine&gt; &quot;Care&quot;",
        "data-phone": "+44 20 7946 0958",
        "data-contact-url": "https://clinic.example/contact?a=1&amp;b=2",
    }
    assert "<Spine>" not in page
    assert "&lt;script src=&quot;http://testserver/widget.js&quot; async" in page  # the snippet to copy


def test_the_demo_page_without_contact_settings_links_its_own_contact_section(client: TestClient) -> None:
    page = client.get("/demo").text
    assert 'data-contact-url="#contact"' in page and 'data-phone=""' in page
    assert 'id="contact"' in page and "QA_CLINIC_CONTACT_URL" in page


def test_the_clinic_contact_url_must_be_a_web_address(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="clinic_contact_url"):
        make_settings(tmp_path, clinic_contact_url="javascript:alert(1)")
    assert make_settings(tmp_path, clinic_contact_url=" https://clinic.example/ ").clinic_contact_url == (
        "https://clinic.example/"
    )


def test_web_routes_are_not_part_of_the_api_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not {"/widget.js", "/widget.css", "/demo", "/demo.css"} & set(paths)
    assert client.post("/widget.js").status_code == 405


def test_the_widget_never_parses_text_as_html() -> None:
    """Data reaches the DOM through textContent only; the browser tests prove it with payloads."""
    source = (STATIC_DIR / "widget.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in source, sink
    assert "'use strict'" in source
    addresses = set(re.findall(r"https?://[\w.-]+", source))  # no CDN or other third party: only the SVG
    assert addresses <= {"http://www.w3.org", "https://faq.my-clinic.example", "https://www.my-clinic.example"}


def test_static_files_are_package_data() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["qa_service.api"]
    for path in STATIC_DIR.iterdir():
        assert any(path.relative_to(STATIC_DIR.parent).match(pattern) for pattern in patterns), path.name
