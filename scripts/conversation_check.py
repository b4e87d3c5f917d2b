"""Answer the conversation sets with the default model (the bundled corpus and the clinic FAQ of
tests/data/conversations) and print the figures per kind, then each conversation answered wrongly;
also how many questions the bundled corpus does not cover are answered after a turn it answered.

python scripts/conversation_check.py tests/data/conversations/fresh.jsonl [--misses]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from qa_service.tooling.conversations import UNCOVERED_FILES, check

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "conversations"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="+", type=Path, help="conversations.jsonl files")
    parser.add_argument("--misses", action="store_true", help="list the conversations answered wrongly")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        result, wrong = check(
            args.sets,
            Path(work),
            corpus_dir=DATA.parent.parent.parent / "corpus",
            clinic_faq=DATA / "clinic_faq.yaml",
            uncovered=[DATA.parent / name for name in UNCOVERED_FILES],
        )
    for name, row in result.rows.items():
        print(f"{name:28} {json.dumps(row)}")
    if args.misses:
        print("\n".join(wrong))
    return 0


if __name__ == "__main__":
    sys.exit(main())
