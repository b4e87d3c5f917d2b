"""De-identifying patients' text before anything is stored or logged (the HIPAA Safe Harbor list).

Two kinds of finder, merged:

- patterns, for what has a shape: e-mail addresses, links, IP addresses, phone and fax numbers,
  dates (all of a date, year included), record, account, insurance, licence and claim numbers,
  vehicle plates and VINs, device serial numbers, ZIP codes and postcodes, street addresses, ages
  over 89, and names after cues such as "my name is", "my husband", "Dr." or "... here";
- spaCy's named-entity model (``qa_service.ops.entities``), for names of people and places below
  state level that have no cue.

Medical words survive: a model guess that overlaps a known medical term (drugs, eponyms such as
"Baker's cyst", ``qa_service/data/medical_terms.txt``), a spinal level ("L5", "C5-C6"), a dose
("10 mg") or "Dr." before a role is dropped. Each identifier becomes a placeholder naming its kind
(``[name]``, ``[phone]``, ...). ``docs/operations.md#privacy`` lists them, and
``qa-service deid-eval`` measures recall on the labelled set in ``tests/data/deid/``.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from importlib import resources
from typing import Protocol

from qa_service.answering.coverage import english_words

PLACEHOLDERS = {
    "EMAIL": "[email]",
    "URL": "[link]",
    "IP": "[ip]",
    "PHONE": "[phone]",
    "DATE": "[date]",
    "ID": "[number]",
    "VEHICLE": "[vehicle]",
    "DEVICE": "[device]",
    "ZIP": "[zip]",
    "ADDRESS": "[address]",
    "AGE": "[age 90+]",
    "NAME": "[name]",
    "LOCATION": "[place]",
}
MIN_PHONE_DIGITS = 7  # "2 or 3 times", "10 20 minutes" are not phone numbers
LOWERCASE_NAME_ZIPF = 5.6  # after "my husband", a lowercase word rarer than this that is no verb is a name
RARE_NAME_ZIPF = 4.0  # after a lowercase "dr" or before "here", a lowercase word rarer than this is a name
VERB_STEM_ZIPF = 2.5  # "snores" is a verb when "snore" is a word this common
UNKNOWN_WORD_ZIPF = 3.0  # two capitalised words this rare opening a sentence are a name
LOWERCASE_INTRODUCTION_ZIPF = 3.6  # after a sentence-initial "i'm", two lowercase words this rare are a name
COMMON_NAME_ZIPF = 4.5  # a capitalised given name this common as a word ("Hope", "Will") needs a cue to be a name
SURNAME_ZIPF = 4.0  # an unknown capitalised word after a given name rarer than this is the surname ("Lucy Chen")
COMMON_SURNAME_ZIPF = 5.0  # a known family name after a given name this common as a word ("brown") is the word
LOWERCASE_PLACE_ZIPF = 3.5  # a lowercase town after "in", "around" ... this rare as a word ("around parramatta")
SELF_PLACE_ZIPF = 4.6  # after "im in" / "we're at", a lowercase town rarer than this ("im in leeds"; not "im in pain")
PLACE_WORD_ZIPF = 5.0  # a capitalised place after "in"/"at" this common as a word ("Home") is not taken for a town


def _word_list(name: str) -> frozenset[str]:
    text = resources.files("qa_service").joinpath(f"data/{name}").read_text(encoding="utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#"))


# states and countries may stay (HIPAA Safe Harbor removes geography below state level)
KEPT_PLACES = (
    frozenset(
        name.lower()
        for name in [
            "Alabama",
            "Alaska",
            "Arizona",
            "Arkansas",
            "California",
            "Colorado",
            "Connecticut",
            "Delaware",
            "Florida",
            "Georgia",
            "Hawaii",
            "Idaho",
            "Illinois",
            "Indiana",
            "Iowa",
            "Kansas",
            "Kentucky",
            "Louisiana",
            "Maine",
            "Maryland",
            "Massachusetts",
            "Michigan",
            "Minnesota",
            "Mississippi",
            "Missouri",
            "Montana",
            "Nebraska",
            "Nevada",
            "Ohio",
            "Oklahoma",
            "Oregon",
            "Pennsylvania",
            "Tennessee",
            "Texas",
            "Utah",
            "Vermont",
            "Virginia",
            "Washington",
            "Wisconsin",
            "Wyoming",
            "America",
            "USA",
            "US",
            "U.S.",
            "UK",
            "Britain",
            "England",
            "Scotland",
            "Wales",
            "Ireland",
            "Canada",
            "Mexico",
            "India",
            "China",
            "Japan",
            "Germany",
            "France",
            "Spain",
            "Italy",
            "Europe",
            "Asia",
            "Africa",
        ]
    )
    | {
        "new hampshire",
        "new jersey",
        "new mexico",
        "north carolina",
        "north dakota",
        "rhode island",
        "south carolina",
        "south dakota",
        "west virginia",
        "united states",
        "the united states",
        "united kingdom",
        "the united kingdom",
        "northern ireland",
    }
    | _word_list("countries.txt")
)
_MONTHS = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|jun(?:e)?|jul(?:y)?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DAYS = r"(?:(?:mon|tues?|wed(?:nes)?|thu(?:rs)?|fri|sat(?:ur)?|sun)(?:day)?\.?,?\s+)"
_STATES = (
    "AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|"
    "OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY"
)
_STATE_SET = frozenset(_STATES.split("|"))
_DAY = r"(?:0?[1-9]|[12]\d|3[01])"
_UNIT_ORDINAL = r"(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth)"
_SPELLED_DAY = (  # "fourth", "twenty-third", "thirty first"
    rf"(?:(?:twenty|thirty)[\s-]?{_UNIT_ORDINAL}|thirtieth|twentieth|tenth|eleventh|twelfth|thirteenth|"
    rf"fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|{_UNIT_ORDINAL})"
)
_SPELLED_YEAR = (  # "nineteen sixty two", "two thousand and five"
    r"(?:nineteen|twenty)[\s-]+(?:(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)(?:[\s-]+"
    r"(?:one|two|three|four|five|six|seven|eight|nine))?|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|"
    r"seventeen|eighteen|nineteen|oh[\s-]+(?:one|two|three|four|five|six|seven|eight|nine))"
    r"|two thousand(?:\s+and)?(?:\s+(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|"
    r"fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty(?:[\s-]+(?:one|two|three|four|five|six))?))?"
)
_MONTH = r"(?:0?[1-9]|1[0-2])"
_AU_STATES = "NSW|VIC|Vic|QLD|Qld|WA|SA|TAS|Tas|ACT|NT"
_PROVINCES = "ON|QC|BC|AB|MB|SK|NS|NB|NL|PE|YT|NU"
_CAP = (
    r"[A-Z\u00c0-\u00de\u0100-\u017e\u1e00-\u1efe](?:['’][A-Z])?[a-z\u00df-\u00ff\u0101-\u017f\u1e01-\u1eff'’]*"
    r"[a-z\u00df-\u00ff\u0101-\u017f\u1e01-\u1eff](?:-[A-Za-z][a-z\u00df-\u00ff\u0101-\u017f\u1e01-\u1eff]+)*"
)
_PROPER = rf"{_CAP}(?:\s+(?:{_CAP}|[A-Z]\.))?(?:\s+{_CAP})?"
_STREET = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Lane|Ln|Drive|Dr|Court|Ct|Boulevard|Blvd|Way|Place|Pl|Terrace|Circle|"
    r"Highway|Hwy|Parkway|Pkwy|Square|Sq|Close|Crescent|Cres|Grove|Gardens|Mews|Walk|Row|Rise|Hill|Park|Parade|Pde|"
    r"Esplanade|Quay|Wharf|Broadway|Tce|Cross|Main|"
    r"Cottages|Green|View|Vale)\b\.?"
)
_UNIT = r"(?:,?\s+(?:Apt|Apartment|Suite|Ste|Unit|Flat|#)\.?\s*#?\w+)"
_DIRECTION = r"(?:[NSEW]\.?|North|South|East|West)"
_LOWER_STREET = r"(?:street|st|avenue|ave|road|rd|lane|ln|drive|dr|way|close|court|ct|crescent|boulevard|blvd|place|pl)"
_RELATIVE = (
    r"(?:husband|wife|son|daughter|kids?|children|mom|mum|mother|father|dad|brother|sister|friend|"
    r"neighbou?r|boyfriend|girlfriend|partner|fianc[eé]e?|uncle|aunt|nephew|niece|cousin|grandson|"
    r"granddaughter|grandmother|grandfather|grandma|grandpa|grandad|granddad|nan|nana|nanna|gran|granny|ex|"
    r"stepson|stepdaughter|stepdad|stepmum|stepmom|twins?|flatmate|roommate|housemate|landlord|landlady|coworker|co-worker|colleague|boss|caregiver|"
    r"carer|therapist|physio|trainer|mother-in-law|father-in-law|sister-in-law|brother-in-law|baby|bro|sis|hubby|gramps|"
    r"gf|bf|aunty|auntie|mam|tita|tito|lola|lolo|kuya|akka|amma|appa)"
)
_ID_KEYWORD = (
    r"(?:mrn|medical record(?: number)?|record number|chart(?: number)?|patient id|account(?: number)?|acct|"
    r"member(?: id)?|policy(?: number)?|group(?: number)?|claim(?: number)?|case(?: number)?|"
    r"(?:driver'?s )?licen[cs]e(?: number)?|ssn|social security(?: number)?|medicare(?: number)?|"
    r"medicaid(?: id)?|nhs number|health card|employee id|rx(?: number)?|prescription number|invoice|"
    r"insurance(?: id| number)?|(?:aetna|bcbs|cigna|kaiser|humana|united) (?:id|member)|id|"
    # numbers of other countries' health systems and IDs, and a hospital's own ("hospital no.")
    r"hospital(?=\s+(?:number|no|num|#)\b)|uhid|nhi|ihi|chi number|crn|ohip|medical aid(?: number)?|philhealth|aadhaar|"
    r"nric|pps(?:n| number)|passport(?: number)?|student (?:id|number)|mykad|emirates id|card number|"
    r"(?:booking |case )?ref(?:erence)?(?: number| no)?)"
)
_CODE = r"(?=[A-Z]*\d)(?=\d*[A-Z])[A-Z0-9]{5,12}\b"  # letters and digits together, upper case
_VALUE = (
    r"#?(?:[A-Z]{2,4}[ ]\d{3,}\b"  # NHI JKL 7720
    r"|(?=[A-Z0-9/-]*\d)[A-Z0-9][A-Z0-9/-]*(?:[ ](?=[A-Z0-9-]*\d)(?:[A-Z0-9-]{2,}|\d\b)){0,2})"  # MDU/2025/018834
)
_KEYED_VALUE = r"(?:\s*(?:number|no|num|#|is|was|:|id|card)\b\.?)*[\s:#]*"

# (pattern, kind); a pattern with a group named "x" replaces only that group
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # starts only where a run of address characters starts, and a local part is at most 64 characters
    # (RFC 5321): without both, a long run without "@" made each request take seconds (quadratic)
    (re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@[\w-]+(?:\.[\w-]+)+", re.IGNORECASE), "EMAIL"),
    (re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE), "URL"),
    (re.compile(r"(?<![\w.@])(?:[a-z0-9-]+\.)+(?:com|org|net|io|ly|gov|edu|info|co\.uk|me)/\S*", re.I), "URL"),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b"), "IP"),
    (re.compile(r"(?<![\w:])(?:[0-9a-f]{1,4}:){2,7}:?(?:[0-9a-f]{1,4}:?){1,7}(?![\w:])", re.IGNORECASE), "IP"),
    (re.compile(r"\b\d{3}-\d{2}-\d{4}\b"), "ID"),  # social security numbers
    # dates: 12/03/1980, 1980-03-12, 12.3.80, 12 March 1980, March 12th, 1980, March 2021, born in 1931
    (re.compile(r"\b\d{1,2}([/.-])\d{1,2}\1\d{2,4}\b|\b\d{4}-\d{1,2}-\d{1,2}\b"), "DATE"),
    (
        re.compile(
            rf"\b{_DAYS}?(?:the\s+)?\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTHS}\b\.?,?(?:\s+\d{{2,4}}\b)?",
            re.IGNORECASE,
        ),
        "DATE",
    ),
    (re.compile(rf"\b{_DAYS}?{_MONTHS}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?\b,?(?:\s+\d{{4}}\b)?", re.IGNORECASE), "DATE"),
    (re.compile(rf"\b{_MONTHS}\.?,?\s+(?:19|20)\d\d\b", re.IGNORECASE), "DATE"),
    (re.compile(rf"\b{_DAYS}(?:the\s+)?\d{{1,2}}(?:st|nd|rd|th)\b", re.I), "DATE"),  # "tues 14th"
    (re.compile(rf"\b{_DAYS}{_DAY}/{_MONTH}\b(?!/)", re.I), "DATE"),  # "Wed 12/10"
    (re.compile(rf"\b{_DAY}[-/ ]{_MONTHS}[-/ ](?:19|20)?\d\d\b", re.I), "DATE"),  # "23-Oct-1975"
    # an ordinal day on its own: "on the 2nd", "till the 20th", "due the 9th"
    (
        re.compile(
            r"(?:\b(?i:on|by|to|till|til|until|from|since|before|after|due|for|of|around|about)\s+|^)(?i:the)\s+"
            r"(?P<x>(?:[12]?\d|3[01])(?:st|nd|rd|th))\b(?!\s+(?i:time|day|week|month|year|dose|cycle|floor|of))"
        ),
        "DATE",
    ),
    # dates in words: "the fourth of june", "march the twenty-third", "nineteenth of august nineteen sixty two",
    # and a spelled ordinal on its own after "on the" ("still on for the twenty-first?")
    (
        re.compile(
            rf"\b(?:the\s+)?{_SPELLED_DAY}\s+(?:of\s+)?{_MONTHS}\b(?:,?\s+(?:{_SPELLED_YEAR}|\d{{4}})\b)?"
            rf"|\b{_MONTHS}\s+(?:the\s+)?{_SPELLED_DAY}\b(?:,?\s+(?:{_SPELLED_YEAR}|\d{{4}})\b)?",
            re.IGNORECASE,
        ),
        "DATE",
    ),
    (
        re.compile(
            rf"\b(?i:on|by|till|until|for|since|before|after|due)\s+(?i:the)\s+(?P<x>(?i:{_SPELLED_DAY}))"
            r"(?=\s*(?:[?!.,;]|$|\s+(?:at|of\s+(?:this|next|last)\s+month)\b))"
        ),
        "DATE",
    ),
    # a range: "10 to 12 Feb", "3-5 March"
    (
        re.compile(
            rf"\b{_DAY}(?:st|nd|rd|th)?\s*(?:to|-|–|till|until)\s*{_DAY}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTHS}\b",
            re.IGNORECASE,
        ),
        "DATE",
    ),
    # a holiday that names a day: "Christmas Day 2019", "Boxing Day", "New Year's Eve"
    (
        re.compile(
            r"\b(?i:christmas|boxing|new year'?s|st\.? patrick'?s|valentine'?s|independence|thanksgiving)\s+"
            r"(?i:day|eve)\b(?:,?\s+(?:19|20)\d\d\b)?|\b(?i:christmas|easter|thanksgiving),?\s+(?:19|20)\d\d\b"
            r"|\b(?i:easter (?:sunday|monday)|good friday|whit monday)\b(?:,?\s+(?:19|20)\d\d\b)?"
        ),
        "DATE",
    ),
    (re.compile(r"\bborn\s+(?:in\s+)?(?P<x>(?:19|20)\d\d)\b", re.IGNORECASE), "DATE"),
    # a day and month without a year: zero-padded or past the 12th ("05/11", "25/12"), or after "on" /
    # before a time ("on 5/11", "3/4 at 10:15"); a pain score ("7/10", "10/10"), blood pressure
    # ("140/90") or "on 1/2 a tablet" is none of these
    (
        re.compile(rf"(?<![\d/.])(?!24/7\b)(?:0[1-9]/{_MONTH}|{_DAY}/0[1-9]|(?:1[3-9]|2\d|3[01])/{_MONTH})(?![\d/])"),
        "DATE",
    ),
    (
        re.compile(
            rf"\b(?i:on|dated|date|appt|appointment)\s+(?!(?:1/[234]|2/3|3/4|24/7)\b)(?P<x>{_DAY}/{_MONTH})(?![\d/])"
        ),
        "DATE",
    ),
    (re.compile(rf"(?<![\d/.]){_DAY}/{_MONTH}(?=\s+(?i:at)\s+\d{{1,2}}(?::\d\d|\s*[ap]m))"), "DATE"),
    # ages over 89 (the number only: "I'm [age 90+]")
    (
        re.compile(
            r"(?:\b(?:i'?m|i am|is|was|aged?|turned|age of|at|(?:he|she)'?s|they'?re|age\s*:)|['’]s)"
            r"\s+(?P<x>(?:9\d|1[01]\d))\b"
            r"(?!\s*(?:mg|%|lbs?|kg|min|/|\.\d))",
            re.IGNORECASE,
        ),
        "AGE",
    ),
    (re.compile(r"\b(?P<x>9\d|1[01]\d)[\s-]*(?:years?|yrs?|y/?o)\b", re.IGNORECASE), "AGE"),
    (re.compile(r"\((?:[^()\d]{1,40},\s*)?(?P<x>9\d|1[01]\d)\)"), "AGE"),  # "my nan (94)", "(Mary, 96)"
    # between commas after a name or a relation: "my uncle Bob, 95, has dementia"
    (re.compile(rf"(?:\b[A-Z][a-z]+|\b{_RELATIVE}),\s+(?P<x>9\d|1[01]\d)\s*(?=,|\)|$)"), "AGE"),
    (
        re.compile(
            r"(?:\b(?:i'?m|i am|is|was|aged?|turn(?:ed|s|ing)|(?:he|she)'?s|they'?re)|['’]s|[A-Z][a-z]+,)\s+"
            r"(?P<x>(?:ninety|a hundred|one hundred)"
            r"(?:[\s-]+(?:and\s+)?(?:one|two|three|four|five|six|seven|eight|nine|ten))?)\b",
            re.IGNORECASE,
        ),
        "AGE",
    ),
    # vehicles and devices, after their keyword
    (
        re.compile(
            rf"\b(?:licen[cs]e plate|plate|vin|registration|reg)(?:\s+(?:number|no\.?))?(?:\s+is)?[\s:#]*"
            rf"(?P<x>[A-Z]{{1,3}}[ -]\d{{2,6}}(?:[ -]\d{{2,6}})?\b|{_VALUE})",
            re.IGNORECASE,
        ),
        "VEHICLE",
    ),
    (
        re.compile(
            rf"\b(?:serial(?: number| no\.?)?|s/?n|device id|imei|model number)(?:\s+is)?[\s:#]*(?P<x>{_VALUE})",
            re.IGNORECASE,
        ),
        "DEVICE",
    ),
    (re.compile(r"\b[A-Z]{2}\d{2}\s?[A-Z]{3}\b"), "VEHICLE"),  # UK plates: BD51 SMR
    (re.compile(r"\b[A-Z]{2,3}[ -]\d{3,4}[ -][A-Z]{1,2}\b"), "VEHICLE"),  # Nigerian, South African: LSD 482 XY
    (re.compile(r"\b[A-Z]{2}\s?\d{1,2}\s?[A-Z]{1,3}\s?\d{4}\b"), "VEHICLE"),  # Indian plates: MH 12 AB 3456
    # a code of letters and digits after the thing it names: "rego YHT45K", "car is KHT442",
    # "transmitter 8G4KJ2", "pump serial ..."
    (
        re.compile(rf"\b(?i:rego|car|van|ute|truck|motorbike|vehicle)(?:\s+(?i:is|reg))?[\s:#]*(?P<x>{_CODE})"),
        "VEHICLE",
    ),
    (
        re.compile(
            rf"\b(?i:transmitter|sensor|pump|pacemaker|defibrillator|icd|implant|hearing aid|monitor|cpap|"
            rf"nebuli[sz]er|glucometer|meter|tens unit|stimulator)(?:\s+(?i:is|id|no\.?|number|code))?[\s:#]*"
            rf"(?P<x>{_CODE})"
        ),
        "DEVICE",
    ),
    (re.compile(rf"\b{_ID_KEYWORD}{_KEYED_VALUE}(?P<x>{_VALUE})", re.IGNORECASE), "ID"),
    # ZIP codes and postcodes: after a state or the word "zip", ZIP+4 anywhere, UK postcodes
    (re.compile(rf"\b(?:{_STATES}),?\s+(?P<x>\d{{5}}(?:-\d{{4}})?)\b"), "ZIP"),
    (
        re.compile(r"\b(?:zip|zip code|zipcode|postcode|postal code)(?:\s+is)?[\s:#]*(?P<x>\d{5}(?:-\d{4})?)\b", re.I),
        "ZIP",
    ),
    (re.compile(r"\b\d{5}-\d{4}\b"), "ZIP"),
    (re.compile(r"\b[AC-FHKNPRTV-Y]\d[\dW]\s?[AC-FHKNPRTV-Y\d]{4}\b(?<=\D\w{3})"), "ZIP"),  # Eircodes: D24 X2P6
    (re.compile(r"\b[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z]\s?\d[ABCEGHJ-NPRSTV-Z]\d\b", re.IGNORECASE), "ZIP"),
    (re.compile(rf"\b(?:{_AU_STATES}),?\s+(?P<x>\d{{4}})\b"), "ZIP"),
    (
        re.compile(
            rf"(?P<x>\b{_CAP}(?:\s+{_CAP})?),?\s+(?:{_AU_STATES}|{_PROVINCES})\b(?=,?\s+\d{{4}}|,?\s+[A-Z]\d[A-Z])"
        ),
        "LOCATION",
    ),
    (re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b", re.IGNORECASE), "ZIP"),
    # phone and fax numbers: +44 20 7946 0958, (555) 123-4567, 07700 900123, 555.123.4567
    (
        re.compile(
            r"(?<!\w)\+?(?:\(?\d{1,5}\)?[\s.-]?){2,5}\d{2,5}(?:,?\s*(?:ext|extn|extension|x)\.?\s*\d{1,5})?(?!\w)", re.I
        ),
        "PHONE",
    ),
    # long ID numbers (insurance, NHS, SSN without separators) and codes mixing letters and digits
    (re.compile(r"\b[A-Z]{0,3}\d{6,}\b", re.IGNORECASE), "ID"),
    (re.compile(r"\b(?=[A-Z0-9-]*\d{3})(?=[A-Z0-9-]*[A-Z])[A-Z0-9]+(?:-[A-Z0-9]+)+\b"), "ID"),
    (re.compile(r"\b(?=[A-Z]*\d)(?=\d*[A-Z])[A-Z0-9]{7,}\b"), "ID"),
    # street addresses: 42 Oak Street, 350 W 42nd St, Apt 4B, PO Box 1187, "on Main Street"
    (
        re.compile(
            rf"(?:\b(?i:apt|apartment|suite|unit|flat)\.?\s*#?(?:(?=\w*\d)\w+|[A-Z]\b),?\s+)?\b(?:\d{{1,4}}[A-Za-z]?/)?\d{{1,6}}[A-Za-z]?\s+"
            rf"(?:{_DIRECTION}\s+)?"
            rf"(?:{_CAP}|\d+(?:st|nd|rd|th))(?:\s+{_CAP}){{0,2}}\s+{_STREET}{_UNIT}?"
        ),
        "ADDRESS",
    ),
    (re.compile(r"\b\d{1,6}\s+County\s+(?:Road|Rd)\s+\d+\b"), "ADDRESS"),
    (re.compile(r"\b\d{1,5}[A-Za-z]?\s+[A-Z][a-z]+(?:straat|weg|laan|strasse|straße|gasse|plein|singel)\b"), "ADDRESS"),
    # "No 14 Adeola Odeku", "No. 45, 3rd Cross, 5th Main" after "at" or "address"
    (
        re.compile(
            rf"\b(?i:at|address(?:\s+is)?:?)\s+(?P<x>(?i:no|number)\.?\s*\d{{1,5}}[A-Za-z]?,?\s+"
            rf"(?:{_CAP}|\d+(?:st|nd|rd|th))(?:\s+{_CAP}){{0,2}}(?:,\s+\d+(?:st|nd|rd|th)\s+{_CAP}(?:\s+{_CAP})?)*)"
        ),
        "ADDRESS",
    ),
    # a house name and its street: "The Old Rectory, Church Lane", "Rose Cottage, Mill Road"
    (
        re.compile(
            rf"\b(?:The\s+)?(?:{_CAP}\s+){{0,2}}(?:Cottage|House|Farm|Rectory|Vicarage|Lodge|Barn|Mill|Manor|Hall|"
            rf"Grange|Croft|Villa|Bungalow|Farmhouse)s?,\s+{_CAP}(?:\s+{_CAP})?\s+{_STREET}"
        ),
        "ADDRESS",
    ),
    # in lower case, after "live at", "address is", "send it to" ...: "26 hillcrest dr"
    (
        re.compile(
            rf"(?:\b(?:at|is|its|to)\s+|,\s+|^)(?P<x>(?:(?:unit|flat|apt)\s+[\d/]+\s+)?\d{{1,6}}[a-z]?\s+(?!(?:on|at|the|a|in|of|to|for|and|or)\b)[a-z]{{3,}}"
            rf"(?:\s+[a-z]{{3,}})?\s+{_LOWER_STREET}(?:\s+[nsew]\b)?)\b"
        ),
        "ADDRESS",
    ),
    (re.compile(r"\b(?:P\.?\s?O\.?\s+Box|post office box)\s+\d+\b", re.IGNORECASE), "ADDRESS"),
    # a place named with its clinic or practice: "the Moseley practice", "at the Koreatown clinic"
    (
        re.compile(
            rf"\b(?i:the|your|our)\s+(?P<x>{_CAP}(?:\s+{_CAP})?)\s+(?i:clinic|practice|surgery|branch|office|"
            rf"hospital|medical cent(?:re|er)|health cent(?:re|er)|walk-in|pharmacy|site|location|urgent care)\b"
        ),
        "PLACE_BEFORE_SITE",
    ),
    (re.compile(rf"\b(?:on|at|off)\s+(?P<x>{_CAP}(?:\s+{_CAP})?\s+{_STREET})"), "ADDRESS"),
    # a town before a state abbreviation or a ZIP: "Columbus, OH", "Eugene, OR 97440"
    (re.compile(rf"(?P<x>\b{_CAP}(?:\s+{_CAP})?),?\s+(?:{_STATES})\b(?=,?\s+\d{{5}}|\s*$|[,.;])"), "LOCATION"),
    # names after a cue
    (
        re.compile(
            r"\b(?i:my name is|my name's|name is|(?:my )?(?:surname|family name|last name) is|"
            r"(?:patient |full |first |last )?name\s*[:-]|patient\s*:|pt\s*:|"
            r"from\s*:|i am called|"
            r"i'm called|call me|this is|it's|its|hi,? it's|"
            rf"regards,?|thanks,?|thank you,?|cheers,?|sincerely,?|best wishes,?|many thanks,?|love,?|"
            rf"yours (?:faithfully|sincerely|truly),?)\s+(?P<x>{_PROPER})"
        ),
        "NAME",
    ),
    (
        re.compile(
            r"\b(?:my name is|my name's|i'm called|i am called|(?:patient |full )?name\s*[:-]|pt\s*:|patient\s*:|"
            r"from\s*:)"
            r"\s+(?P<x>[a-z]+(?:\s+[a-z]+)?)\b"
        ),
        "NAME",
    ),
    # a name signing off a message: "..., sarah", ". Thandiwe" (a known or unknown given name, checked later)
    (re.compile(r"(?:[,.!?]|\n)\s*(?P<x>[A-Za-z][a-z\u00df-\u00ff]{2,})(?:\s+x+)?\s*[.!]?\s*$"), "SIGN_OFF"),
    # a full name ending a message after a sentence or a dash: "nobody rang. Gwen Prosser", "- Kehinde A."
    (re.compile(rf"(?:[.!?]\s+|\n\s*)(?P<x>{_CAP}\s+(?:{_CAP}|[A-Z]\.))\s*[.!]?\s*$"), "FULL_SIGN_OFF"),
    (re.compile(rf"\s[-–—]\s*(?P<x>{_CAP}(?:\s+(?:{_CAP}|[A-Z]\.))?)\s*[.!]?\s*$"), "DASH_SIGN_OFF"),
    # a town after "live in", "moved to", "from" ... (states and countries stay)
    (
        re.compile(
            rf"\b(?i:live|lives|living|lived|moved|moving|relocated|drove|driving|from|near|visiting|based|"
            rf"grew up)\s+(?i:in\s+|to\s+|near\s+|from\s+|up\s+in\s+)?(?P<x>{_CAP}(?:\s+{_CAP})?)"
        ),
        "LOCATION",
    ),
    (re.compile(rf"\b(?i:from)\s+{_CAP}(?:\s+{_CAP})?\s+(?i:to)\s+(?P<x>{_CAP}(?:\s+{_CAP})?)"), "LOCATION"),
    (re.compile(rf"\b(?i:i'm|i am|im)\s+(?P<x>{_PROPER})"), "NAME"),
    (re.compile(rf"\b(?i:(?:my|our|his|her|their)\s+{_RELATIVE}(?:,|\s+(?:is|was))?)\s+(?P<x>{_PROPER})"), "NAME"),
    (re.compile(rf"(?P<x>{_PROPER}),?\s+(?:is\s+|was\s+)?(?i:(?:my|our)\s+{_RELATIVE})\b"), "NAME"),
    # a family: "the Hendersons"
    (re.compile(r"\b(?i:we'?re|we are|it'?s|this is)\s+the\s+(?P<x>[A-Z][a-z]+s)\b"), "NAME"),
    (
        re.compile(rf"\b(?:Dr|Mr|Mrs|Ms|Mx|Miss|Nurse|Prof|Grandpa|Grandma|Aunt|Uncle|Auntie)\b\.?\s+(?P<x>{_PROPER})"),
        "NAME",
    ),
    (
        re.compile(rf"(?:^|[,.!?]\s+|\b(?i:hello|hi|hey),?\s+)(?P<x>{_CAP}(?:\s+{_CAP}){{0,2}})\s+(?:here|asking)\b"),
        "NAME",
    ),
    (re.compile(rf"(?m)^\s*[-–—]\s*(?P<x>{_PROPER})"), "NAME"),
    (
        re.compile(rf"\b(?:ask|tell|call|email|text|have)\s+(?P<x>{_CAP}(?:\s+{_CAP})?)\s+(?:at|about|that|to|call)\b"),
        "NAME",
    ),
]
_LOWER = r"(?:[a-z]['’])?[a-z\u00df-\u00ff\u0101-\u017f]{3,}(?:-[a-z\u00df-\u00ff\u0101-\u017f]+)*"  # "o'brien-murphy"
_PARTICLE = r"(?:van|von|der|den|de|la|le|di|da|du|del|dos|ter|ten|bin|al|el|mac|mc|ó|ní|nic)"  # "dr van der merwe"
_LOWERCASE_RELATIVE_NAME = re.compile(
    rf"\b(?:my|our|his|her|their)\s+{_RELATIVE}(?:\s+is)?,?\s+\(?(?P<x>{_LOWER})(?![\w'’-])"
)
# without "my": only a known given name ("dad frank", "grandpa bob"), never after a comma ("the baby, splint")
_BARE_RELATIVE_NAME = re.compile(rf"\b{_RELATIVE}(?:\s+is)?\s+\(?(?P<x>{_LOWER})(?![\w'’-])")
_LOWERCASE_TITLE_NAME = re.compile(
    rf"\b(?:dr|mr|mrs|ms|miss|nurse)\.?\s+(?P<x>(?:{_PARTICLE}\s+){{0,2}}{_LOWER}(?:\s+{_LOWER})?)(?![\w'’-])"
)
_OBJECT_AFTER = re.compile(r"\s+(?:his|her|my|their|our|your|the|a|an|him|them|me|it|up|down|out|off)\b")
_LOWERCASE_HERE = re.compile(r"(?:^|[.,!?]\s*)(?:(?:hi|hey|hello),?\s+)?(?P<x>[a-z]{3,}(?:\s+[a-z]{3,})?)\s+here\b")
_SENTENCE_START_PAIR = re.compile(rf"(?:^|[.!?]\s+)(?P<x>{_CAP}[ \t]+{_CAP})\b")
_PAIR = re.compile(r"\s+(?:and|&)\s+")
_ME_AND = re.compile(r"\b(?:me)\s+(?:and|&)\s+(?P<x>[a-z]{3,})\b|\b(?P<y>[a-z]{3,})\s+(?:and|&)\s+(?:me|i)\b")
# words after "my husband" that carry on the sentence (verbs and adverbs a rarity threshold lets through)
_CONTINUATION_WORDS = (
    # verbs, adverbs and contractions without their apostrophe
    "fell hurt broke woke slept ate bought tried went came took gave told said swore ran drove felt left lost "
    "made sat saw sent spent stood thought wore wrote bit caught found heard held kept knew met paid put read "
    "shook spoke stuck taught threw thinks feels keeps also just still too both never always recently "
    "finally again often usually sometimes really then who whose which that since because plus aswell aka "
    "doesnt isnt cant wont didnt hasnt wasnt hes shes couldnt wouldnt arent dont havent "
    # nouns that follow a relation word: "my baby girl", "my son's teacher", "my mum age 80"
    "girl boy baby teacher doctor nurse gp dentist school age aged"
)
_CONTINUATIONS = frozenset(_CONTINUATION_WORDS.split())
_LOWERCASE_INTRODUCTION = re.compile(
    r"(?:^|[.,!?]\s*)(?:i'm|i am|im|this is|it's)\s+(?P<x>[a-z]{3,}(?:\s+[a-z]{3,})?)\b"
)
_PHONE = "PHONE"
# a cue after which even a medical word is a name ("Dr Parkinson says", "my daughter Addison, 8")
_LEADING_TITLE = re.compile(r"(?:Dr|Mr|Mrs|Ms|Mx|Miss|Prof|Nurse)\.?\s+")
_TRAILING_STATE = re.compile(rf",?\s+(?:{_STATES}|{_AU_STATES}|{_PROVINCES})$")
_TITLE_BEFORE = re.compile(
    rf"(?:\b(?:Dr|Mr|Mrs|Ms|Mx|Prof|Professor)\.?|\b(?i:my|our|his|her|their)\s+{_RELATIVE},?"
    r"|\b(?i:surname|family name|last name) is)\s+$"
)
# given names and places from the bundled lists (see _lexicon_spans)
_TOKEN = re.compile(r"(?<![\w'’-])[^\W\d_]+(?:['’-][^\W\d_]+)*")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+|\n|\b(?i:hi|hey|hello|morning|evening)[,!]?\s+)\s*[\"'(]?$")
# a word that names a person just before it: a title or role ("dr hope", "physio callum"), an
# introduction ("its chloe", "im aoife"), a request or thanks ("tell bill", "thanks to grace")
_NAME_CUE = re.compile(
    r"\b(?i:dr|doctor|mr|mrs|ms|mx|miss|nurse|sister|physio|physiotherapist|receptionist|midwife|dentist|"
    r"hygienist|therapist|surgeon|consultant|pharmacist|paramedic|its|it's|it’s|im|i'm|i’m|i am|this is|"
    r"tell|ask|thank|thanks|thx|cheers|named|called)\.?,?\s+$"
)
# before a capitalised given name only ("with Zoë", "and Björn")
_CAPITALISED_NAME_CUE = re.compile(r"\b(?i:with|and|&|love|from|see|saw|seeing|for)\s+$")
# what follows an eponym ("Baker's cyst", "Tommy John surgery"): a name there is part of a medical word
_EPONYM_HEAD_WORDS = (
    "disease syndrome palsy cyst neuroma ulcer fracture sign test tumour tumor lymphoma phenomenon reflex "
    "contracture manoeuvre maneuver procedure surgery operation disorder deformity node nodes "
    "knee elbow thumb finger toe foot shoulder leg oesophagus esophagus scale score rules criteria classification"
)
_EPONYM_HEADS = frozenset(_EPONYM_HEAD_WORDS.split())
_EPONYM_AFTER = re.compile(
    rf"(?:['’]s)?\s+(?i:{'|'.join(sorted(_EPONYM_HEADS))})\b|['’]s(?:\s*(?:[.,;:!?)]|$)|\s+(?:and|or|with|but|is|was)\b)"
)
RAREST_ZIPF = 1.0  # a lowercase word this rare (unknown to the word list) opening a sentence before a verb is a name
CUE_WINDOW = 40  # characters before a word in which a name or place cue is looked for
COMMONEST_NAME_ZIPF = 5.8  # a given name this common as a word ("said", "my") is taken for the word (modals aside)
# what a name opening a sentence is followed by: a verb of the third person or "and" ("Hope had", "mark has")
_AFTER_SUBJECT_WORDS = (
    "has had is was needs needed wants wanted said says told called calls rang phoned phoning calling ringing "
    "texting emailing messaging asking writing got gets went goes fell broke hurt hurts cant can't cannot "
    "couldnt could will would should keeps kept started woke seems seemed felt feels saw sees did does "
    "doesnt didnt isnt wasnt hasnt hadnt and & both also still just came left tested from reckons thinks"
)
_AFTER_SUBJECT = frozenset(_AFTER_SUBJECT_WORDS.split())
_MODALS = frozenset(["will", "may", "can", "must", "might", "should", "would", "could"])
_NOT_AFTER_MODAL = frozenset(["has", "is", "was", "had", "does", "keeps", "gets", "needs"])  # "my son will has"
_NOT_AFTER_MODAL_PATTERN = re.compile(rf"\s+(?:{'|'.join(sorted(_NOT_AFTER_MODAL))})\b")
_PAST_SAYING = frozenset(
    ["said", "says", "told", "thinks", "thought", "wants", "wanted", "reckons", "suggested", "recommended"]
)
_PLACE_CUE = re.compile(r"\b(?i:in|at|near|nr|around|round|outside|from|to|by|visiting)\s+$")
_STRONG_PLACE_CUE = re.compile(r"\b(?i:live|lives|living|lived|moved|moving|based|from)\s+(?:(?i:in|to|near)\s+)?$")
_SELF_PLACE_CUE = re.compile(r"\b(?i:i'?m|i’m|i am|we'?re|we’re|we are)\s+(?i:in|at)\s+$")  # "im in leeds"
_CALENDAR = (
    "january february march april may june july august september october november december "
    "monday tuesday wednesday thursday friday saturday sunday christmas easter"
)
_CALENDAR_WORDS = frozenset(_CALENDAR.split())

# words a cue may be followed by that are not names ("this is Tylenol", "I'm Pregnant")
_NOT_NAMES = frozenset(
    [
        "The",
        "A",
        "An",
        "My",
        "It",
        "This",
        "That",
        "Not",
        "Just",
        "So",
        "Very",
        "Really",
        "Still",
        "Also",
        "Now",
        "Here",
        "There",
        "What",
        "When",
        "How",
        "Why",
        "Sorry",
        "Ok",
        "Okay",
        "Yes",
        "No",
        "Hi",
        "Hello",
        "Thanks",
        "Thank",
        "Please",
        "Dr",
        "Mr",
        "Mrs",
        "Ms",
        "Nurse",
        "I",
        "Im",
    ]
)


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    kind: str


class NameFinder(Protocol):
    """Finds names of people and places a pattern cannot (``qa_service.ops.entities.EntityFinder``)."""

    def load(self) -> None: ...
    def find(self, text: str) -> list[tuple[int, int, str]]: ...


@functools.cache
def medical_terms() -> frozenset[str]:
    """The bundled medical words (lowercase, without accents) that a name finder's guess must not remove."""
    return frozenset(fold(term) for term in _word_list("medical_terms.txt"))


