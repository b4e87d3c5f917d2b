"""Scrubbing identifiers from patients' text before anything is stored or logged.

Conservative by design: it removes what obviously identifies a person (e-mail addresses, phone
numbers, dates such as a date of birth, long ID numbers such as insurance, NHS or social security
numbers, postcodes / ZIP+4, web addresses, and a name after "my name is" / "I'm called"), and keeps
the medical words that make a question useful for the FAQ review.
"""

from __future__ import annotations

import re

_MONTHS = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|jun(?:e)?|jul(?:y)?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # starts only where a run of address characters starts, and a local part is at most 64 characters
    # (RFC 5321): without both, a long run without "@" made each request take seconds (quadratic)
    (re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@[\w-]+(?:\.[\w-]+)+", re.IGNORECASE), "[email]"),
    (re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE), "[link]"),
    # dates: 12/03/1980, 1980-03-12, 12.3.80, 12 March 1980, March 12th, 1980
    (re.compile(r"\b\d{1,2}([/.-])\d{1,2}\1\d{2,4}\b|\b\d{4}-\d{1,2}-\d{1,2}\b"), "[date]"),
    (re.compile(rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTHS}\b,?(?:\s+\d{{2,4}})?", re.IGNORECASE), "[date]"),
    (re.compile(rf"\b{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?,?(?:\s+\d{{4}})?", re.IGNORECASE), "[date]"),
    # phone numbers: +44 20 7946 0958, (555) 123-4567, 07700 900123, 555.123.4567
    (re.compile(r"(?<!\w)\+?(?:\(?\d{1,5}\)?[\s.-]?){2,5}\d{2,5}(?!\w)"), "[phone]"),
    # long ID numbers (insurance, NHS, SSN without separators)
    (re.compile(r"\b[A-Z]{0,3}\d{6,}\b", re.IGNORECASE), "[number]"),
    # UK postcodes and US ZIP+4
    (re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b", re.IGNORECASE), "[postcode]"),
    (re.compile(r"\b\d{5}-\d{4}\b"), "[postcode]"),
    (
        re.compile(r"\b((?i:my name is|i am called|i'm called|this is))\s+[A-Z][\w'-]+(?:\s+[A-Z][\w'-]+)?"),
        r"\1 [name]",
    ),
]


MIN_PHONE_DIGITS = 7  # "2 or 3 times", "10 20 minutes" are not phone numbers


def scrub(text: str) -> str:
    """The text with obvious personal identifiers replaced by placeholders such as ``[phone]``."""
    for pattern, replacement in _PATTERNS:
        if replacement == "[phone]":
            text = pattern.sub(
                lambda m: "[phone]" if sum(c.isdigit() for c in m[0]) >= MIN_PHONE_DIGITS else m[0], text
            )
        else:
            text = pattern.sub(replacement, text)
    return text
