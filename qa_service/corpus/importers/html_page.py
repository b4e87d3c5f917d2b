"""Question/answer pairs from an HTML page, whatever builder made it.

The page is parsed with lxml (libxml2's HTML parser; the same tree also serves the Markdown and Word
importers). Pairs come from three places:

- schema.org ``FAQPage`` structured data, in JSON-LD or microdata;
- the visible page: page furniture (navigation, cookie banners, sidebars, footers, share buttons,
  scripts, forms, comments) is removed, the rest is read as a sequence of text units (a paragraph,
  a list item, a heading, a line after ``<br>``), and a unit opens an entry when it is a question
  title: a heading, an accordion or toggle title (``<summary>``, ``<dt>``, a button or an element
  with ``aria-controls``/``aria-expanded``/collapse attributes, or an element whose class names say
  title/heading/question), a bold question, a "Q:"/"Q."/"Question:" marker, or the first cell of a
  question table row. The answer is what follows inside the same item, up to the next title.
- a title that is not a question and is followed directly by questions is the ``section`` of the
  questions inside it ("Insurance and Billing").

Answer text is kept word for word; lists become "- item" / "1. item" lines.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from lxml import etree
from lxml import html as lxml_html

from qa_service.corpus.entries import FaqEntry, Source
from qa_service.corpus.importers.common import ImportResult, assign_ids, mark_duplicate_questions, question_key
from qa_service.corpus.importers.page_info import FAQ_TYPES, PageInfo, jsonld_nodes, node_types, read_page_info
from qa_service.corpus.importers.scraped_page import answer_flags, extract_quotes
from qa_service.errors import CorpusError

_BLOCK_TAGS = {
    "html", "body", "main", "article", "section", "div", "p", "ul", "ol", "li", "dl", "dt", "dd", "h1", "h2",
    "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tfoot", "tr", "td", "th", "caption", "blockquote",
    "pre", "details", "summary", "figure", "figcaption", "address", "hr", "center", "button", "fieldset",
    "legend", "header", "footer", "nav", "aside", "form", "dialog", "menu",
}  # fmt: skip
_DROP_TAGS = {
    "script", "style", "noscript", "template", "svg", "iframe", "nav", "footer", "aside", "select", "input",
    "textarea", "object", "embed", "canvas", "video", "audio", "head", "map", "dialog", "menu",
}  # fmt: skip
_DROP_ROLES = {"navigation", "banner", "contentinfo", "complementary", "search", "dialog", "alertdialog", "menu"}
# class/id words of page furniture (compared word by word: "cookie-banner" -> cookie, banner)
_JUNK_WORDS = {
    "cookie", "cookies", "consent", "gdpr", "share", "sharing", "sharedaddy", "social", "newsletter",
    "subscribe", "signup", "sidebar", "breadcrumb", "breadcrumbs", "comment", "comments", "respond", "related",
    "menu", "navbar", "nav", "navigation", "footer", "masthead", "topbar", "popup", "modal", "advert", "ads",
    "advertisement", "sponsored", "promo", "announcement", "skip", "sr", "screen", "visually", "cta", "pagination",
    "article-info",
    "author-box", "byline", "meta", "tags", "postmeta", "banner", "hero", "disclaimer", "rating", "feedback",
}  # fmt: skip
_FAQ_WIDGETS = {"faq", "faqs", "accordion", "accordian"}
# words of FAQ widgets: an element named with one is never furniture ("elementor-widget-accordion")
_FAQ_WORDS = {"faq", "faqs", "accordion", "accordian", "toggle", "toggles", "question", "questions", "answer",
              "qa", "collapse", "panel", "tab", "tabs"}  # fmt: skip
_TITLE_WORDS = {"title", "heading", "header", "question", "trigger", "toggler", "tab-title", "summary", "q",
                "head", "btn", "button", "opener"}  # fmt: skip
# class names of a page's or a section's own title: headings, never accordion triggers
_PAGE_TITLES = {"page-header", "entry-header", "site-header", "section-header", "page-title", "entry-title",
                "post-title", "site-title", "widget-title", "section-title", "article-header"}  # fmt: skip
_WORD_SPLIT = re.compile(r"[\s_\-]+|(?<=[a-z])(?=[A-Z])")
_Q_MARKER = re.compile(r"^\s*(?:Q(?:uestion)?\s*\d{0,3}\s*[:.)\]–—-]|Q\d{1,3}\b)\s*", re.IGNORECASE)
_A_MARKER = re.compile(r"^\s*A(?:nswer)?\s*\d{0,3}\s*[:.)\]–—-]\s*", re.IGNORECASE)
_NUMBERING = re.compile(r"^\s*(?:\d{1,3}|[ivx]{1,4})\s*[.)]\s+(?=\S)", re.IGNORECASE)
_ICON_TEXT = re.compile(r"^[\s+\-−–—▼▲►▸▾›»«‹⌄⌃✚✕×↓↑]+|[\s+\-−–—▼▲►▸▾›»«‹⌄⌃✚✕×↓↑]+$")
_BOLD_TAGS = {"b", "strong"}
_BOLD_STYLE = re.compile(r"font-weight\s*:\s*(?:bold|[6-9]00)", re.IGNORECASE)
_NOT_ANSWER = re.compile(
    r"^(?:back to top|top|read more|learn more|see more|show (?:more|less)|expand|collapse|close|open|"
    r"was this (?:answer |article |page )?(?:helpful|useful)\??(?:\s*yes\s*no)?|share|print|tweet)[.!]?$",
    re.IGNORECASE,
)
# call-to-action headings around a FAQ, not questions a patient asks
_CALL_TO_ACTION = re.compile(
    r"^(?:still |got |have |any )?(?:have |got )?(?:a |any |more |other |further |additional |unanswered )?"
    r"(?:questions?|queries)\b|^(?:can(?:'|’)?t|didn(?:'|’)?t|couldn(?:'|’)?t) find|^need (?:more )?help|"
    r"^looking for (?:something|more)|^ready to|^want to (?:book|know more)|^not sure\b.*\?$|"
    r"^(?:was|is|did) this (?:page|article|answer|information|section) (?:useful|helpful)|^did you find",
    re.IGNORECASE,
)
_MAX_QUESTION = 300
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # no text holds them; libxml2 refuses them
_INVISIBLE = str.maketrans("", "", "\u200b\u200c\u200d\u2060\ufeff\u00ad")  # zero-width characters, soft hyphens
# a heading that names the whole FAQ ("Frequently Asked Questions") is no section of it
_WHOLE_FAQ = re.compile(
    r"^(?:(?:our|common|general|clinic|patient|some)\s+)*(?:FAQs?|frequently asked questions|questions and answers|"
    r"Q ?& ?A|common questions)\s*[:.!]?$",
    re.IGNORECASE,
)
_FAQ_NAME = re.compile(r"\bFAQs?\b|frequently asked|questions? (?:and|&) answers?|\bQ ?& ?A\b", re.IGNORECASE)


@dataclass
class _Unit:
    """A run of text with no block boundary or line break inside: a paragraph, a list item, a title."""

    element: Any  # the element holding its first text (for wrappers, line numbers)
    owner: Any  # the nearest block element
    line: int
    parts: list[tuple[str, bool, bool]] = field(default_factory=list)  # (text, bold, inside a navigating link)
    list_marker: str | None = None  # "- " or "3. " for the first unit of a list item
    soft: bool = False  # starts after a soft line break (Markdown): may join the unit before it
    after_rule: bool = False  # follows an <hr> (a Markdown "---"): ends the answer before it

    @property
    def text(self) -> str:
        return " ".join("".join(part for part, _, _ in self.parts).translate(_INVISIBLE).split())

    @property
    def bold(self) -> bool:
        return all(bold for part, bold, _ in self.parts if part.strip())

    @property
    def link_only(self) -> bool:
        return all(link for part, _, link in self.parts if part.strip())


@dataclass
class _Title:
    unit: _Unit
    question: str
    is_question: bool
    rank: int  # 1-6 for headings, 7 for other titles (accordion, bold, markers, table cells)
    wrapper: Any  # the outermost element that holds only the title
    inline_answer: str | None = None  # text after the question in the same unit ("Q: ...? A: ...")
    weak: bool = False  # a bold statement: a section label if a title follows it, else part of an answer


def _words(element: Any) -> set[str]:
    """The words of an element's class names and id ("cookie-banner" -> cookie, banner)."""
    value = f"{element.get('class') or ''} {element.get('id') or ''}"
    words = {word.lower() for word in _WORD_SPLIT.split(value) if word}
    return words | {name.lower() for name in (element.get("class") or "").split()}


