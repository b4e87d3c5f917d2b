"""Time HTML parsers on the import fixture pages: parse each page and read the text of its blocks.

    python scripts/bench_html_parsers.py [--repeat 200]

lxml is the importer's parser; selectolax and BeautifulSoup are timed when installed
(`pip install selectolax beautifulsoup4`), for comparison only.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

PAGES = Path(__file__).resolve().parent.parent / "tests" / "data" / "import_pages"
BLOCKS = ("h2", "h3", "h4", "p", "li", "dt", "dd", "summary")


def _lxml(html: str) -> int:
    from lxml import html as lxml_html

    doc = lxml_html.document_fromstring(html)
    return sum(len(element.text_content()) for element in doc.iter(*BLOCKS))


def _selectolax(html: str) -> int:
    from selectolax.lexbor import LexborHTMLParser

    return sum(len(node.text()) for node in LexborHTMLParser(html).css(",".join(BLOCKS)))


def _soup(html: str) -> int:
    from bs4 import BeautifulSoup

    return sum(len(tag.get_text()) for tag in BeautifulSoup(html, "html.parser").find_all(BLOCKS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    pages = [path.read_text("utf-8") for path in sorted(PAGES.glob("*/*.html"))]
    size = sum(len(page) for page in pages)
    print(f"{len(pages)} pages, {size / 1024:.0f} KiB")
    candidates: dict[str, Callable[[str], int]] = {"lxml": _lxml, "selectolax": _selectolax, "bs4": _soup}
    for name, run in candidates.items():
        try:
            run(pages[0])
        except ImportError:
            print(f"{name:<11} not installed")
            continue
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            for page in pages:
                run(page)
            times.append(time.perf_counter() - start)
        per_page = statistics.median(times) / len(pages) * 1000
        print(f"{name:<11} {per_page:.3f} ms per page (median of {args.repeat} passes)")


if __name__ == "__main__":
    main()
