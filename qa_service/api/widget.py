"""The chat widget's files and its demo page, served by the service itself.

``widget.js`` and ``widget.css`` (plain JavaScript and CSS, no build step) are what a clinic's site
loads with one ``<script>`` tag; ``/demo`` is a sample clinic page showing the widget, with the embed
tag for this service to copy. These are not part of the JSON API: Starlette routes only (qa_service.api.app stays
the one module that imports FastAPI), left out of the OpenAPI schema.

Headers: the widget's files may be loaded by pages of other sites (``Cross-Origin-Resource-Policy:
cross-origin``, where the service's default is ``same-site``) and are cached for five minutes; the
demo page gets a strict Content-Security-Policy (scripts and styles from this service only, nothing
inline), which the widget is built to work under.
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from qa_service.settings import Settings

STATIC_DIR = Path(__file__).resolve().parent / "static"
ASSET_CACHE_CONTROL = "public, max-age=300"
DEMO_CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
DEMO_TITLE_SUFFIX = "FAQ"


@dataclass(frozen=True)
class StaticAsset:
    """A small file served from memory, with a strong ETag (it changes only when the service is upgraded)."""

    body: bytes
    media_type: str
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, name: str, media_type: str, headers: dict[str, str]) -> StaticAsset:
        body = (STATIC_DIR / name).read_bytes()
        etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        return cls(body, media_type, {**headers, "etag": etag})

    async def respond(self, request: Request) -> Response:
        if _etag_matches(request.headers.get("if-none-match"), self.headers["etag"]):
            return Response(status_code=304, headers=self.headers)
        return Response(self.body, media_type=self.media_type, headers=self.headers)


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    given = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in given or etag in given


@dataclass(frozen=True)
class DemoPage:
    """static/demo.html with the clinic's settings filled in (HTML-escaped) and this service's embed tag."""

    template: Template
    settings: Settings

    @classmethod
    def load(cls, settings: Settings) -> DemoPage:
        return cls(Template((STATIC_DIR / "demo.html").read_text(encoding="utf-8")), settings)

    def render(self, base_url: str) -> str:
        settings = self.settings
        title = f"{settings.clinic_name} {DEMO_TITLE_SUFFIX}"
        contact_url = settings.clinic_contact_url or "#contact"
        attributes = {
            "data-title": title,
            "data-clinic-name": settings.clinic_name,
            "data-phone": settings.clinic_phone,
            "data-contact-url": settings.clinic_contact_url or "https://www.your-clinic.example/contact",
        }
        snippet = f'<script src="{base_url}widget.js" async ' + " ".join(
            f'{name}="{html.escape(value)}"' for name, value in attributes.items() if value
        )
        return self.template.substitute(
            clinic_name=html.escape(settings.clinic_name),
            title=html.escape(title),
            phone=html.escape(settings.clinic_phone),
            contact_url=html.escape(contact_url),
            contact_html=self._contact_html(),
            embed_snippet=html.escape(snippet + "></script>"),
        )

    def _contact_html(self) -> str:
        settings = self.settings
        lines = []
        if settings.clinic_phone:
            lines.append(f"<p>Phone: {html.escape(settings.clinic_phone)}</p>")
        if settings.clinic_contact_url:
            url = html.escape(settings.clinic_contact_url)
            lines.append(f'<p><a href="{url}">Contact form and opening hours</a></p>')
        if not lines:
            lines.append(
                "<p>Set <code>QA_CLINIC_PHONE</code> and <code>QA_CLINIC_CONTACT_URL</code> to show the clinic's "
                "phone number and contact page here and in the widget.</p>"
            )
        return "\n      ".join(lines)

    async def respond(self, request: Request) -> Response:
        base_url = str(request.base_url)
        return Response(
            self.render(base_url if base_url.endswith("/") else base_url + "/"),
            media_type="text/html; charset=utf-8",
            headers={"content-security-policy": DEMO_CONTENT_SECURITY_POLICY, "cache-control": "no-cache"},
        )


def add_web_routes(app: Starlette, settings: Settings) -> None:
    """Serve /widget.js, /widget.css, /demo and /demo.css (not in the OpenAPI schema)."""
    embeddable = {"cache-control": ASSET_CACHE_CONTROL, "cross-origin-resource-policy": "cross-origin"}
    assets = {
        "/widget.js": StaticAsset.load("widget.js", "text/javascript; charset=utf-8", embeddable),
        "/widget.css": StaticAsset.load("widget.css", "text/css; charset=utf-8", embeddable),
        "/demo.css": StaticAsset.load("demo.css", "text/css; charset=utf-8", {"cache-control": ASSET_CACHE_CONTROL}),
    }
    for path, asset in assets.items():
        app.add_route(path, asset.respond, methods=["GET"], include_in_schema=False)
    app.add_route("/demo", DemoPage.load(settings).respond, methods=["GET"], include_in_schema=False)
