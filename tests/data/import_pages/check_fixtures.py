#!/usr/bin/env python3
"""Sanity checker for the FAQ import fixtures in this folder.

For every page (``.html``, ``.md`` or ``.docx``) in ``dev/``, ``holdout/`` and ``holdout2/``
it checks that the neighbouring ``<name>.expected.json``:

* is valid JSON with the keys ``layout``, ``attribution`` and ``pairs``
  (each pair: ``question``, ``answer_start``, ``answer_end``, ``section``);
* lists only attribution values that the page actually states;
* lists pairs whose question, answer_start and answer_end occur, in that
  order and in document order, in a plain-text rendering of the page
  (visible text for HTML; for HTML pages whose FAQ is also given as
  schema.org JSON-LD, the JSON-LD text is accepted as an alternative
  rendering), and whose ``section`` heading occurs before the question.

The text rendering is deliberately simple and independent of any importer:
HTML goes through the standard library ``html.parser`` (script/style/title
dropped, entities decoded, block elements and ``<br>`` become spaces),
Markdown has its syntax stripped with a few regular expressions, and
``.docx`` is read with python-docx. Whitespace is collapsed everywhere.

Run:  python tests/data/import_pages/check_fixtures.py [-v]
Exit status is 0 when every fixture passes (warnings do not fail).
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent
EXPECTED_COUNTS = {"dev": 28, "holdout": 10, "holdout2": 10}
MIN_DEV_PAIRS = 180
MIN_FORMATS = {"dev": {".md": 4, ".docx": 3}, "holdout": {".md": 2, ".docx": 1}, "holdout2": {".md": 1, ".docx": 1}}
PAGE_SUFFIXES = (".html", ".md", ".docx")
ATTR_KEYS = {"title", "url", "publisher", "author", "published", "updated", "relative_date"}
PAIR_KEYS = {"question", "answer_start", "answer_end", "section"}

BLOCK_TAGS = {
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "br",
    "button",
    "caption",
    "dd",
    "details",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "html",
    "img",
    "input",
    "label",
    "legend",
    "li",
    "main",
    "nav",
    "ol",
    "option",
    "p",
    "pre",
    "section",
    "select",
    "summary",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "ul",
    "center",
    "font-block",
}
SKIP_TAGS = {"script", "style", "noscript", "template", "title", "svg"}


def collapse(text: str) -> str:
    return " ".join(text.split())


class _TextRenderer(HTMLParser):
    """Visible-ish text of an HTML document; also collects JSON-LD blocks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0
        self.in_jsonld = False
        self.jsonld: list[str] = []
        self._buf: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in SKIP_TAGS:
            self.skip += 1
            if tag == "script" and (dict(attrs).get("type") or "").lower() == "application/ld+json":
                self.in_jsonld = True
                self._buf = []
            return
        if tag in BLOCK_TAGS:
            self.parts.append(" ")

    def handle_startendtag(self, tag, attrs):
        if tag in BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag):
        if tag in SKIP_TAGS:
            if self.skip:
                self.skip -= 1
            if tag == "script" and self.in_jsonld:
                self.jsonld.append("".join(self._buf))
                self.in_jsonld = False
            return
        if tag in BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data):
        if self.in_jsonld:
            self._buf.append(data)
        elif not self.skip:
            self.parts.append(data)


def html_to_text(markup: str) -> tuple[str, list[str]]:
    parser = _TextRenderer()
    parser.feed(markup)
    parser.close()
    return collapse("".join(parser.parts)), parser.jsonld


def _walk_jsonld(node, out: list[str]) -> None:
    """Append 'question answer' text for every schema.org Question found."""
    if isinstance(node, list):
        for item in node:
            _walk_jsonld(item, out)
        return
    if not isinstance(node, dict):
        return
    types = node.get("@type")
    types = types if isinstance(types, list) else [types]
    if "Question" in types:
        out.append(html_to_text(html.unescape(str(node.get("name", ""))))[0])
        answer = node.get("acceptedAnswer") or {}
        if isinstance(answer, list):
            answer = answer[0] if answer else {}
        out.append(html_to_text(str(answer.get("text", "")))[0])
        return
    for value in node.values():
        _walk_jsonld(value, out)