def _class_words(element: Any) -> set[str]:
    value = element.get("class") or ""
    return {word.lower() for word in _WORD_SPLIT.split(value) if word} | {name.lower() for name in value.split()}


def _is_bold(element: Any) -> bool:
    return element.tag in _BOLD_TAGS or bool(_BOLD_STYLE.search(element.get("style") or ""))


def _navigating_link(element: Any) -> bool:
    if element.tag != "a":
        return False
    href = (element.get("href") or "").strip()
    toggles = element.get("data-toggle") or element.get("data-bs-toggle") or element.get("aria-controls")
    return bool(href) and not href.startswith(("#", "javascript:")) and not toggles


def remove_page_furniture(root: Any, notes: list[str]) -> None:
    """Drop navigation, banners, sidebars, footers, forms' controls, scripts and comments in place."""
    total = len(" ".join(root.text_content().split())) or 1
    # a disclosure panel (what an aria-controls opens) is an answer, whatever its tag (Webflow's
    # dropdowns are <nav>s); an element that holds an FAQ widget is no furniture
    panels = {element.get("aria-controls") for element in root.iter() if isinstance(element.tag, str)} - {None}
    holders = {  # the elements themselves: lxml's proxies keep their identity while referenced
        ancestor
        for widget in root.iter()
        if isinstance(widget.tag, str) and _is_faq_widget(widget)
        for ancestor in (widget, *widget.iterancestors())
    }
    doomed = []
    for element in root.iter():
        if not isinstance(element.tag, str):  # comments and processing instructions
            doomed.append(element)
            continue
        if element.get("id") in panels or element in holders:
            continue
        tag = element.tag.lower()
        role = (element.get("role") or "").lower()
        site_header = tag == "header" or (element.get("id") or "").lower() in {"header", "site-header", "top"}
        if tag in _DROP_TAGS or role in _DROP_ROLES or (site_header and not _words(element) & _FAQ_WORDS):
            doomed.append(element)
            continue
        if tag in {"html", "body", "main", "article"} or (element.get("hidden") is not None and tag == "div"):
            continue
        words = _words(element)
        if words & _JUNK_WORDS and not words & _FAQ_WORDS:
            text_length = len(" ".join(element.text_content().split()))
            if text_length < 0.4 * total and not element.xpath(".//main|.//article|.//h1"):
                doomed.append(element)
    removed = 0
    for element in doomed:
        if element.getparent() is not None and not any(a in doomed for a in element.iterancestors()):
            element.drop_tree()  # keeps the element's tail text
            removed += 1
    if removed:
        notes.append(f"removed {removed} page furniture element(s) (navigation, banners, sidebars, scripts, ...)")


