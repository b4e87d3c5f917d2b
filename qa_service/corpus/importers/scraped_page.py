"""Turn a scraped FAQ page (search-result style text: a headline with a byline, "People also ask"
questions with their answers, site sections with "See more on ..." links) into curated entries.

The parser never rewrites advice: answer text is kept word for word. It only removes page furniture
("image" placeholders, the A-Z navigation line, "Advertisement" labels, photo credits, glued snippet
dates), normalises list markers, and records what a reviewer must know as flags.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

from qa_service.corpus.entries import FaqEntry, Source
from qa_service.corpus.importers.common import ImportResult, assign_ids, mark_duplicate_questions
from qa_service.corpus.importers.dates import parse_source_date
from qa_service.corpus.importers.page_info import PageInfo

_BULLET = re.compile(r"^\s*[•·▪●◦‣∙*-]\s+(?P<text>.*\S)\s*$")
_NUMBERED = re.compile(r"^\s*(?P<number>\d{1,3})[.)]\s+(?P<text>.*\S)\s*$")
_BYLINE = re.compile(
    r"^by\s+(?P<author>.+?)\s+Published\s+(?P<published>.+?)(?:\s+Updated\s+(?P<updated>.+?))?\s*$",
    re.IGNORECASE,
)
_SEE_MORE = re.compile(r"^\s*See more on\s+(?P<site>\S+?)\s*$", re.IGNORECASE)
_MORE_ITEMS = re.compile(r"^\s*More items\s*(?:\.\.\.|…)\s*$", re.IGNORECASE)
_IMAGE = re.compile(r"^\s*image\s*$", re.IGNORECASE)
_MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
_GLUED_DATE = re.compile(rf"(?<=[.!?)\]”\"])\s*(?P<date>(?:{_MONTHS})[a-z]*\.? \d{{1,2}}, \d{{4}})\s*$")
_ADVERTISEMENT = re.compile(r"\s*\bAdvertisement\.?\s*$")
_PHOTO_CREDIT = re.compile(
    r"\s*(?P<credit>[A-Z][\w.' -]*(?:\s*/\s*[\w.' -]+)*\s*/\s*"
    r"(?:Getty Images|Shutterstock|iStock(?:photo)?|Stocksy|Adobe Stock|Alamy))\.?\s*$"
)
_ELLIPSIS = re.compile(r"\.\.\.|…")
_DANGLING_NUMBER = re.compile(r"(?:^|[.!?:]\s+)\d{1,2}\.$")  # "... permanent. 2." (not "from age 3.")
_TERMINAL = (".", "?", "!", ":", "…", ";", ",")

# Cues of promotional copy; an answer showing several of them is flagged as an advert for review.
_ADVERT_CUES = [
    r"\bpatented\b",
    r"\bmedical device\b",
    r"\bnext level\b",
    r"\bpain[- ]free\b",
    r"\bwithout (?:causing )?any side effects\b",
    r"\bbrightest minds\b",
    r"\bcarefully engineered\b",
    r"\b(?:buy|order) (?:now|today|yours)\b",
    r"\bdiscount\b",
    r"\bfree shipping\b",
    r"\blimited[- ]time\b",
    r"\bmoney[- ]back\b",
    r"\bguaranteed?\b",
    r"[™®]",
]
_ADVERT_MIN_CUES = 3

# Who an answer quotes. Names are capitalised word runs ("of", "and", "the" may join them).
_NAME = r"(?:Dr\.\s+|St\.\s+)?[A-Z][\w'’-]*(?:\s+(?:(?:of|and|the|for|on|de|van|von)\s+)?[A-Z][\w'’-]*)*"
_CREDENTIAL = r"(?:M\.D\.|D\.C\.|D\.O\.|Ph\.D\.|P\.T\.|D\.P\.T\.|R\.N\.|N\.P\.|PA-C|MBBS|FRCS)"
_QUOTE_PATTERNS = [
    re.compile(rf"(?P<name>(?:Dr\.\s+)?[A-Z][a-z]+(?:\s+[A-Z]\.)?\s+[A-Z][\w'’-]+),\s+(?P<cred>{_CREDENTIAL})"),
    re.compile(r"(?P<name>Dr\.\s+[A-Z][a-z]+(?:\s+[A-Z]\.)?\s+[A-Z][\w'’-]+)"),
    re.compile(
        rf"(?:^|[.:;!?]\s+|\b(?:The|the)\s+)(?P<name>{_NAME})\s+(?:also\s+)?"
        r"(?:says|said|suggests|recommends|adds|explains|notes|offers|advises|states|reports)\b"
    ),
    re.compile(rf"\b(?:says|said|explains|adds|notes)\s+(?P<name>{_NAME}),?"),
    re.compile(rf"\baccording to (?:the\s+)?(?P<name>{_NAME}(?:\s*\(\s*[A-Z]{{2,}}\s*\))?)"),
    re.compile(rf"\b(?:recommended|suggested|advised) by (?:the\s+)?(?P<name>{_NAME})"),
    re.compile(rf"\bA Word From (?P<name>{_NAME})"),
]
_NOT_NAMES = {
    "You", "Your", "They", "He", "She", "It", "This", "That", "These", "Those", "We", "I",
    "Doctors", "Doctor", "Studies", "Research", "Experts", "People", "Some", "Many", "Most",
}  # fmt: skip


@dataclass
class _Block:
    line: int  # 1-based line of the block's first line
    lines: list[str]

    @property
    def single(self) -> str | None:
        return self.lines[0].strip() if len(self.lines) == 1 else None


@dataclass
class _PendingEntry:
    question: str
    line: int
    kind: str  # "headline" | "question" | "section"
    blocks: list[_Block] = field(default_factory=list)
    publisher: str | None = None
    list_continues: bool = False


def _split_blocks(text: str, notes: list[str]) -> list[_Block]:
    """Paragraph blocks separated by blank lines; page furniture lines are dropped (and separate blocks)."""
    blocks: list[_Block] = []
    current: _Block | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        if _IMAGE.match(raw):
            notes.append(f"line {number}: dropped 'image' placeholder")
            raw = ""
        elif _is_navigation(raw):
            notes.append(f"line {number}: dropped navigation line")
            raw = ""
        if raw.strip():
            if current is None:
                current = _Block(number, [])
                blocks.append(current)
            current.lines.append(raw.rstrip())
        else:
            current = None
    return blocks


def _is_navigation(line: str) -> bool:
    tokens = line.split()
    return len(tokens) >= 10 and all(len(token) == 1 and token.isalnum() for token in tokens)


def _is_question(line: str) -> bool:
    return line.endswith("?") and len(line) <= 200 and not _BULLET.match(line) and not _NUMBERED.match(line)


def _is_heading(line: str) -> bool:
    words = line.split()
    return (
        0 < len(words) <= 6
        and len(line) <= 60
        and line[0].isupper()
        and not line.endswith(_TERMINAL)
        and not _BULLET.match(line)
        and not _NUMBERED.match(line)
    )


def _tidy_question(text: str) -> str:
    text = " ".join(text.split())
    text = text[0].upper() + text[1:]
    return text if text.endswith("?") else text + "?"


def _format_line(line: str) -> str:
    if match := _BULLET.match(line):
        return "- " + match["text"]
    if match := _NUMBERED.match(line):
        return f"{match['number']}. {match['text']}"
    return " ".join(line.split())


def _parse_date(text: str) -> str:
    for fmt in ("%b %d, %Y", "%B %d, %Y", "%b. %d, %Y"):
        try:
            return datetime.strptime(text.replace("Sept ", "Sep "), fmt).date().isoformat()
        except ValueError:
            continue
    return text


def _expand_names(found: list[str], page_text: str) -> list[str]:
    """Resolve a bare surname ("Tauberg") or an acronym ("ACE") to the fuller form the page uses."""
    full_forms: set[str] = set()
    for pattern in _QUOTE_PATTERNS[:2]:
        for match in pattern.finditer(page_text):
            cred = match.groupdict().get("cred")
            full_forms.add(f"{match['name']}, {cred}" if cred else match["name"])
    resolved: list[str] = []
    for name in found:
        best = name
        if " " not in name:
            for full in sorted(full_forms, key=len, reverse=True):
                words = re.findall(r"[A-Z][\w'’-]+", full)
                if words and _similar_surname(name, words[-1] if "," not in full else _surname(full)):
                    best = full
                    break
            acronym = re.search(
                rf"(?P<long>[A-Z][\w-]*(?:\s+(?:of|on|and|for|the)?\s*[A-Z][\w-]*)+)\s*\(\s*{re.escape(name)}\s*\)",
                page_text,
            )
            if acronym and best == name:
                best = f"{acronym['long']} ({name})"
        resolved.append(best)
    return resolved


def _surname(full: str) -> str:
    return full.split(",")[0].split()[-1]


def _similar_surname(a: str, b: str) -> bool:
    """Equal, or one letter apart (pages misspell names: "Fishman" / "Fishmen")."""
    if a == b:
        return True
    if len(a) != len(b) or len(a) < 5:
        return False
    return sum(x != y for x, y in zip(a, b, strict=True)) == 1


def extract_quotes(answer: str, page_text: str) -> list[str]:
    """Experts and organisations an answer quotes, in order of appearance, without duplicates."""
    found: list[tuple[int, str]] = []
    for pattern in _QUOTE_PATTERNS:
        for match in pattern.finditer(answer):
            name = re.sub(r"\s+", " ", match["name"]).strip().rstrip(".")
            if match.groupdict().get("cred"):
                name = f"{name}, {match['cred']}"
            name = re.sub(r"\(\s*([A-Z]+)\s*\)", r"(\1)", name).removeprefix("The ")
            first_word = name.split()[0]
            if first_word in _NOT_NAMES or len(name) < 3:
                continue
            found.append((match.start("name"), name))
    found.sort()
    names: list[str] = []
    for name in _expand_names([name for _, name in found], page_text):
        # keep the longest form when one name is contained in another ("Mayo Clinic" / "The Mayo Clinic")
        if any(name in other for other in names):
            continue
        names = [other for other in names if other not in name]
        names.append(name)
    return names


def _answer_text(entry: _PendingEntry, notes: list[str]) -> tuple[str, str | None]:
    """Join an entry's blocks into answer text; returns (text, glued snippet date or None)."""
    paragraphs: list[str] = []
    for block in entry.blocks:
        paragraphs.append("\n".join(_format_line(line) for line in block.lines))
    text = "\n\n".join(paragraphs).strip()
    glued: str | None = None
    if match := _GLUED_DATE.search(text):
        glued = _parse_date(match["date"])
        text = text[: match.start()].rstrip()
    if match := _PHOTO_CREDIT.search(text):
        notes.append(f"line {entry.line}: removed photo credit {match['credit']!r} from the answer")
        text = text[: match.start()].rstrip()
    if match := _ADVERTISEMENT.search(text):
        notes.append(f"line {entry.line}: removed an 'Advertisement' label from the answer")
        text = text[: match.start()].rstrip()
    return text, glued