def jsonld_text(blocks: list[str]) -> str:
    out: list[str] = []
    for block in blocks:
        try:
            data = json.loads(block)
        except json.JSONDecodeError as exc:  # a broken block is an error in a fixture
            raise ValueError(f"invalid JSON-LD block: {exc}") from exc
        _walk_jsonld(data, out)
    return collapse(" ".join(out))


FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.S)


def md_to_text(source: str) -> tuple[str, dict[str, str]]:
    meta: dict[str, str] = {}
    m = FRONT_MATTER.match(source)
    if m:
        for line in m.group(1).splitlines():
            if ":" in line:
                key, value = line.split(":", 1)
                meta[key.strip()] = value.strip().strip("\"'")
        source = source[m.end() :]
    lines = []
    for line in source.splitlines():
        if re.fullmatch(r"\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*", line):
            continue  # table separator row
        if re.fullmatch(r"\s*([-*_])(\s*\1){2,}\s*", line):
            continue  # horizontal rule
        if re.fullmatch(r"\s*=+\s*", line):
            continue  # setext H1 underline
        line = re.sub(r"^\s{0,3}#{1,6}\s+", "", line)
        line = re.sub(r"\s+#+\s*$", "", line)
        line = re.sub(r"^\s*>\s?", "", line)
        line = re.sub(r"^\s*(?:[-*+]|\d+[.)])\s+", "", line)
        line = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", line)
        line = re.sub(r"<(https?://[^>]+)>", r"\1", line)
        line = line.replace("**", "").replace("__", "")
        line = re.sub(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])", r"\1", line)
        line = re.sub(r"(?<![\w])_(?=\S)(.+?)(?<=\S)_(?![\w])", r"\1", line)
        line = line.replace("`", "").replace("|", " ")
        line = re.sub(r"\\([\\`*_{}\[\]()#+\-.!])", r"\1", line)
        lines.append(line)
    return collapse(" ".join(lines)), meta


def docx_to_text(path: Path) -> tuple[str, dict[str, str]]:
    import docx  # python-docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    document = docx.Document(str(path))
    parts: list[str] = []
    for child in document.element.body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            parts.append(Paragraph(child, document).text)
        elif tag == "tbl":
            for row in Table(child, document).rows:
                for cell in row.cells:
                    parts.append(cell.text)
    props = document.core_properties
    meta = {
        "title": props.title or "",
        "author": props.author or "",
        "published": props.created.date().isoformat() if props.created else "",
        "updated": props.modified.date().isoformat() if props.modified else "",
    }
    return collapse(" ".join(parts)), meta


def _date_forms(iso: str) -> list[str]:
    if len(iso) < 10:  # a month or a year: as the page writes it ("March 2024")
        year, _, month_number = iso.partition("-")
        if not month_number:
            return [year]
        month = _dt.date(int(year), int(month_number), 1).strftime("%B")
        return [iso, f"{month} {year}", f"{month[:3]} {year}"]
    d = _dt.date.fromisoformat(iso)
    month = d.strftime("%B")
    return [
        iso,
        f"{d.day} {month} {d.year}",
        f"{month} {d.day}, {d.year}",
        f"{d.day} {month[:3]} {d.year}",
        f"{month[:3]} {d.day}, {d.year}",
        d.strftime("%d/%m/%Y"),
    ]


def check_attribution(attr: dict, kind: str, raw: str, meta: dict[str, str]) -> list[str]:
    errors = []
    unknown = set(attr) - ATTR_KEYS
    if unknown:
        errors.append(f"unknown attribution keys: {sorted(unknown)}")
    for key, value in attr.items():
        if not isinstance(value, str) or not value.strip():
            errors.append(f"attribution.{key} must be a non-empty string")
            continue
        if key in ("published", "updated") and not re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", value):
            errors.append(f"attribution.{key} not YYYY-MM-DD, YYYY-MM or YYYY: {value!r}")
            continue
        if key == "url" and not value.startswith(("http://", "https://")):
            errors.append(f"attribution.url is not absolute: {value!r}")
        if kind == ".docx":
            if meta.get(key) != value:
                errors.append(f"attribution.{key}={value!r} but core property is {meta.get(key)!r}")
            continue
        haystack = collapse(raw)
        if kind == ".md":
            haystack += " " + " ".join(meta.values())
        forms = _date_forms(value) if key in ("published", "updated") else [value]
        if not any(collapse(f) in haystack for f in forms):
            errors.append(f"attribution.{key}={value!r} is not stated in the page")
    if "relative_date" in attr and ({"published", "updated"} & set(attr)):
        errors.append("relative_date given together with an absolute date")
    return errors