@functools.cache
def given_names() -> frozenset[str]:
    """Given names of 86 locales (``qa_service/data/given_names.txt``, from Faker; lower case)."""
    return _word_list("given_names.txt")


@functools.cache
def family_names() -> frozenset[str]:
    """Family names of 86 locales (``qa_service/data/family_names.txt``, from Faker; lower case)."""
    return _word_list("family_names.txt")


@functools.cache
def places() -> frozenset[str]:
    """Towns, cities and districts of English-speaking countries (``qa_service/data/places.txt``,
    from GeoNames; lower case)."""
    return _word_list("places.txt")


@functools.cache
def _medical_pattern() -> re.Pattern[str]:
    terms = sorted(medical_terms(), key=len, reverse=True)
    # a space or hyphen inside a term matches either ("Guillain Barre"), an apostrophe may be left
    # out, and a plural or possessive "s" may follow ("Hashimotos")
    flexible = (
        re.escape(term).replace(r"\ ", r"[\s-]+").replace(r"\-", r"[\s-]+").replace("'", "['’]?") for term in terms
    )
    lexicon = "|".join(f"{term}(?:['’]?s)?" for term in flexible)
    return re.compile(
        rf"(?<!\w)(?:{lexicon})(?!\w)"
        r"|\b[CTLS]\d{1,2}(?:\s*[-/]\s*[CTLS]?\d{1,2})?\b"  # spinal levels: L5, C5-C6, L4-L5, T12
        r"|\b\d+(?:\.\d+)?\s*(?:mg|mcg|µg|g|ml|mL|units?|iu|IU|%)\b"  # doses
        r"|\bDr\.?(?=\s+(?:on call|at|in|said|told|says|who|on duty|the)\b)",  # "Dr." before a role
        re.IGNORECASE,
    )


