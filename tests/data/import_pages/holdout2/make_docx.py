#!/usr/bin/env python3
"""Generate the .docx FAQ import fixtures in holdout2/.

The document is written with python-docx from the content below; the expected
result (``<name>.expected.json``) is written by hand next to it. Output is
deterministic: core properties use fixed dates and every zip entry gets a fixed
timestamp, so re-running this script reproduces identical files.

Run:  .venv/bin/python tests/data/import_pages/holdout2/make_docx.py
Needs python-docx.
"""

# ruff: noqa: E501  (the document content below is long prose on purpose)
from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
from make_docx import write_documents  # noqa: E402  (the shared generator, one folder up)

# Each block is (kind, payload):
#   title / h1 / h2 / h3 / p  -> paragraph in that style ("p" = Normal)
#   lb / ln                   -> "List Bullet" / "List Number" paragraph
#   runs                      -> Normal paragraph of [(text, bold), ...] runs
#   table                     -> list of rows (list of cell texts); first row is a bold header
# Styles and the writer are those of ../make_docx.py.

DOCUMENTS: dict[str, dict] = {
    "carpal_tunnel_docx_h2_h3.docx": {
        "title": "Carpal tunnel release: questions and answers",
        "author": "Hand Therapy Team, Eastbrook Hospital",
        "created": dt.datetime(2023, 11, 20, 10, 15),
        "modified": dt.datetime(2024, 5, 7, 16, 40),
        "blocks": [
            ("title", "Carpal tunnel release: questions and answers"),
            ("p", "Patient information from the Hand Surgery Unit, Eastbrook Hospital"),
            (
                "p",
                "You have been listed for a carpal tunnel release. This leaflet answers the questions patients most often ask us. Please bring it with you on the day of your operation.",
            ),
            ("h2", "Before your operation"),
            ("h3", "What is carpal tunnel release?"),
            (
                "p",
                "It is a short operation to relieve pressure on the median nerve at the wrist. The surgeon makes a small cut in the palm and divides the ligament that forms the roof of the carpal tunnel, giving the nerve more room.",
            ),
            ("h3", "Will I be awake?"),
            (
                "p",
                "Yes. Most patients have a local anaesthetic injection in the palm, so you will be awake but will not feel pain. The operation itself takes about 15 minutes.",
            ),
            ("h3", "Do I need to stop any of my medicines?"),
            (
                "p",
                "Keep taking your usual medicines unless we have told you otherwise at your pre-operative assessment.",
            ),
            (
                "p",
                "If you take warfarin, you will need a blood test (INR) within the week before your operation. We will tell you the result we need to see.",
            ),
            (
                "p",
                "If you take clopidogrel, apixaban, rivaroxaban or another blood thinner, please call the unit at least a week before your operation so that we can tell you whether to stop it.",
            ),
            ("h3", "Can I drive myself home?"),
            (
                "p",
                "No. Your hand will be bandaged and you must not drive on the day of surgery. Please arrange for an adult to take you home.",
            ),
            ("h2", "After your operation"),
            ("h3", "How do I look after my dressing?"),
            (
                "p",
                "Keep the bulky bandage clean and dry for two days, then remove it, leaving the small dressing underneath in place. Keep your hand raised on a pillow as much as you can for the first 48 hours to reduce swelling.",
            ),
            ("h3", "When can I go back to my normal activities?"),
            ("p", "Everyone recovers at a different rate, but as a guide:"),
            (
                "table",
                [
                    ["Activity", "Usually possible after"],
                    ["Light use of the hand (dressing, eating)", "1 to 2 days"],
                    ["Driving", "10 to 14 days"],
                    ["Office or desk work", "2 weeks"],
                    ["Heavy lifting or manual work", "4 to 6 weeks"],
                ],
            ),
            ("p", "Your hand therapist will tell you when it is safe for you to increase what you do."),
            ("h3", "When will my stitches be taken out?"),
            (
                "p",
                "After 10 to 14 days, at your GP practice. Please book this appointment with the practice nurse as soon as you get home.",
            ),
            ("h3", "When should I get help?"),
            ("p", "Contact the unit or your GP if you notice:"),
            ("lb", "increasing redness, heat or swelling around the wound"),
            ("lb", "discharge or a bad smell from the wound"),
            ("lb", "a temperature of 38°C or higher"),
            ("lb", "pain that is getting worse rather than better"),
            ("p", ""),
            (
                "p",
                "Contact us: Hand Surgery Unit, Eastbrook Hospital, Level 2, Mill Lane, Eastbrook EB3 7HD. Telephone 01632 960752, Monday to Friday 8am to 6pm. Out of hours, call NHS 111.",
            ),
        ],
    },
}


def main() -> None:
    write_documents(DOCUMENTS, ROOT, bold_table_header=True)


if __name__ == "__main__":
    main()