def check_sequence(text: str, pairs: list[dict]) -> tuple[list[str], list[str], list[str]]:
    """Return (errors, warnings, notes) for the pairs against one rendering."""
    errors: list[str] = []
    warnings: list[str] = []
    notes: list[str] = []
    cursor = 0
    prev_end = None
    for i, pair in enumerate(pairs, 1):
        q, s, e = pair["question"], pair["answer_start"], pair["answer_end"]
        section = pair.get("section")
        qpos = text.find(q, cursor)
        if qpos < 0:
            where = "anywhere" if text.find(q) < 0 else "after the previous pair"
            errors.append(f"#{i} question not found {where}: {q!r}")
            continue
        spos = text.find(s, qpos + len(q))
        if spos < 0:
            errors.append(f"#{i} answer_start not found after question: {s!r}")
            continue
        while True:  # prefer the occurrence of q closest before the answer (skips a TOC)
            nxt = text.find(q, qpos + 1)
            if nxt < 0 or nxt + len(q) > spos:
                break
            qpos = nxt
        gap = text[qpos + len(q) : spos]
        if len(gap) > 40:
            warnings.append(f"#{i} {len(gap)} chars between question and answer_start: {gap[:80]!r}")
        epos = text.find(e, spos)
        if epos < 0:
            errors.append(f"#{i} answer_end not found after answer_start: {e!r}")
            continue
        if prev_end is not None:
            between = text[prev_end:qpos]
            if section:
                between = between.replace(section, "")
            if len(between.strip()) > 60:
                warnings.append(
                    f"#{i} {len(between)} chars between previous answer_end and question: {between[:100]!r}"
                )
        if section is not None and text.rfind(section, 0, qpos) < 0:
            errors.append(f"#{i} section {section!r} not found before the question")
        prev_end = epos + len(e)
        cursor = prev_end
        if i == len(pairs):
            notes.append(f"after last answer: {text[prev_end : prev_end + 100]!r}")
    return errors, warnings, notes


def check_pair_format(i: int, pair) -> list[str]:
    errors = []
    if not isinstance(pair, dict):
        return [f"#{i} pair is not an object"]
    if set(pair) != PAIR_KEYS:
        errors.append(f"#{i} keys {sorted(pair)} != {sorted(PAIR_KEYS)}")
    for key in ("question", "answer_start", "answer_end"):
        value = pair.get(key)
        if not isinstance(value, str) or not value.strip():
            errors.append(f"#{i} {key} must be a non-empty string")
        elif value != collapse(value):
            errors.append(f"#{i} {key} is not whitespace-collapsed: {value!r}")
    section = pair.get("section")
    if section is not None and (not isinstance(section, str) or section != collapse(section) or not section):
        errors.append(f"#{i} section must be null or a collapsed non-empty string")
    if isinstance(pair.get("answer_start"), str) and len(pair["answer_start"].split()) > 8:
        errors.append(f"#{i} answer_start has more than 8 words")
    if isinstance(pair.get("answer_end"), str) and len(pair["answer_end"].split()) > 6:
        errors.append(f"#{i} answer_end has more than 6 words")
    q = pair.get("question") or ""
    if re.match(r"(?i)^(q[:.]|question:|\d+[.)]\s)", q):
        errors.append(f"#{i} question still carries a marker or number: {q!r}")
    if re.match(r"(?i)^(a[:.]\s|answer:)", pair.get("answer_start") or ""):
        errors.append(f"#{i} answer_start still carries a marker")
    return errors