def _is_faq_widget(element: Any) -> bool:
    """An accordion or FAQ block: named so, holding several items (not a menu link to the FAQ page)."""
    if element.tag in {"a", "li", "span", "button"} or not _class_words(element) & _FAQ_WIDGETS:
        return False
    return len([child for child in element if isinstance(child.tag, str)]) >= 2 and len(element.text_content()) >= 200


def _units(root: Any) -> list[_Unit]:
    units: list[_Unit] = []
    current: list[_Unit | None] = [None]

    def flush() -> None:
        current[0] = None

    def add(text: str | None, element: Any, owner: Any, bold: bool, link: bool, marker: list[str | None]) -> None:
        if not text:
            return
        unit = current[0]
        if unit is None:
            if not text.translate(_INVISIBLE).strip():
                return
            line = _line_of(element)
            unit = _Unit(element=element, owner=owner, line=line, list_marker=marker[0])
            marker[0] = None
            units.append(unit)
            current[0] = unit
        unit.parts.append((text, bold, link))

    def walk(element: Any, owner: Any, bold: bool, link: bool, marker: list[str | None]) -> None:
        tag = element.tag.lower() if isinstance(element.tag, str) else ""
        if tag == "hr":
            flush()
            pending_rule[0] = True
            return
        if tag == "br":
            flush()
            if element.get("data-soft"):
                pending_soft[0] = True
            return
        block = tag in _BLOCK_TAGS
        if block:
            flush()
            owner = element
            if tag == "li":
                parent = element.getparent()
                if parent is not None and parent.tag == "ol":
                    start = int(parent.get("start") or 1) if (parent.get("start") or "1").isdigit() else 1
                    position = [child for child in parent if child.tag == "li"].index(element)
                    marker = [f"{start + position}. "]
                else:
                    marker = ["- "]
        bold = bold or _is_bold(element) or tag in {"h1", "h2", "h3", "h4", "h5", "h6", "dt", "summary"}
        link = link or _navigating_link(element)
        before = len(units)
        add(element.text, element, owner, bold, link, marker)
        _mark_soft(units, before)
        for child in element:
            if isinstance(child.tag, str):
                walk(child, owner, bold, link, marker)
            before = len(units)
            add(child.tail, element, owner, bold, link, marker)
            _mark_soft(units, before)
        if block:
            flush()

    pending_soft, pending_rule = [False], [False]

    def _mark_soft(all_units: list[_Unit], before: int) -> None:
        if len(all_units) > before:
            all_units[-1].soft = all_units[-1].soft or pending_soft[0]
            all_units[-1].after_rule = all_units[-1].after_rule or pending_rule[0]
            pending_soft[0] = pending_rule[0] = False

    walk(root, root, False, False, [None])
    return units


