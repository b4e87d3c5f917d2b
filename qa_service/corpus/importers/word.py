"""A Word ``.docx`` FAQ into entries: questions as headings or bold paragraphs, answers in the paragraphs,
lists and tables after them; attribution from the document's properties.

python-docx reads the document; each paragraph becomes an element of the tree the HTML importer reads
("Heading 2" -> ``h2``, a paragraph whose text is all bold -> ``<p><b>``, list styles -> list items), so
the same rules find the pairs. ``file`` points at the paragraph: ``faq.docx#P12``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from lxml import etree
from lxml.html import builder as E

from qa_service.corpus.importers.common import ImportResult
from qa_service.corpus.importers.dates import parse_source_date
from qa_service.corpus.importers.html_page import parse_tree
from qa_service.corpus.importers.page_info import PageInfo
from qa_service.errors import CorpusError


def _style_name(paragraph: Any) -> str:
    try:
        return str(paragraph.style.name or "")
    except (AttributeError, KeyError, ValueError):  # a style id the document does not define
        return ""


def _is_list(paragraph: Any, style: str) -> tuple[bool, bool]:
    """(is a list item, is numbered)."""
    lowered = style.lower()
    if lowered.startswith("list number"):
        return True, True
    if lowered.startswith(("list bullet", "list paragraph")):
        return True, False
    properties = paragraph._p.pPr
    if properties is not None and properties.numPr is not None:
        return True, False
    return False, False


def _paragraph_element(paragraph: Any, number: int) -> tuple[Any, str | None]:
    """(element, list kind "ul"/"ol" or None) for one paragraph."""
    style = _style_name(paragraph)
    text = paragraph.text
    runs = [run for run in paragraph.runs if run.text.strip()]
    bold = bool(runs) and all(run.bold or (run.style is not None and run.style.font.bold) for run in runs)
    lowered = style.lower()
    is_item, numbered = _is_list(paragraph, style)
    if lowered == "title":
        element = E.H1(text)
    elif lowered.startswith("heading ") and lowered[8:].strip().isdigit():
        element = getattr(E, f"H{min(max(int(lowered[8:]), 1), 6)}")(text)
    elif is_item:
        element = E.LI(*_text_with_breaks(text))
    elif bold:
        element = E.P(E.B(text))
    else:
        element = E.P(*_text_with_breaks(text))
    element.set("data-line", str(number))
    if element.tag == "li":
        return element, "ol" if numbered else "ul"
    return element, None


def _text_with_breaks(text: str) -> list[Any]:
    """A paragraph's text with its line breaks (Shift+Enter) as ``<br>``."""
    lines = text.split("\n")
    parts: list[Any] = [lines[0]]
    for line in lines[1:]:
        parts += [E.BR(), line]
    return parts


def _table_element(table: Any, number: int) -> Any:
    rows = []
    for row in table.rows:
        rows.append(E.TR(*[E.TD(cell.text) for cell in row.cells]))
    element = E.TABLE(*rows)
    element.set("data-line", str(number))
    return element


def _document_tree(document: Any) -> Any:
    body = E.BODY()
    open_list: tuple[str, Any] | None = None
    last_blank: Any = None  # the element after the last empty paragraph
    blank = False
    for number, block in enumerate(document.iter_inner_content(), start=1):
        if block.__class__.__name__ == "Table":
            element: Any = _table_element(block, number)
            list_kind = None
        elif not block.text.strip():
            blank, open_list = True, None
            continue
        else:
            element, list_kind = _paragraph_element(block, number)
        if blank:
            last_blank, blank = element, False
        if list_kind is None:
            body.append(element)
            open_list = None
            continue
        if open_list is None or open_list[0] != list_kind:
            container = E.OL() if list_kind == "ol" else E.UL()
            body.append(container)
            open_list = (list_kind, container)
        open_list[1].append(element)
    _mark_closing_note(body, last_blank)
    return E.HTML(body)


def _mark_closing_note(body: Any, first: Any) -> None:
    """A document that ends, after an empty paragraph, with one or two plain paragraphs (a contact line,
    "Please note: ..."), ends its last answer there: a rule is put before them."""
    if first is None or first.getparent() is not body:
        return
    tail = list(body)[list(body).index(first) :]
    if len(tail) <= 2 and all(element.tag == "p" for element in tail):
        first.addprevious(E.HR())


def parse_docx(path: Path, *, source_name: str) -> ImportResult:
    import docx  # python-docx; imported here: only this importer needs it
    from docx.opc.exceptions import OpcError

    if not path.is_file():
        raise CorpusError(f"{path}: no such file")
    try:
        document = docx.Document(str(path))
    except (OpcError, zipfile.BadZipFile, KeyError, ValueError, etree.XMLSyntaxError) as exc:
        raise CorpusError(f"{path}: not a Word .docx document ({exc})") from None
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read: {exc.strerror}") from None
    tree = _document_tree(document)
    properties = document.core_properties
    info = PageInfo(
        title=(properties.title or "").strip() or None,
        author=(properties.author or "").strip() or None,
    )
    if info.title is None and (heading := tree.find(".//h1")) is not None:
        info.title = " ".join(heading.text_content().split()) or None
    created, modified = properties.created, properties.modified
    info.set_date("published", parse_source_date(created.date().isoformat() if created else None), None)
    info.set_date("updated", parse_source_date(modified.date().isoformat() if modified else None), None)
    return parse_tree(tree, info, source_name=source_name, notes=[], anchor="P")
