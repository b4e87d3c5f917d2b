"""Attribution a page states about itself: title, canonical address, site, author and dates, read from
the usual meta tags, schema.org JSON-LD and microdata, and "Updated ..." lines the reader sees."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from lxml import html as lxml_html

from qa_service.corpus.importers.dates import SourceDate, day_first, parse_source_date

_DATE_LINE = re.compile(
    r"\b(?P<label>published|posted|written|updated|last updated|last modified|modified|reviewed|"
    r"last reviewed|medically reviewed)(?:\s+on)?\s*:?\s+(?P<when>(?:\d+|an?|one|two|three|four|five|six)\s+"
    r"(?:days?|weeks?|months?|years?)\s+ago|yesterday|last (?:week|month|year)|"
    r"[A-Z][a-z]{2,8}\.? \d{1,2},? \d{4}|\d{1,2} [A-Z][a-z]{2,8}\.? \d{4}|\d{4}-\d{2}-\d{2}|"
    r"\d{1,2}/\d{1,2}/\d{4}|[A-Z][a-z]{2,8} \d{4})",
    re.IGNORECASE,
)
_UPDATE_LABELS = ("updated", "modified", "reviewed")
_SAVED_DATE = re.compile(r"saved date:\s*(?P<when>[^\n]+?)\s*(?:\n|-->|$)", re.IGNORECASE)  # SingleFile
FAQ_TYPES = {"FAQPage", "QAPage"}
_ORGANISATIONS = {
    "Organization", "MedicalOrganization", "MedicalClinic", "Hospital", "Physician", "Dentist", "Pharmacy",
    "LocalBusiness", "MedicalBusiness", "WebSite", "Optician", "HealthAndBeautyBusiness",
}  # fmt: skip


@dataclass
class PageInfo:
    """What a page says about itself. Dates are stored values ("2024-03-01"); a relative date that could
    not be resolved is in ``unresolved`` (field -> text as the page wrote it) instead."""

    title: str | None = None
    url: str | None = None
    publisher: str | None = None
    author: str | None = None
    published: str | None = None
    updated: str | None = None
    unresolved: dict[str, str] = field(default_factory=dict)
    resolved: dict[str, str] = field(default_factory=dict)  # field -> "'2 years ago' resolved against ..."

    def set_date(self, name: str, stated: SourceDate | None, reference: date | None) -> None:
        if stated is None or getattr(self, name) is not None or name in self.unresolved:
            return
        if stated.value is None:
            self.unresolved[name] = stated.text
            return
        setattr(self, name, stated.value)
        if stated.relative and reference is not None:
            self.resolved[name] = f"{stated.text!r} resolved against {reference.isoformat()}"

    def review_note(self) -> str | None:
        """A reviewer's note about the dates, or None when there is nothing to say."""
        parts = [f"{name} {text!r}" for name, text in self.unresolved.items()]
        notes = []
        if parts:
            notes.append(
                f"Dated only relatively: {', '.join(parts)}. Set the date by hand, or re-import with --as-of DATE."
            )
        notes += [f"Date {name}: {how}." for name, how in self.resolved.items()]
        return " ".join(notes) or None


def _clean(text: str | None) -> str | None:
    if text is None:
        return None
    text = " ".join(str(text).split())
    return text or None


def jsonld_nodes(doc: lxml_html.HtmlElement) -> Iterator[dict[str, Any]]:
    """Every object of the page's JSON-LD blocks, nested ``@graph`` lists included. Blocks that are
    not valid JSON are skipped (pages ship broken ones)."""
    for script in doc.iter("script"):
        if (script.get("type") or "").strip().lower() != "application/ld+json":
            continue
        try:
            data = json.loads(script.text or "")
        except (json.JSONDecodeError, RecursionError):
            continue
        stack: list[Any] = [data]
        while stack:
            item = stack.pop(0)
            if isinstance(item, list):
                stack[:0] = item
            elif isinstance(item, dict):
                yield item
                if "@graph" in item:
                    stack.insert(0, item["@graph"])


def node_types(node: dict[str, Any]) -> set[str]:
    types = node.get("@type", [])
    return {str(t).rsplit("/", 1)[-1] for t in (types if isinstance(types, list) else [types])}


def _name_of(value: Any) -> str | None:
    if isinstance(value, list):
        names = [name for name in (_name_of(item) for item in value) if name]
        return ", ".join(names) or None
    if isinstance(value, dict):
        return _clean(value.get("name"))
    if isinstance(value, str) and not value.startswith(("http://", "https://", "/")):
        return _clean(value)
    return None


def _meta(doc: lxml_html.HtmlElement, *names: str) -> str | None:
    wanted = {name.lower() for name in names}
    for meta in doc.iter("meta"):
        key = (meta.get("property") or meta.get("name") or meta.get("itemprop") or "").strip().lower()
        if key in wanted and (content := _clean(meta.get("content"))):
            return content
    return None