def _line_of(element: Any) -> int:
    """The source line: a ``data-line`` the Markdown and Word importers set, else the HTML line."""
    chain = (element, *element.iterancestors())
    for candidate in chain:
        if (value := candidate.get("data-line")) and value.isdigit():
            return int(value)
    return next((int(candidate.sourceline) for candidate in chain if candidate.sourceline), 1)


def _wrapper(unit: _Unit) -> Any:
    """The outermost element holding the unit's text and nothing else (checked without reading the text
    of large ancestors: any other text in them ends the climb)."""
    best = unit.element
    for ancestor in unit.element.iterancestors():
        if ancestor.tag in {"body", "html"} or _has_text(ancestor.text) or _has_text(best.tail):
            break
        if any(child is not best and _has_content(child) for child in ancestor):
            break
        best = ancestor
    return best


def _has_text(text: str | None) -> bool:
    return bool(text and text.translate(_INVISIBLE).strip())


def _has_content(element: Any) -> bool:
    if _has_text(element.tail):
        return True
    if not isinstance(element.tag, str):
        return False
    return any(_has_text(text) for text in element.itertext())


def _is_trigger(element: Any) -> bool:
    """An element that opens an answer: a summary, a definition term, a button, a tab, a collapse toggle,
    or a title by its class name. A link to another page never is."""
    tag = element.tag
    if _navigating_link(element):
        return False
    if tag in {"summary", "dt", "button"}:
        return True
    if (element.get("role") or "").lower() in {"button", "tab"}:
        return True
    if element.get("aria-controls") or element.get("aria-expanded") is not None:
        return True
    if (element.get("data-toggle") or element.get("data-bs-toggle") or "").lower() in {"collapse", "tab"}:
        return True
    names = {name.lower() for name in (element.get("class") or "").split()}
    return not names & _PAGE_TITLES and bool(_class_words(element) & _TITLE_WORDS)


def _heading_level(element: Any) -> int | None:
    """The level of the heading holding ``element``: ``<h1>``-``<h6>``, or ``role="heading"`` with ``aria-level``."""
    for candidate in (element, *element.iterancestors()):
        tag = candidate.tag
        if isinstance(tag, str) and len(tag) == 2 and tag[0] == "h" and tag[1] in "123456":
            return int(tag[1])
        if (candidate.get("role") or "").lower() == "heading":
            level = candidate.get("aria-level") or "2"
            return min(max(int(level), 1), 6) if level.isdigit() else 2
    return None


def _table_question_cell(unit: _Unit) -> bool:
    cell = unit.owner
    if cell.tag not in {"td", "th"}:
        return False
    row = cell.getparent()
    if row is None or row.tag != "tr":
        return False
    cells = [child for child in row if child.tag in {"td", "th"}]
    if (
        len(cells) < 2
        or cells[0] is not cell
        or (cell.tag == "th" and row.getparent() is not None and (row.getparent().tag == "thead"))
    ):
        return False
    return unit.text.endswith("?")


def _tidy_question(text: str) -> str:
    text = _ICON_TEXT.sub("", text)
    text = _Q_MARKER.sub("", text, count=1)
    text = _NUMBERING.sub("", text, count=1)
    return " ".join(text.split())