def fold(text: str) -> str:
    """``text`` without accents, one character for one ("Ménière's" -> "Meniere's")."""
    return "".join(unicodedata.normalize("NFKD", char)[0] for char in text)


def protected_spans(text: str) -> list[tuple[int, int]]:
    """Where ``text`` has a medical word (accents aside), spinal level, dose or "Dr." before a role."""
    return [(m.start(), m.end()) for m in _medical_pattern().finditer(fold(text))]


def eponym(text: str, end: int) -> bool:
    """Whether a name ending at ``end`` is part of a condition's name: "Bell's palsy", "Kawasaki
    disease", "I have Sjögren's and dry eyes" (a possessive with no noun after it)."""
    return bool(_EPONYM_AFTER.match(text, end))


def _pattern_spans(text: str, protected: list[tuple[int, int]]) -> list[Span]:
    """The identifiers the patterns and word lists find; ``protected``: where the text's medical words are."""
    spans = []
    for pattern, kind in _PATTERNS:
        for match in pattern.finditer(text):
            start, end = match.span("x") if "x" in pattern.groupindex else match.span()
            if kind == _PHONE and sum(c.isdigit() for c in match[0]) < MIN_PHONE_DIGITS:
                continue
            if kind in ("NAME", "LOCATION") and match["x"].split()[0].rstrip("'’") in _NOT_NAMES:
                continue
            if kind == "NAME" and match["x"].istitle() and _common_phrase(match["x"]):  # "Back Pain Clinic here"
                title = _TITLE_BEFORE.search(text, max(0, start - CUE_WINDOW), start)  # "Dr Parkinson says"
                if title is None or eponym(text, end):
                    continue
            if kind == "DASH_SIGN_OFF":  # "... - Karthik": a word that is no common English or medical word
                first = match["x"].split()[0].lower()
                if english_words().zipf(first) >= UNKNOWN_WORD_ZIPF and not _given_name(first):
                    continue
                if fold(first) in medical_terms():
                    continue
                kind = "NAME"
            if kind == "FULL_SIGN_OFF":
                first = match["x"].split()[0].lower()
                if fold(first) not in given_names() or fold(first) in medical_terms():
                    continue
                kind = "NAME"
            if kind == "SIGN_OFF":
                word = match["x"].lower()
                unknown = english_words().zipf(word) < RAREST_ZIPF and fold(word) not in medical_terms()
                if not (_given_name(word) or unknown):
                    continue
                kind = "NAME"
            if kind == "PLACE_BEFORE_SITE":
                place = match["x"].lower()
                known = place in places() or english_words().zipf(place) < UNKNOWN_WORD_ZIPF
                if not known or place in KEPT_PLACES or fold(place) in medical_terms():
                    continue
                kind = "LOCATION"
            if kind == "LOCATION" and (match["x"].lower() in KEPT_PLACES or match["x"].lower() in medical_terms()):
                continue
            spans.append(Span(start, end, kind))
    for match in _LOWERCASE_RELATIVE_NAME.finditer(text):
        if _OBJECT_AFTER.match(text, match.end("x")):  # "my dad hit his head": a verb
            continue
        modal_name = match["x"] in _MODALS and bool(_NOT_AFTER_MODAL_PATTERN.match(text, match.end("x")))
        if modal_name or _lowercase_name(match["x"], LOWERCASE_NAME_ZIPF):
            spans.append(Span(match.start("x"), match.end("x"), "NAME"))
    for match in _BARE_RELATIVE_NAME.finditer(text):
        word = match["x"]
        if _OBJECT_AFTER.match(text, match.end("x")):  # "my dad hit his head": a verb
            continue
        if _given_name(word) or (word in given_names() and _lowercase_name(word, LOWERCASE_NAME_ZIPF)):
            spans.append(Span(match.start("x"), match.end("x"), "NAME"))
    for pattern in (_LOWERCASE_TITLE_NAME, _LOWERCASE_HERE):  # "dr okafor", "amber here", "dr van der merwe"
        titled = pattern is _LOWERCASE_TITLE_NAME
        for match in pattern.finditer(text):
            words = match["x"].split()
            while words and not (_lowercase_name(words[-1], RARE_NAME_ZIPF) or (titled and _surname(words[-1]))):
                if not (titled and fold(words[-1]) in medical_terms()):  # "dr parkinson said"
                    words.pop()
                    continue
                break
            end = match.start("x") + len(" ".join(words))
            fits = [re.fullmatch(_PARTICLE, w) or _lowercase_name(w, RARE_NAME_ZIPF) for w in words[:-1]]
            medical = _overlaps(Span(match.start("x"), end, ""), protected) and not titled  # "Hashimotos here"
            if words and all(fits) and not eponym(text, end) and not medical:
                spans.append(Span(match.start("x"), end, "NAME"))
    for match in _ME_AND.finditer(text):  # "me and bongani", "tayo and i"
        word = match["x"] or match["y"]
        if _given_name(word) or (match["x"] and _unknown_word(word)):  # "my buttock and i": a known name only
            start = match.start("x") if match["x"] else match.start("y")
            spans.append(Span(start, start + len(word), "NAME"))
    for match in _SENTENCE_START_PAIR.finditer(text):  # "Olumide Adeyemi needs ...": two unknown words
        words = match["x"].split()
        if all(english_words().zipf(w.lower()) < UNKNOWN_WORD_ZIPF and w.lower() not in medical_terms() for w in words):
            spans.append(Span(match.start("x"), match.end("x"), "NAME"))
    spans += _lexicon_spans(text, protected)
    for match in _LOWERCASE_INTRODUCTION.finditer(text):  # "i'm carla mendes": two rare words are a name
        words = match["x"].split()
        rare = [english_words().zipf(word.lower()) < LOWERCASE_INTRODUCTION_ZIPF for word in words]
        if len(words) == 2 and all(rare) and not set(words) & medical_terms():
            spans.append(Span(match.start("x"), match.end("x"), "NAME"))
    return spans