def _review_flags(entry: _PendingEntry, answer: str) -> list[str]:
    flags = answer_flags(answer)
    if entry.list_continues and "truncated" not in flags:
        flags.insert(0, "truncated")
    if entry.kind == "section":
        flags.append("needs_question")
    return flags


def answer_flags(answer: str) -> list[str]:
    """Review flags an answer's own text calls for: cut off, announcing more than it holds, starting
    mid-thought, or promotional."""
    flags: list[str] = []
    if _ELLIPSIS.search(answer):
        flags.append("truncated")
    last_line = answer.splitlines()[-1].strip()
    if last_line.endswith(":") or _DANGLING_NUMBER.search(last_line):
        flags.append("incomplete")
    first_line = answer.splitlines()[0]
    numbered = _NUMBERED.match(first_line)
    if answer[0].islower() or (numbered and int(numbered["number"]) > 1):
        flags.append("fragment")
    cues = sum(1 for cue in _ADVERT_CUES if re.search(cue, answer, re.IGNORECASE))
    if cues >= _ADVERT_MIN_CUES:
        flags.append("advert")
    return flags


def parse_scraped_page(text: str, *, source_name: str, as_of: date | None = None) -> ImportResult:
    """Parse a scraped FAQ page. ``source_name`` is the raw file's name under corpus/sources/;
    ``as_of`` (the day the page was saved) resolves a byline's relative dates ("2 years ago")."""
    notes: list[str] = []
    blocks = _split_blocks(text, notes)
    if not blocks:
        return ImportResult(entries=[], notes=["the page is empty"])

    page_title = blocks[0].lines[0].strip() if blocks[0].single else None
    body = blocks[1:] if page_title else blocks
    author = published = updated = None
    headline: _PendingEntry | None = None
    for position, block in enumerate(body):
        if block.single and (match := _BYLINE.match(block.single)):
            author, published, updated = match["author"], match["published"], match["updated"]
            previous = body[position - 1] if position > 0 else None
            if previous is not None and previous.single and not _is_question(previous.single):
                headline = _PendingEntry(_tidy_question(previous.single), previous.line, "headline")
            body = body[position + 1 :]
            break

    pending: list[_PendingEntry] = []
    current = headline
    if headline is not None:
        pending.append(headline)
    for block in body:
        single = block.single
        if single is not None and _MORE_ITEMS.match(single):
            if current is not None:
                current.list_continues = True
            notes.append(f"line {block.line}: 'More items...': the list above continues on the source page")
            continue
        if single is not None and _is_question(single):
            current = _PendingEntry(_tidy_question(single), block.line, "question")
            pending.append(current)
            continue
        # A heading starts a page section, unless it is the subtitle of a question's answer.
        subtitle = current is not None and current.kind != "section" and not current.blocks
        if single is not None and _is_heading(single) and not subtitle:
            current = _PendingEntry(single, block.line, "section")
            pending.append(current)
            continue
        lines = list(block.lines)
        site = None
        if lines and (match := _SEE_MORE.match(lines[-1])):
            site = match["site"]
            lines.pop()
        if current is None:
            notes.append(f"line {block.line}: text before the first question has no question; skipped")
            continue
        if site:
            current.publisher = site
        if lines:
            current.blocks.append(_Block(block.line, lines))

    drafts: list[tuple[_PendingEntry, str, str | None]] = []
    for entry in pending:
        if entry.kind == "headline":
            drafts.extend(_split_headline(entry, notes))
            continue
        answer, snippet_date = _answer_text(entry, notes)
        if not answer:
            notes.append(f"line {entry.line}: {entry.kind} {entry.question!r} has no answer text; skipped")
            continue
        drafts.append((entry, answer, snippet_date))

    byline = PageInfo(title=page_title, author=author)
    byline.set_date("published", parse_source_date(published, reference=as_of), as_of)
    byline.set_date("updated", parse_source_date(updated, reference=as_of), as_of)
    entries: list[FaqEntry] = []
    for entry, answer, snippet_date in drafts:
        from_other_site = entry.publisher is not None
        dated_by_byline = not from_other_site and not snippet_date
        source = Source(
            title=page_title,
            publisher=entry.publisher,
            author=None if from_other_site else author,
            published=snippet_date or (byline.published if dated_by_byline else None),
            updated=byline.updated if dated_by_byline else None,
            section=entry.question if entry.kind == "section" else None,
            quotes=extract_quotes(answer, text),
            file=f"{source_name}#L{entry.line}",
        )
        flags = _review_flags(entry, answer)
        undated = dated_by_byline and bool(byline.unresolved)
        if undated:
            flags.append("relative_date")
        entries.append(
            FaqEntry(
                id="pending",
                question=entry.question,
                answer=answer,
                source=source,
                flags=flags,
                notes=byline.review_note() if dated_by_byline else None,
            )
        )
    entries = mark_duplicate_questions(assign_ids(entries))
    return ImportResult(entries=entries, notes=notes)


def _split_headline(entry: _PendingEntry, notes: list[str]) -> list[tuple[_PendingEntry, str, str | None]]:
    """The headline's answer region can hold several snippets; a paragraph ending in a date is its own
    answer (search pages glue the snippet's date to it), and the text around it forms another."""
    groups: list[list[_Block]] = [[]]
    for block in entry.blocks:
        if _GLUED_DATE.search(block.lines[-1]):
            groups += [[block], []]
        else:
            groups[-1].append(block)
    drafts = []
    for group in groups:
        if not group:
            continue
        part = _PendingEntry(entry.question, entry.line, "headline", group, entry.publisher, entry.list_continues)
        answer, glued = _answer_text(part, notes)
        if answer:
            drafts.append((part, answer, glued))
    if not drafts:
        notes.append(f"line {entry.line}: headline {entry.question!r} has no answer text; skipped")
    return drafts