def _title_of(unit: _Unit, strict: bool) -> _Title | None:
    text = unit.text
    if not text or len(text) > _MAX_QUESTION + 200:
        return None
    wrapper = _wrapper(unit)
    chain = [unit.element, *unit.element.iterancestors()]
    wrappers = chain[: chain.index(wrapper) + 1] if wrapper in chain else [unit.element]
    trigger = any(_is_trigger(element) for element in wrappers)
    level = _heading_level(unit.element)
    if unit.link_only and not trigger:
        return None
    if marker := _Q_MARKER.match(text):
        question, inline = _split_inline_answer(text[marker.end() :])
        tidy = _tidy_question(question)
        return _Title(unit, tidy, question.rstrip().endswith("?"), 7, wrapper, inline) if tidy else None
    question_text = _tidy_question(text)
    if not question_text or len(question_text) > _MAX_QUESTION:
        return None
    ends_with_mark = question_text.endswith("?")
    if level == 1:  # the page's own title, or (in Word documents) a part of it
        return (
            None
            if ends_with_mark or _FAQ_NAME.search(question_text)
            else _Title(unit, question_text, False, 1, wrapper)
        )
    if trigger:  # an accordion title, whatever heading level the widget gives it
        return _Title(unit, question_text, ends_with_mark, 7, wrapper)
    if level is not None:
        return _Title(unit, question_text, ends_with_mark, level, wrapper)
    if _table_question_cell(unit):
        return _Title(unit, question_text, True, 7, wrapper)
    if unit.bold:  # a bold line that is no question is a title only if questions follow it (see below)
        return _Title(unit, question_text, ends_with_mark, 7, wrapper, weak=not ends_with_mark)
    if unit.parts and unit.parts[0][1] and ends_with_mark is False:
        # "<strong>How long ...?</strong> The answer ..." in one paragraph
        bold_lead = "".join(part for part, bold, _ in _leading_bold(unit.parts))
        lead = " ".join(bold_lead.split())
        if lead.endswith("?") and len(lead) < len(text):
            return _Title(unit, _tidy_question(lead), True, 7, wrapper, text[len(lead) :].strip() or None)
    if not strict and ends_with_mark and len(question_text) <= 200:
        return _Title(unit, question_text, True, 8, wrapper)
    return None


def _leading_bold(parts: list[tuple[str, bool, bool]]) -> Iterator[tuple[str, bool, bool]]:
    for part in parts:
        if not part[1] and part[0].strip():
            return
        yield part


def _split_inline_answer(text: str) -> tuple[str, str | None]:
    """ "How long? A: Two weeks." -> ("How long?", "Two weeks.")."""
    match = re.search(r"(?<=[?.])\s+A(?:nswer)?\s*[:.)]\s+", text)
    if match:
        return text[: match.start()], text[match.end() :].strip() or None
    return text, None


def _item_scope(title: _Title, all_titles: list[_Title]) -> Any:
    """The element whose text an answer may come from: the title's item (the largest ancestor holding no
    other title), or, when the title is a bare heading or paragraph among siblings, its parent."""
    others = [other.unit.element for other in all_titles if other is not title]
    item = title.wrapper
    for ancestor in title.wrapper.iterancestors():
        if ancestor.tag in {"body", "html"}:
            break
        if any(_contains(ancestor, other) for other in others):
            break
        item = ancestor
    if item is title.wrapper or item.tag in {"p", "font", "span", "b", "strong", "h2", "h3", "h4", "h5", "h6"}:
        parent = item.getparent()
        return parent if parent is not None else item
    return item


def _contains(ancestor: Any, element: Any) -> bool:
    return any(candidate is ancestor for candidate in element.iterancestors()) or element is ancestor


def _merge_soft_breaks(units: list[_Unit]) -> list[_Unit]:
    """Markdown soft line breaks: lines of one paragraph are one unit, unless a line is a Q/A marker or
    the line before it is a bold question."""
    merged: list[_Unit] = []
    for unit in units:
        previous = merged[-1] if merged else None
        if (
            unit.soft
            and previous is not None
            and previous.owner is unit.owner
            and not _Q_MARKER.match(unit.text)
            and not _A_MARKER.match(unit.text)
            and not (previous.bold and previous.text.endswith("?"))
            and not _Q_MARKER.match(previous.text)
        ):
            previous.parts.append((" ", previous.parts[-1][1], previous.parts[-1][2]))
            previous.parts.extend(unit.parts)
            continue
        merged.append(unit)
    return merged


@dataclass
class PagePair:
    question: str
    answer: str
    section: str | None
    line: int
    is_question: bool


def _answer_text(units: list[_Unit]) -> str:
    lines: list[str] = []
    previous: _Unit | None = None
    for position, unit in enumerate(units):
        text = unit.text
        if position == 0:
            text = _A_MARKER.sub("", text, count=1)
        if unit.list_marker:
            text = unit.list_marker + text
        if previous is not None:
            same_paragraph = previous.owner is unit.owner or (unit.list_marker and previous.owner.tag == "li")
            lines.append("\n" if same_paragraph else "\n\n")
        lines.append(text)
        previous = unit
    return "".join(lines).strip()