def _lexicon_spans(text: str, protected: list[tuple[int, int]]) -> list[Span]:
    """Given names and places from the bundled lists (``given_names()``, ``places()``), where the
    words around say they are one: a given name after a title, role or introduction ("dr hope", "its
    chloe"), before "here", opening a sentence before a verb ("Hope had", "mark has"), or capitalised
    inside a sentence ("with Zoë"), with the surname after it; a town after "in", "at", "near" ... or
    after "live in" in lower case. A name that is a common word needs a cue; medical words never match."""
    spans: list[Span] = []
    tokens = list(_TOKEN.finditer(text))
    words = [token[0] for token in tokens]
    title_case = len(words) >= 4 and sum(word[0].isupper() for word in words) > 0.6 * len(words)
    frequency = english_words().zipf
    for index, token in enumerate(tokens):
        word = re.sub(r"['’]s$", "", token[0])
        lower = word.lower()
        # the cues are short: the words just before (a window keeps long texts linear)
        before = text[max(0, token.start() - CUE_WINDOW) : token.start()]
        following = words[index + 1].lower() if index + 1 < len(words) else ""
        if fold(lower) in medical_terms() or word in _NOT_NAMES or lower in _CALENDAR_WORDS:
            continue
        if eponym(text, token.start() + len(word)):
            continue
        if lower in KEPT_PLACES or re.fullmatch(_RELATIVE, lower):  # "Baby has croup"
            continue
        if _overlaps(Span(token.start(), token.end(), ""), protected):
            continue
        acronym = word.isupper() and len(word) > 1  # "VIC", "MAX"
        known = not acronym and (lower in given_names() or ("-" in lower and lower.split("-")[0] in given_names()))
        if known and (frequency(lower) < COMMONEST_NAME_ZIPF or lower in _MODALS):
            common = frequency(lower) >= COMMON_NAME_ZIPF
            at_start = bool(_SENTENCE_START.search(before))
            if _NAME_CUE.search(before) or (word[0].isupper() and _CAPITALISED_NAME_CUE.search(before)):
                after = text[token.end() : token.end() + 1]
                found = (
                    lower not in _MODALS
                    or following in _PAST_SAYING
                    or following in _NOT_AFTER_MODAL
                    or following.endswith("ed")
                    or after in ",.!?"
                )
            elif following == "here":
                found = True
            elif at_start:  # "Hope had", "Joy's jab", "Ray from Leeds"
                found = following in _AFTER_SUBJECT or token[0] != word
            else:
                found = word[0].isupper() and not common and not title_case
            if found:
                end = token.start() + len(word)
                if index + 1 < len(tokens) and text[end : tokens[index + 1].start()] == " ":
                    surname = tokens[index + 1][0]
                    if _surname(surname):
                        end = tokens[index + 1].start() + len(re.sub(r"['’]s$", "", surname))
                spans.append(Span(token.start(), end, "NAME"))
                continue
        elif (
            (
                (word.istitle() and frequency(lower) < UNKNOWN_WORD_ZIPF)
                or (word.islower() and frequency(lower) < RAREST_ZIPF)
            )
            and following in _AFTER_SUBJECT
            and _SENTENCE_START.search(before)
        ):  # "Sunita phoning for her dad", "faduma needs": an unknown word opening a sentence as its subject
            spans.append(Span(token.start(), token.start() + len(word), "NAME"))
            continue
        if word[0].isupper() and _PLACE_CUE.search(before):
            for length in (3, 2, 1):  # the longest place name: "Milton Keynes", "Bury St Edmunds"
                place = tokens[index : index + length]
                if len(place) < length or not all(part[0][0].isupper() for part in place):
                    continue
                name = text[place[0].start() : place[-1].end()]
                if name.lower() in places() and name.lower() not in KEPT_PLACES:
                    if length > 1 or frequency(lower) < PLACE_WORD_ZIPF:
                        spans.append(Span(place[0].start(), place[-1].end(), "LOCATION"))
                    break
        elif word.islower() and lower in places() and lower not in KEPT_PLACES:
            about_self = _SELF_PLACE_CUE.search(before)
            strong = about_self or _STRONG_PLACE_CUE.search(before)
            limit = SELF_PLACE_ZIPF if about_self else RARE_NAME_ZIPF if strong else LOWERCASE_PLACE_ZIPF
            rare = frequency(lower) < limit
            if rare and (strong or _PLACE_CUE.search(before)):
                spans.append(Span(token.start(), token.end(), "LOCATION"))
    return spans