def _first_text(doc: lxml_html.HtmlElement, xpath: str) -> str | None:
    for element in doc.xpath(xpath):
        value = element.get("datetime") or element.get("content") or element.text_content()
        if cleaned := _clean(value):
            return cleaned
    return None


def _byline_time(doc: lxml_html.HtmlElement, *, updated: bool) -> str | None:
    """A ``<time datetime>`` in a byline: "Last reviewed <time>" is an update, "By ... <time>" a publication."""
    for element in doc.iter("time"):
        stamp = _clean(element.get("datetime"))
        parent = element.getparent()
        if stamp is None or parent is None:
            continue
        label = " ".join(parent.text_content().split()).lower()
        is_update = any(word in label for word in ("updated", "modified", "reviewed"))
        in_byline = (
            is_update
            or "publish" in label
            or "posted" in label
            or bool(
                {"byline", "meta", "date", "posted-on", "entry-meta", "post-meta"}
                & set((parent.get("class") or "").split())
            )
        )
        if in_byline and is_update == updated:
            return stamp
    return None


def read_page_info(doc: lxml_html.HtmlElement, raw: str, *, as_of: date | None) -> PageInfo:
    """Attribution from a parsed page (before any cleaning). ``as_of`` is the day the page was seen,
    for relative dates; without it a SingleFile "saved date" comment is used when present."""
    reference = as_of
    if reference is None and (saved := _SAVED_DATE.search(raw[:4000])):
        stated = parse_source_date(saved["when"][:40])
        if stated is not None and stated.value is not None and len(stated.value) == 10:
            reference = date.fromisoformat(stated.value)

    info = PageInfo()
    ld = list(jsonld_nodes(doc))
    articles = [node for node in ld if not node_types(node) & _ORGANISATIONS]
    organisations = [node for node in ld if node_types(node) & _ORGANISATIONS]

    canonical = [
        _clean(link.get("href")) for link in doc.iter("link") if (link.get("rel") or "").lower() == "canonical"
    ]
    info.url = next((href for href in canonical if href), None) or _meta(doc, "og:url")
    info.publisher = (
        _meta(doc, "og:site_name", "application-name", "publisher", "dc.publisher")
        or next((name for node in articles if (name := _name_of(node.get("publisher")))), None)
        or next((name for node in organisations if (name := _name_of(node))), None)
    )
    info.author = (
        _meta(doc, "author", "dc.creator", "citation_author")
        or _name_of(_meta(doc, "article:author"))
        or next((name for node in articles if (name := _name_of(node.get("author")))), None)
        or _first_text(doc, "//*[@rel='author' or @itemprop='author']")
    )
    if info.author:
        info.author = re.sub(r"^(?:written\s+)?by\s+", "", info.author, flags=re.IGNORECASE)

    title = _meta(doc, "og:title", "twitter:title") or _first_text(doc, "//title") or _first_text(doc, "//h1")
    info.title = title  # as the page states it, site name included

    published = _meta(doc, "article:published_time", "datepublished", "date", "dc.date", "dc.date.issued",
                      "citation_publication_date") or next(
        (str(node["datePublished"]) for node in articles if node.get("datePublished")), None
    ) or _first_text(doc, "//time[@itemprop='datePublished' or contains(@class,'published')]") or _byline_time(
        doc, updated=False
    )  # fmt: skip
    updated = _meta(doc, "article:modified_time", "og:updated_time", "datemodified", "last-modified") or next(
        (str(node["dateModified"]) for node in articles if node.get("dateModified")), None
    ) or _first_text(doc, "//time[@itemprop='dateModified' or contains(@class,'updated')]") or _byline_time(
        doc, updated=True
    )  # fmt: skip
    first_day = day_first(doc.get("lang") or _meta(doc, "og:locale", "content-language", "language"), info.url)
    info.set_date("published", parse_source_date(published, reference=reference, first_day=first_day), reference)
    info.set_date("updated", parse_source_date(updated, reference=reference, first_day=first_day), reference)

    body = doc.find("body")
    read_date_lines(info, body if body is not None else doc, reference=reference, first_day=first_day)
    return info


def read_date_lines(
    info: PageInfo, root: lxml_html.HtmlElement, *, reference: date | None, first_day: bool = False
) -> None:
    """Dates a reader sees: "Last updated: 2 May 2024", "Published 2 years ago", for fields still empty."""
    visible = " ".join(" ".join(root.itertext()).split())
    for match in _DATE_LINE.finditer(visible):
        name = "updated" if any(word in match["label"].lower() for word in _UPDATE_LABELS) else "published"
        info.set_date(name, parse_source_date(match["when"], reference=reference, first_day=first_day), reference)