def _pairs_from_units(units: list[_Unit], notes: list[str], *, strict: bool) -> list[PagePair]:
    titles: list[_Title] = []
    title_at: dict[int, _Title] = {}
    for position, unit in enumerate(units):
        title = _title_of(unit, strict)
        if title is not None:
            titles.append(title)
            title_at[position] = title
    for position in sorted(title_at, reverse=True):  # from the end: whether the next title stays is known
        title, following = title_at[position], title_at.get(position + 1)
        container = title.wrapper.getparent()
        if title.weak and (following is None or container is None or not _contains(container, following.unit.element)):
            del title_at[position]
    apart, region = _outside_faq(list(title_at.values()))
    family_sizes = Counter(_signature(title) for title in title_at.values())
    for position, title in list(title_at.items()):
        if id(title) in apart:
            notes.append(f"line {title.unit.line}: {title.question!r} stands apart from the FAQ's questions; skipped")
            del title_at[position]
    titles = [title for title in titles if any(title is kept for kept in title_at.values())]
    scopes = {id(title): _item_scope(title, titles) for title in titles}

    pairs: list[PagePair] = []
    labels: list[str | None] = []  # the labelled group each pair sits in
    sections: list[tuple[_Title, Any]] = []  # (section title, its scope), outermost first
    position = 0
    while position < len(units):
        title = title_at.get(position)
        if title is None:
            position += 1
            continue
        scope = scopes[id(title)]
        answer_units: list[_Unit] = []
        cursor = position + 1
        while (
            cursor < len(units)
            and cursor not in title_at
            and not units[cursor].after_rule
            and _contains(scope, units[cursor].element)
        ):
            if not _NOT_ANSWER.match(units[cursor].text):
                answer_units.append(units[cursor])
            cursor += 1
        sections = [(s, s_scope) for s, s_scope in sections if _contains(s_scope, title.unit.element)]
        inline = title.inline_answer
        next_title = title_at.get(cursor)
        followed_by_question = (
            not answer_units and inline is None and next_title is not None and _contains(scope, next_title.unit.element)
        )
        if not title.is_question and (followed_by_question or (not answer_units and inline is None)):
            # a section heading ("Insurance and Billing"), or a heading with nothing under it
            sections = [(s, s_scope) for s, s_scope in sections if s.rank < title.rank]
            if followed_by_question:
                sections.append((title, scope))
            position = cursor
            continue
        if title.is_question and followed_by_question and title.rank < next_title.rank:  # type: ignore[union-attr]
            sections = [(s, s_scope) for s, s_scope in sections if s.rank < title.rank]
            sections.append((title, scope))
            position = cursor
            continue
        if title.rank <= 6:
            sections = [(s, s_scope) for s, s_scope in sections if s.rank < title.rank]
        answer = "\n\n".join(part for part in [inline, _answer_text(answer_units)] if part)
        if answer_units and all(unit.link_only for unit in answer_units) and inline is None:
            notes.append(f"line {title.unit.line}: {title.question!r} is followed only by links; skipped")
        elif _CALL_TO_ACTION.match(title.question):
            notes.append(f"line {title.unit.line}: {title.question!r} is a call to action, not a question; skipped")
        elif not answer:
            notes.append(f"line {title.unit.line}: {title.question!r} has no answer text; skipped")
        elif _WHOLE_FAQ.match(title.question):
            notes.append(f"line {title.unit.line}: {title.question!r} names the whole FAQ; skipped")
        elif not title.is_question and region is not None and not _contains(region, title.unit.element):
            notes.append(f"line {title.unit.line}: {title.question!r} is no question and stands apart from the FAQ")
        elif (
            not title.is_question
            and title.rank <= 6
            and not _is_trigger(title.wrapper)
            and not (_in_faq(title) and family_sizes.get(_signature(title), 0) >= 3)
        ):
            notes.append(f"line {title.unit.line}: heading {title.question!r} is not a question; skipped")
        else:
            named = [s.question for s, _ in sections if not _WHOLE_FAQ.match(s.question)]
            section = named[-1] if named else None
            pairs.append(PagePair(title.question, answer, section, title.unit.line, title.is_question))
            labels.append(_group_label(title))
        position = cursor
    # groups named by their markup (tab panels, captioned tables, labelled regions) are sections when
    # the FAQ has several of them; a single one names the whole FAQ
    if len({label for label in labels if label}) >= 2:
        for pair, label in zip(pairs, labels, strict=True):
            pair.section = pair.section or label
    return pairs


_LABEL = "data-qa-group-label"