def _given_name(word: str) -> bool:
    """Whether a lowercase ``word`` is a given name and not a common or medical word."""
    return (
        (word in given_names() or fold(word) in given_names())
        and word not in medical_terms()
        and english_words().zipf(word) < COMMON_NAME_ZIPF
        and word not in _CALENDAR_WORDS
    )


def _surname(word: str) -> bool:
    """Whether ``word`` after a given name is its family name: rare as an English word, or a known
    family name that is not too common a word ("chen", "Jones"; not "said" or "brown eyes")."""
    lower = re.sub(r"['’]s$", "", word).lower()
    if fold(lower) in medical_terms() or word in _NOT_NAMES or lower in _AFTER_SUBJECT or lower in _CONTINUATIONS:
        return False
    frequency = english_words().zipf(lower)
    if lower in family_names() and frequency < COMMON_SURNAME_ZIPF:
        return word.istitle() or word.islower()
    if word.istitle():
        return frequency < SURNAME_ZIPF
    return word.islower() and _lowercase_name(lower, SURNAME_ZIPF)


def _unknown_word(word: str) -> bool:
    """Whether a lowercase ``word`` is no English word the word list knows and no medical word."""
    rare = english_words().zipf(word) < UNKNOWN_WORD_ZIPF
    return rare and fold(word) not in medical_terms() and word not in _CONTINUATIONS


