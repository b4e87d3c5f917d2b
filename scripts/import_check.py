"""Score the importers on folders of pages with expected pairs (tests/data/import_pages/dev, holdout).

python scripts/import_check.py tests/data/import_pages/dev [--verbose]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qa_service.tooling.import_check import render, score_folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument(
        "--verbose", "-v", action="store_true", help="list every miss, junk entry and attribution error"
    )
    args = parser.parse_args()
    for folder in args.folders:
        print(f"== {folder}")
        print("\n".join(render(score_folder(folder), verbose=args.verbose)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
