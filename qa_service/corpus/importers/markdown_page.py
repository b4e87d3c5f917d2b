"""A Markdown FAQ (headings, bold questions, "Q:"/"A:" lines, YAML front matter) into entries.

The page is rendered with markdown-it-py (CommonMark, with tables) into the same tree the HTML importer
reads, each block carrying its Markdown line, so the same rules find the pairs. Front matter gives the
attribution: ``title``, ``author``, ``date``/``published``, ``updated``/``lastmod``, ``url``/``canonical``,
``site``/``publisher``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.front_matter import front_matter_plugin

from qa_service.corpus.importers.common import ImportResult
from qa_service.corpus.importers.dates import parse_source_date
from qa_service.corpus.importers.html_page import html_document, parse_tree
from qa_service.corpus.importers.page_info import PageInfo, read_date_lines
from qa_service.errors import CorpusError

_FIELDS = {
    "title": ("title",),
    "author": ("author", "authors"),
    "url": ("url", "canonical", "canonical_url", "permalink"),
    "publisher": ("site", "site_name", "publisher", "organization", "organisation"),
    "published": ("date", "published", "pubdate", "publishdate", "created"),
    "updated": ("updated", "lastmod", "last_modified", "modified", "last_updated", "reviewed"),
}


def _renderer() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True}).enable("table").use(front_matter_plugin)

    def number_blocks(state: Any) -> None:
        for token in state.tokens:
            if token.map and token.nesting == 1:
                token.attrSet("data-line", str(token.map[0] + 1))

    md.core.ruler.push("source_lines", number_blocks)
    # a soft line break stays a break the importer can see ("**Q: ...**" then "A: ..." on the next line)
    md.add_render_rule("softbreak", lambda *args, **kwargs: '<br data-soft="1">\n')
    return md


def _front_matter(tokens: list[Token], path: str) -> dict[str, Any]:
    for token in tokens:
        if token.type == "front_matter":
            try:
                data = yaml.safe_load(token.content)
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                line = mark.line + 2 if mark is not None else 1  # +1 for the opening '---' line
                raise CorpusError(f"{path}:{line}: front matter is not valid YAML ({exc})") from None
            if data is None:
                return {}
            if not isinstance(data, dict):
                raise CorpusError(f"{path}:2: front matter must be a mapping of fields")
            return {str(key).lower(): value for key, value in data.items()}
    return {}


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return ", ".join(str(item) for item in value if item is not None) or None
    if isinstance(value, dict):
        return str(value.get("name")) if value.get("name") else None
    return " ".join(str(value).split()) or None


def parse_markdown(text: str, *, source_name: str, as_of: date | None = None, path: str | None = None) -> ImportResult:
    notes: list[str] = []
    md = _renderer()
    tokens = md.parse(text.removeprefix("\ufeff"))
    meta = _front_matter(tokens, path or source_name)
    rendered = md.renderer.render(tokens, md.options, {})
    if not rendered.strip():
        return ImportResult(entries=[], notes=["the page is empty"])
    doc = html_document(f"<html><body>{rendered}</body></html>")
    info = PageInfo()
    for name in ("title", "author", "url", "publisher"):
        value = next((_as_text(meta[key]) for key in _FIELDS[name] if key in meta), None)
        setattr(info, name, value)
    if info.title is None and (heading := doc.find(".//h1")) is not None:
        info.title = " ".join(heading.text_content().split()) or None
    for name in ("published", "updated"):
        value = next((_as_text(meta[key]) for key in _FIELDS[name] if key in meta), None)
        info.set_date(name, parse_source_date(value, reference=as_of), as_of)
    read_date_lines(info, doc, reference=as_of)
    return parse_tree(doc, info, source_name=source_name, notes=notes)