def _common_phrase(words: str) -> bool:
    """Whether capitalised ``words`` name a service or condition rather than a person: one is a
    medical word, or there are several and each is a common English word."""
    lowered = words.lower().split()
    if any(word in medical_terms() for word in lowered) or words.lower() in medical_terms():
        return True
    return len(lowered) > 1 and all(english_words().zipf(word) >= RARE_NAME_ZIPF for word in lowered)


def _lowercase_name(word: str, rarer_than: float) -> bool:
    """Whether a lowercase ``word`` after a name cue may be a name: rarer than ``rarer_than``, not a
    medical word, not a word that carries the sentence on, and no inflected verb ("says", "needed")."""
    frequency = english_words().zipf
    if word in medical_terms() or frequency(word) >= rarer_than or word.endswith("ly"):
        return False
    if word in _CONTINUATIONS or re.fullmatch(_RELATIVE, word):
        return False
    stems = [word[: -len(end)] for end in ("s", "ed", "d", "ing") if word.endswith(end)]
    if word.endswith(("ches", "shes", "sses", "xes", "zes")):
        stems.append(word[:-2])
    return not any(len(stem) >= 3 and frequency(stem) >= VERB_STEM_ZIPF for stem in stems)


def _neighbours(text: str, spans: list[Span]) -> list[Span]:
    """Identifiers next to found ones: the other name of a pair ("Noah and Ava"), the town and ZIP
    code after a street address ("42 Oak Street, Burlington 05401")."""
    found = []
    for span in spans:
        if span.kind == "NAME":
            after = re.match(rf"{_PAIR.pattern}(?P<x>{_CAP})\b", text[span.end :])
            if after and after["x"] not in _NOT_NAMES and after["x"].lower() not in medical_terms():
                found.append(Span(span.end + after.start("x"), span.end + after.end("x"), "NAME"))
            after = re.match(rf"{_PAIR.pattern}(?P<x>[^\W\d_]+)\b", text[span.end :])  # "ahmed and fatima"
            if after and after["x"].islower() and (_given_name(after["x"]) or _unknown_word(after["x"])):
                found.append(Span(span.end + after.start("x"), span.end + after.end("x"), "NAME"))
            before = re.search(rf"(?P<x>{_CAP}){_PAIR.pattern}$", text[: span.start])
            if before and before["x"] not in _NOT_NAMES and before["x"].lower() not in medical_terms():
                found.append(Span(before.start("x"), before.end("x"), "NAME"))
        elif span.kind == "LOCATION":
            # the facility it names ("Christchurch Hospital", "Ikeja General"), a town and postcode after it
            # ("Mount Eden, Auckland 1024", "Cabramatta 2166")
            facility = _FACILITY_AFTER.match(text, span.end)
            if facility:
                found.append(Span(span.start, facility.end(), "LOCATION"))
            prefix = _PLACE_PREFIX.search(text, max(0, span.start - 8), span.start)
            if prefix:
                found.append(Span(prefix.start(), span.end, "LOCATION"))
            nearby = re.match(rf",\s+(?P<x>{_CAP}(?:\s+{_CAP})?)(?=\s+\d{{4,6}}\b)", text[span.end :])
            if nearby and nearby["x"] not in _NOT_NAMES and nearby["x"].lower() not in KEPT_PLACES:
                found.append(Span(span.end + nearby.start("x"), span.end + nearby.end("x"), "LOCATION"))
            code = re.match(
                r"(?:,?\s+[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)?,?\s+(?P<x>\d{4})(?=\s*(?:[,.;:!?)]|$))", text[span.end :]
            )
            if code:
                found.append(Span(span.end + code.start("x"), span.end + code.end("x"), "ZIP"))
        elif span.kind == "ADDRESS":
            after = re.match(
                rf",?\s+(?P<x>{_CAP}(?:\s+{_CAP})?)(?=\s*(?:,|$|\s+\d|\s+[A-Z]{{1,2}}\d))", text[span.end :]
            )
            town = after["x"] if after else ""
            if (
                after
                and town.lower() not in KEPT_PLACES
                and town not in _NOT_NAMES
                and town.split()[-1] not in _STATE_SET
            ):
                found.append(Span(span.end + after.start("x"), span.end + after.end("x"), "LOCATION"))
            lower = re.match(r",?\s+(?P<x>[a-z]+(?:\s+[a-z]+)?)\b", text[span.end :])  # "..., bootle"
            if lower and not after and (lower["x"] in places() or lower["x"].split()[0] in places()):
                place = lower["x"] if lower["x"] in places() else lower["x"].split()[0]
                start = span.end + lower.start("x")
                found.append(Span(start, start + len(place), "LOCATION"))
            zip_code = re.match(
                r"(?:,?\s+[A-Za-z][a-z]+(?:\s+[A-Za-z][a-z]+)?)?,?\s+(?P<x>\d{4,5}(?:-\d{4})?)\b", text[span.end :]
            )
            if zip_code:
                found.append(Span(span.end + zip_code.start("x"), span.end + zip_code.end("x"), "ZIP"))
    return found