def check_page(page: Path, verbose: bool) -> tuple[list[str], list[str], int]:
    expected_path = page.with_name(page.stem + ".expected.json")
    if not expected_path.exists():
        return [f"missing {expected_path.name}"], [], 0
    try:
        expected = json.loads(expected_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        return [f"invalid JSON: {exc}"], [], 0
    errors: list[str] = []
    warnings: list[str] = []
    if set(expected) != {"layout", "attribution", "pairs"}:
        errors.append(f"top-level keys {sorted(expected)} != ['attribution', 'layout', 'pairs']")
    if not isinstance(expected.get("layout"), str) or not expected["layout"].strip():
        errors.append("layout must be a non-empty string")
    pairs = expected.get("pairs")
    if not isinstance(pairs, list) or not 3 <= len(pairs) <= 12:
        errors.append("pairs must be a list of 3-12 pairs")
        pairs = pairs if isinstance(pairs, list) else []
    for i, pair in enumerate(pairs, 1):
        errors += check_pair_format(i, pair)
    if errors:
        return errors, warnings, len(pairs)

    kind = page.suffix
    meta: dict[str, str] = {}
    sources: list[tuple[str, str]] = []
    raw = ""
    if kind == ".html":
        raw = page.read_text(encoding="utf-8")
        visible, blocks = html_to_text(raw)
        sources.append(("visible text", visible))
        try:
            ld = jsonld_text(blocks)
        except ValueError as exc:
            errors.append(str(exc))
            ld = ""
        if ld:
            sources.append(("JSON-LD", ld))
        raw = html.unescape(raw)
    elif kind == ".md":
        raw = page.read_text(encoding="utf-8")
        text, meta = md_to_text(raw)
        sources.append(("markdown text", text))
    elif kind == ".docx":
        text, meta = docx_to_text(page)
        sources.append(("docx text", text))

    attribution = expected.get("attribution")
    if not isinstance(attribution, dict):
        errors.append("attribution must be an object")
    else:
        errors += check_attribution(attribution, kind, raw, meta)

    questions = [p["question"] for p in pairs]
    if len(set(questions)) != len(questions):
        errors.append("duplicate questions in expected pairs")

    first_errors = None
    for name, text in sources:
        errs, warns, notes = check_sequence(text, pairs)
        if not errs:
            warnings += [f"[{name}] {w}" for w in warns]
            if verbose:
                warnings += [f"[{name}] note: {n}" for n in notes]
            break
        if first_errors is None:
            first_errors = [f"[{name}] {e}" for e in errs]
    else:
        errors += first_errors or []

    if verbose and kind == ".html":
        # question-shaped strings in the page that are not expected pairs (review traps by eye)
        visible = sources[0][1]
        found = set(re.findall(r"[A-Z][^.?!:]{8,120}\?", visible))
        extra = sorted(f for f in found if not any(f in q or q in f for q in questions))
        for f in extra:
            warnings.append(f"note: unlisted question-shaped text: {f!r}")
    return errors, warnings, len(pairs)


def main(argv: list[str]) -> int:
    verbose = "-v" in argv
    only = [a for a in argv if not a.startswith("-")]
    failed = False
    readme = (ROOT / "README.md").read_text(encoding="utf-8") if (ROOT / "README.md").exists() else ""
    for folder, want in EXPECTED_COUNTS.items():
        pages = sorted(
            p
            for p in (ROOT / folder).iterdir()
            if p.suffix in PAGE_SUFFIXES and not p.name.startswith("~$") and p.name != "README.md"
        )
        total = 0
        for page in pages:
            if only and not any(o in page.name for o in only):
                continue
            errors, warnings, n = check_page(page, verbose)
            total += n
            if f"{folder}/{page.name}" not in readme:
                warnings.append("page is not listed in README.md")
            status = "FAIL" if errors else "ok"
            print(f"{status:4} {folder}/{page.name} ({n} pairs)")
            for e in errors:
                print(f"     ERROR {e}")
            for w in warnings:
                print(f"     warn  {w}")
            failed |= bool(errors)
        jsons = sorted((ROOT / folder).glob("*.expected.json"))
        orphans = [
            j.name
            for j in jsons
            if not any((ROOT / folder / (j.name[: -len(".expected.json")] + s)).exists() for s in PAGE_SUFFIXES)
        ]
        if orphans:
            print(f"FAIL {folder}: expected.json without a page: {orphans}")
            failed = True
        if only:
            continue
        print(f"---- {folder}: {len(pages)} pages, {total} pairs")
        if len(pages) != want:
            print(f"FAIL {folder}: expected {want} pages, found {len(pages)}")
            failed = True
        for suffix, minimum in MIN_FORMATS[folder].items():
            count = sum(1 for p in pages if p.suffix == suffix)
            if count < minimum:
                print(f"FAIL {folder}: {count} {suffix} pages, need at least {minimum}")
                failed = True
        if folder == "dev" and total < MIN_DEV_PAIRS:
            print(f"FAIL dev: {total} pairs, need at least {MIN_DEV_PAIRS}")
            failed = True
    print("FAILED" if failed else "all fixtures OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