def _record_group_labels(root: Any) -> None:
    """Store the text that names each labelled group (``aria-labelledby``) on the group itself, before
    page furniture such as tab bars is removed."""
    by_id = {
        element.get("id"): element for element in root.iter() if isinstance(element.tag, str) and element.get("id")
    }
    for element in root.iter():
        if not isinstance(element.tag, str) or not (ids := element.get("aria-labelledby")):
            continue
        labels = [" ".join(by_id[name].text_content().split()) for name in ids.split() if name in by_id]
        if text := " ".join(label for label in labels if label):
            element.set(_LABEL, text)


def _group_label(title: _Title) -> str | None:
    """The name of the innermost labelled group holding a title: a table's caption, a fieldset's legend,
    an ``aria-labelledby``/``aria-label`` of a section, tab panel or region."""
    for ancestor in title.wrapper.iterancestors():
        label = None
        if ancestor.tag == "table" and (caption := ancestor.find("caption")) is not None:
            label = " ".join(caption.text_content().split())
        elif ancestor.tag == "fieldset" and (legend := ancestor.find("legend")) is not None:
            label = " ".join(legend.text_content().split())
        elif ancestor.tag == "section" or (ancestor.get("role") or "") in {"tabpanel", "region", "group"}:
            label = ancestor.get(_LABEL) or ancestor.get("aria-label")
        if label and label != title.question and not _WHOLE_FAQ.match(label) and len(label) <= 120:
            return label
    return None


_STATE_CLASSES = {"collapsed", "active", "open", "opened", "show", "in", "expanded", "current", "is-open",
                  "is-active", "selected", "first", "last", "closed", "is-collapsed"}  # fmt: skip


def _signature(title: _Title) -> tuple[Any, ...]:
    """What titles of one FAQ widget share: rank, tag and classes (less state and numbering classes)."""
    classes = {
        name for name in (title.wrapper.get("class") or "").split()
        if name.lower() not in _STATE_CLASSES and not any(char.isdigit() for char in name)
    }  # fmt: skip
    return title.rank, title.wrapper.tag, frozenset(classes)


def _outside_faq(titles: list[_Title]) -> tuple[set[int], Any]:
    """The FAQ's region (the element holding the page's main family of at least three alike question
    titles, or None), and the lone question titles outside it (a hero's "Planning a trip abroad?")."""
    families: dict[tuple[Any, ...], list[_Title]] = {}
    for title in titles:
        if title.is_question:
            families.setdefault(_signature(title), []).append(title)
    if not families:
        return set(), None
    members = max(families.values(), key=len)
    if len(members) < 3:
        return set(), None
    region = next(
        (
            ancestor
            for ancestor in members[0].wrapper.iterancestors()
            if all(_contains(ancestor, member.wrapper) for member in members)
        ),
        None,
    )
    if region is None:
        return set(), None
    lone = {
        id(title)
        for title in titles
        if len(families.get(_signature(title), [])) == 1 and not _contains(region, title.unit.element)
    }
    return lone, region


def _in_faq(title: _Title) -> bool:
    return any(_words(ancestor) & {"faq", "faqs", "accordion", "toggle", "toggles"} for ancestor in
               (title.wrapper, *title.wrapper.iterancestors()))  # fmt: skip


def text_of_fragment(fragment_html: str) -> str:
    """An answer given as HTML (JSON-LD ``text``): its visible text, lists as lines."""
    try:
        root = lxml_html.fragment_fromstring(fragment_html, create_parent="div")
    except (etree.ParserError, ValueError):
        return " ".join(fragment_html.split())
    return _answer_text(_units(root))


def structured_pairs(doc: Any) -> list[PagePair]:
    """schema.org FAQPage questions from JSON-LD and microdata."""
    pairs: list[PagePair] = []
    for node in jsonld_nodes(doc):
        if not node_types(node) & FAQ_TYPES:
            continue
        entities = node.get("mainEntity") or []
        for question in entities if isinstance(entities, list) else [entities]:
            if not isinstance(question, dict):
                continue
            answer = question.get("acceptedAnswer") or question.get("suggestedAnswer")
            if isinstance(answer, list):
                answer = answer[0] if answer else None
            name, text = question.get("name"), answer.get("text") if isinstance(answer, dict) else None
            if isinstance(name, str) and isinstance(text, str):
                question_text, answer_text = _tidy_question(text_of_fragment(name)), text_of_fragment(text)
                if question_text and answer_text:
                    pairs.append(PagePair(question_text, answer_text, None, 1, question_text.endswith("?")))
    for scope in doc.xpath("//*[@itemscope][contains(@itemtype,'Question')]"):
        names = scope.xpath(".//*[@itemprop='name']")
        answers = scope.xpath(".//*[@itemprop='acceptedAnswer']//*[@itemprop='text']")
        if names and answers:
            question_text = _tidy_question(" ".join(names[0].text_content().split()))
            answer_text = _answer_text(_units(answers[0]))
            if question_text and answer_text:
                line = int(names[0].sourceline or 1)
                pairs.append(PagePair(question_text, answer_text, None, line, question_text.endswith("?")))
    return pairs