_FACILITY_AFTER = re.compile(
    r"(?:\s+(?i:city|university|general|royal|regional|district|base|memorial|public|private|teaching|community|"
    r"children['’]?s|women['’]?s|and))*"
    r"\s+(?i:hospital|infirmary|medical cent(?:re|er)|health cent(?:re|er)|clinic|general)s?\b"
)
_PLACE_PREFIX = re.compile(r"\b(?:Mount|Mt\.?|Port|Fort|Lake|Royal)\s+$")


def _model_span(text: str, span: Span) -> Span:
    """A model guess made tidy: without a title before a name ("Dr Khan") or a state after a town
    ("Halifax NS"), both of which may stay, and to the end of a hyphenated name ("Jin" of "Jin-woo")."""
    start, end = span.start, span.end
    title = _LEADING_TITLE.match(text, start, end)
    if title and title.end() < end:
        start = title.end()
    state = _TRAILING_STATE.search(text, start, end)
    if span.kind == "LOCATION" and state and state.start() > start:
        end = state.start()
    rest = re.match(r"(?:-[^\W\d_]+)+", text[end:])
    return Span(start, end + (rest.end() if rest else 0), span.kind)


def _overlaps(span: Span, ranges: list[tuple[int, int]]) -> bool:
    return any(start < span.end and span.start < end for start, end in ranges)


