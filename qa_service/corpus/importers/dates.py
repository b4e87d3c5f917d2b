"""Dates as sources state them: absolute ones normalised, relative ones ("2 years ago") resolved against
a known reference date or reported, never stored as if they were dates."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import lru_cache
from typing import Any
from urllib.parse import urlparse

_ISO = re.compile(r"^\s*(?P<date>\d{4}-\d{2}-\d{2})(?:[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?\s*$")
# two far-apart reference days: an expression that resolves to different dates against them is relative
_PROBES = (datetime(2001, 3, 14), datetime(2011, 9, 27))


@dataclass(frozen=True)
class SourceDate:
    """A date a source states: ``value`` is what may be stored ("2024-03-01", "2024-03" or "2024"),
    None when the text is relative and there was nothing to resolve it against."""

    text: str  # as the source wrote it
    value: str | None
    relative: bool


@lru_cache(maxsize=2)
def _parser(day_first: bool) -> Any:
    from dateparser.date import DateDataParser  # import here: only imports need it

    order = "DMY" if day_first else "MDY"
    return DateDataParser(languages=["en"], settings={"RETURN_AS_TIMEZONE_AWARE": False, "DATE_ORDER": order})


# countries whose sites write the day first, by their top-level domain (a page that says only "en")
_DAY_FIRST_DOMAINS = (".uk", ".au", ".nz", ".ie", ".za", ".in", ".sg", ".eu", ".de", ".fr", ".es", ".it", ".nl")


def day_first(language: str | None, url: str | None = None) -> bool:
    """Whether "04/03/2024" is the 4th of March on a page in ``language`` (en-GB, en-AU, fr, ...); a page
    that says only "en" is read by its address's country (``.nhs.uk``), else month first."""
    code = (language or "").strip().lower().replace("_", "-")
    if code in {"", "en"}:
        host = urlparse(url or "").hostname or ""
        return host.endswith(_DAY_FIRST_DOMAINS)
    return code not in {"en-us", "en-ph"} and not code.startswith(("en-us", "zh", "ja", "ko"))


def _resolve(text: str, base: datetime, first_day: bool = False) -> tuple[datetime, str] | None:
    parser = _parser(first_day)
    parser._settings.RELATIVE_BASE = base  # one parser, re-based per call (building one takes ~100 ms)
    data = parser.get_date_data(text)
    if data.date_obj is None:
        return None
    return data.date_obj, data.period or "day"


def _format(value: datetime, period: str) -> str:
    if period == "year":
        return f"{value.year:04d}"
    if period == "month":
        return f"{value.year:04d}-{value.month:02d}"
    return value.date().isoformat()


def parse_source_date(text: str | None, *, reference: date | None = None, first_day: bool = False) -> SourceDate | None:
    """Read a date the way a page states it. ISO timestamps keep their day; "March 2024" keeps its
    month; "2 years ago" is resolved against ``reference`` (to the year) or left unresolved;
    ``first_day`` reads "04/03/2024" as 4 March. Text that is no date at all gives None."""
    if text is None or not text.strip():
        return None
    text = " ".join(text.split())
    if match := _ISO.match(text):
        return SourceDate(text, match["date"], relative=False)
    first, second = (_resolve(text, probe, first_day) for probe in _PROBES)
    if first is None or second is None:
        return None
    relative = _format(*first) != _format(*second)  # compared to the precision stated: "March 2024" is absolute
    if not relative:
        return SourceDate(text, _format(*first), relative=False)
    if reference is None:
        return SourceDate(text, None, relative=True)
    resolved = _resolve(text, datetime.combine(reference, time()), first_day)
    return SourceDate(text, _format(*resolved) if resolved else None, relative=True)


def parse_reference_date(text: str) -> date:
    """``--as-of`` and similar: an absolute day, e.g. 2024-05-01 or "May 1, 2024"."""
    parsed = parse_source_date(text)
    if parsed is None or parsed.relative or parsed.value is None or len(parsed.value) != 10:
        raise ValueError(f"{text!r} is not a day (expected e.g. 2024-05-01)")
    return date.fromisoformat(parsed.value)