def pairs_from_tree(doc: Any, notes: list[str]) -> list[PagePair]:
    """Pairs of a parsed page: visible ones in page order, then structured-data ones the page does not show."""
    structured = structured_pairs(doc)
    body = doc.find("body") if doc.tag == "html" else doc
    if body is None:
        body = doc
    _record_group_labels(body)
    remove_page_furniture(body, notes)
    units = _merge_soft_breaks(_units(body))
    visible = _pairs_from_units(units, notes, strict=True)
    if not visible and not structured:
        loose = _pairs_from_units(units, [], strict=False)
        if loose:
            notes.append("no marked-up questions found: took paragraphs ending with '?' as questions")
            visible = loose
    seen = {question_key(pair.question) for pair in visible}
    sections = {question_key(pair.question): pair.section for pair in visible}
    merged = list(visible)
    added = 0
    for pair in structured:
        key = question_key(pair.question)
        if key not in seen:
            seen.add(key)
            pair.section = sections.get(key)
            merged.append(pair)
            added += 1
    if structured:
        notes.append(
            f"schema.org FAQPage data lists {len(structured)} question(s); {added} of them not shown on the page"
        )
    return merged


def parse_tree(doc: Any, info: PageInfo, *, source_name: str, notes: list[str], anchor: str = "L") -> ImportResult:
    """Entries from a parsed page and its attribution (shared by the HTML, Markdown and Word importers).
    ``anchor`` names what the source position counts: "L" lines, "P" paragraphs (Word)."""
    page_text = " ".join(" ".join(doc.itertext()).split())
    pairs = pairs_from_tree(doc, notes)
    date_note = info.review_note()
    entries = []
    for pair in pairs:
        flags = answer_flags(pair.answer)
        if not pair.is_question:
            flags.append("needs_question")
        if info.unresolved:
            flags.append("relative_date")
        entries.append(
            FaqEntry(
                id="pending",
                question=pair.question,
                answer=pair.answer,
                source=Source(
                    title=info.title,
                    publisher=info.publisher,
                    url=info.url,
                    author=info.author,
                    published=info.published,
                    updated=info.updated,
                    section=pair.section,
                    quotes=extract_quotes(pair.answer, page_text),
                    file=f"{source_name}#{anchor}{pair.line}",
                ),
                flags=flags,
                notes=date_note,
            )
        )
    return ImportResult(entries=mark_duplicate_questions(assign_ids(entries)), notes=notes, info=info)


_HEAD_TAGS = {"title", "meta", "link", "style", "script", "base", "noscript", "template"}


def html_document(markup: str) -> Any:
    """A parsed page; characters no HTML text may hold (NUL, controls) are dropped first.

    libxml2 keeps content that follows a ``<style>`` in a page without ``<head>``/``<body>`` tags (a
    pasted fragment) in the head; as a browser does, the head ends at the first element that cannot be
    in it, and the rest moves to the body."""
    doc = lxml_html.document_fromstring(_CONTROL.sub("", markup.removeprefix("\ufeff")))
    head = doc.find("head")
    if head is None:
        return doc
    strays: list[Any] = []
    for child in head:
        if strays or (isinstance(child.tag, str) and child.tag not in _HEAD_TAGS):
            strays.append(child)
    if strays:
        body = doc.find("body")
        if body is None:
            body = etree.SubElement(doc, "body")
        for position, child in enumerate(strays):
            body.insert(position, child)
    return doc


def parse_html(text: str, *, source_name: str, as_of: date | None = None, path: str | None = None) -> ImportResult:
    """Parse an HTML page (a whole document or a pasted fragment) into entries."""
    notes: list[str] = []
    if not text.strip():
        return ImportResult(entries=[], notes=["the page is empty"])
    try:
        doc = html_document(text)
    except (etree.ParserError, ValueError) as exc:
        raise CorpusError(f"{path or source_name}: not an HTML page ({exc})") from None
    info = read_page_info(doc, text, as_of=as_of)
    return parse_tree(doc, info, source_name=source_name, notes=notes)