def _merged(spans: list[Span]) -> list[Span]:
    """Non-overlapping spans: where two overlap, the earlier (then longer) one wins and absorbs the other."""
    result: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if result and span.start < result[-1].end:
            last = result[-1]
            result[-1] = Span(last.start, max(last.end, span.end), last.kind)
        else:
            result.append(span)
    return result


def _common_lowercase(text: str, span: Span) -> bool:
    """A model guess that is one lowercase English word ("the max dose"): the model reads case, so
    such a guess is mostly wrong (lowercase names after cues are found by patterns)."""
    word = text[span.start : span.end]
    return word.islower() and word.isalpha() and english_words().zipf(word) >= RARE_NAME_ZIPF


class Deidentifier:
    """Finds and replaces identifiers; ``names`` (optional) adds the statistical name finder."""

    def __init__(self, names: NameFinder | None = None) -> None:
        self.names = names

    def load(self) -> None:
        if self.names is not None:
            self.names.load()

    def find(self, text: str) -> list[Span]:
        """The identifiers in ``text``, in order, not overlapping."""
        protected = protected_spans(text)
        spans = _pattern_spans(text, protected)
        if self.names is not None:
            from qa_service.ops.entities import worth_reading

            if worth_reading(text, medical_terms()):
                found = (Span(start, end, kind) for start, end, kind in self.names.find(text))
                spans += [
                    _model_span(text, span)
                    for span in found
                    if not (_overlaps(span, protected) or _common_lowercase(text, span) or eponym(text, span.end))
                ]
        spans = _merged(_neighbours(text, _merged(spans)) + spans)  # on a tie the neighbour's kind wins
        return _merged(_neighbours(text, spans) + spans)  # and theirs: "Mount Eden, Auckland 1024"

    def scrub(self, text: str) -> str:
        """``text`` with each identifier replaced by a placeholder such as ``[phone]``."""
        parts, position = [], 0
        for span in self.find(text):
            parts += [text[position : span.start], PLACEHOLDERS[span.kind]]
            position = span.end
        parts.append(text[position:])
        return "".join(parts)


@functools.cache
def default_deidentifier() -> Deidentifier:
    """The service's de-identifier: the patterns and spaCy's name finder, created once (the model
    loads on first use, or at start-up through ``load()``)."""
    from qa_service.ops.entities import EntityFinder

    return Deidentifier(EntityFinder())


def scrub(text: str) -> str:
    """The text with personal identifiers replaced by placeholders such as ``[name]`` or ``[phone]``."""
    return default_deidentifier().scrub(text)
