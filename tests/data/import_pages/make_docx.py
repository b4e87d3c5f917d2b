#!/usr/bin/env python3
"""Generate the .docx FAQ import fixtures (dev/*.docx and holdout/*.docx).

The documents are written with python-docx from the content below; the
expected results (``<name>.expected.json``) are written by hand next to them.
Output is deterministic: core properties use fixed dates and every zip entry
gets a fixed timestamp, so re-running this script reproduces identical files.

Run:  python tests/data/import_pages/make_docx.py
Needs python-docx (``pip install python-docx``).
"""

# ruff: noqa: E501  (the document content below is long prose on purpose)
from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

import docx
from docx.shared import Pt

ROOT = Path(__file__).resolve().parent
ZIP_TIME = (2024, 1, 1, 0, 0, 0)

# Each block is (kind, payload):
#   title / h1 / h2 / h3 / p  -> paragraph in that style ("p" = Normal)
#   bold                      -> Normal paragraph whose single run is bold
#   lb / ln                   -> "List Bullet" / "List Number" paragraph
#   runs                      -> Normal paragraph of [(text, bold), ...] runs
#   table                     -> list of rows (list of cell texts)

DOCUMENTS: dict[str, dict] = {
    "dev/gp_docx_headings.docx": {
        "title": "New Patient Information – Frequently Asked Questions",
        "author": "Brookside Medical Practice",
        "created": dt.datetime(2024, 2, 5, 9, 30),
        "modified": dt.datetime(2024, 6, 18, 14, 5),
        "blocks": [
            ("title", "New Patient Information – Frequently Asked Questions"),
            (
                "p",
                "Welcome to Brookside Medical Practice. This sheet answers the questions new patients ask most often.",
            ),
            ("h2", "How do I register with the practice?"),
            (
                "p",
                "Fill in a GMS1 registration form and our new patient questionnaire. You can do this online through our website or collect paper copies from reception.",
            ),
            ("p", "We will let you know within five working days once your registration is complete."),
            ("h2", "Do I need to bring ID?"),
            (
                "p",
                "No. You do not need proof of address or photo ID to register with a GP practice, although it helps us if you can bring your NHS number.",
            ),
            ("h2", "Will I have a health check when I join?"),
            (
                "p",
                "New patients aged 16 and over are invited to a 20-minute new patient check with our healthcare assistant. We will measure your height, weight and blood pressure, and ask about your lifestyle and family history.",
            ),
            ("h2", "How do I book an appointment?"),
            ("p", "You can book appointments in several ways:"),
            ("lb", "online using the NHS App"),
            ("lb", "by phoning 01632 960145 from 8am"),
            ("lb", "in person at reception"),
            ("h2", "What should I do if I need a doctor when the practice is closed?"),
            ("p", "Call NHS 111, or use 111.nhs.uk. For life-threatening emergencies, always call 999."),
            ("h2", "Can I choose which doctor I see?"),
            (
                "p",
                "You will be registered with a named GP, but you can ask to see any of our doctors. You may have to wait longer to see a particular GP.",
            ),
            ("h2", "How do I order repeat prescriptions?"),
            (
                "p",
                "Order through the NHS App or hand in your repeat slip at reception. Please allow two working days, plus extra time if you collect from a pharmacy.",
            ),
            ("p", ""),
            ("p", "Brookside Medical Practice, 22 Brook Road, Brookside BR2 8QT · Telephone 01632 960145"),
        ],
    },
    "dev/hydro_docx_bold.docx": {
        "title": "Hydrotherapy: Patient Questions",
        "author": "Physiotherapy Department, Kingsmead Hospital",
        "created": dt.datetime(2023, 5, 9, 11, 0),
        "modified": dt.datetime(2024, 1, 15, 16, 45),
        "blocks": [
            ("title", "Hydrotherapy: Patient Questions"),
            (
                "p",
                "Hydrotherapy takes place in the warm-water pool in the Physiotherapy Department at Kingsmead Hospital.",
            ),
            ("bold", "What is hydrotherapy?"),
            (
                "p",
                "Hydrotherapy is exercise in a warm pool, heated to about 34°C, supervised by a physiotherapist. The warmth and buoyancy of the water make it easier to move stiff or painful joints.",
            ),
            ("bold", "Do I need to be able to swim?"),
            (
                "p",
                "No. The pool is only 1.2 metres deep, and a physiotherapist will be in the water or on the poolside throughout your session.",
            ),
            ("bold", "What should I bring?"),
            ("lb", "a swimming costume, or shorts and a T-shirt"),
            ("lb", "a towel and toiletries"),
            ("lb", "a bottle of water, as the warm water can make you thirsty"),
            ("bold", "How long is each session?"),
            ("p", "Sessions last 30 minutes in the water. Please arrive 15 minutes early to change."),
            ("bold", "Can I have hydrotherapy if I have a wound or an infection?"),
            (
                "p",
                "Not until it has fully healed. Please tell us if you have an open wound, a skin infection, a urine infection or a temperature, as we may need to postpone your session.",
            ),
            ("bold", "How will I feel afterwards?"),
            (
                "p",
                "Many people feel tired after hydrotherapy. Drink plenty of water, rest for the remainder of the day and avoid driving if you feel light-headed.",
            ),
            ("p", ""),
            (
                "runs",
                [
                    ("Please note:", True),
                    (
                        " the pool is closed on bank holidays and for maintenance during the first week of August.",
                        False,
                    ),
                ],
            ),
            ("p", "Physiotherapy Department, Kingsmead Hospital – telephone 01632 960870."),
        ],
    },
    "dev/endoscopy_docx_sections.docx": {
        "title": "Gastroscopy: your questions answered",
        "author": "Endoscopy Unit, Northfield General Hospital",
        "created": dt.datetime(2023, 9, 1, 8, 15),
        "modified": dt.datetime(2024, 3, 12, 10, 20),
        "blocks": [
            ("title", "Gastroscopy: your questions answered"),
            ("p", "Endoscopy Unit, Northfield General Hospital"),
            ("h1", "Before your procedure"),
            ("h2", "Do I need to stop eating before my gastroscopy?"),
            (
                "p",
                "Yes. Do not eat anything for six hours before your appointment. You may drink small amounts of water until two hours before.",
            ),
            ("h2", "Should I stop taking my medicines?"),
            (
                "p",
                "Keep taking most of your usual medicines. Please contact the unit at least one week before your appointment if you take:",
            ),
            ("lb", "blood thinners such as warfarin, apixaban or clopidogrel"),
            ("lb", "insulin or tablets for diabetes"),
            ("lb", "iron tablets"),
            ("h1", "On the day"),
            ("h2", "How long will I be in the unit?"),
            (
                "p",
                "Please expect to be with us for two to three hours. The procedure itself usually takes less than 10 minutes.",
            ),
            ("h2", "Will I be awake?"),
            (
                "p",
                "You can choose between a throat spray, which numbs the back of your throat, or sedation, which makes you feel relaxed and drowsy.",
            ),
            ("p", "If you choose sedation, someone must take you home and stay with you for 12 hours."),
            ("h1", "After your procedure"),
            ("h2", "When can I eat and drink?"),
            (
                "p",
                "If you had throat spray, wait one hour before eating or drinking, so that the numbness wears off and you do not choke.",
            ),
            ("h2", "When will I get my results?"),
            (
                "p",
                "The endoscopist will tell you what they found before you go home. If biopsies were taken, the results will be sent to you and your GP within three weeks.",
            ),
            ("h2", "Who should I contact if I feel unwell afterwards?"),
            (
                "p",
                "Contact the Endoscopy Unit on 01632 960433 between 8am and 6pm. Outside these hours, call NHS 111 or go to your nearest emergency department.",
            ),
        ],
    },
    "holdout/memory_clinic_docx_mixed.docx": {
        "title": "Memory Assessment Service – Questions and Answers",
        "author": "Memory Assessment Service",
        "created": dt.datetime(2022, 10, 3, 13, 0),
        "modified": dt.datetime(2024, 2, 27, 9, 40),
        "blocks": [
            ("title", "Memory Assessment Service – Questions and Answers"),
            (
                "p",
                "This leaflet is for people who have been referred to the Memory Assessment Service, and for their families.",
            ),
            ("h1", "About the service"),
            ("bold", "Why have I been referred to the memory clinic?"),
            (
                "p",
                "Your GP has referred you because you, or someone close to you, have noticed changes in your memory or thinking.",
            ),
            (
                "p",
                "Many things can cause memory problems, including stress, low mood, thyroid problems and vitamin deficiencies, so a referral does not mean that you have dementia.",
            ),
            ("bold", "Who works in the team?"),
            ("p", "The team includes psychiatrists, mental health nurses, occupational therapists and psychologists."),
            ("h1", "Your assessment"),
            ("bold", "What happens at the first appointment?"),
            (
                "p",
                "A nurse will talk with you about your memory, your health and your daily life. You will also do some short memory tests. The appointment takes about 90 minutes.",
            ),
            ("bold", "Can someone come with me?"),
            (
                "p",
                "Yes, we encourage you to bring a relative or friend who knows you well. They can tell us about any changes they have noticed.",
            ),
            ("bold", "Will I need a brain scan?"),
            (
                "p",
                "Sometimes. If your doctor thinks a scan would help, it will usually be booked for a separate day at the hospital.",
            ),
            ("h1", "After your assessment"),
            ("bold", "How will I find out the results?"),
            (
                "p",
                "We will usually invite you back about four weeks later to talk about the results. We will also write to you and your GP.",
            ),
            ("bold", "What support is available?"),
            ("p", "Depending on your results, we can offer:"),
            ("ln", "information about your diagnosis and what to expect"),
            ("ln", "medication, if it is suitable for you"),
            ("ln", "cognitive stimulation therapy groups"),
            ("ln", "referral to local carers' support services"),
            ("h1", "Contact us"),
            (
                "table",
                [
                    ["Telephone", "01632 960199 (Monday to Friday, 9am to 5pm)"],
                    ["Address", "The Willows, Northfield General Hospital, Abbey Road, Northfield NF4 2AB"],
                ],
            ),
        ],
    },
}

STYLE = {
    "title": "Title",
    "h1": "Heading 1",
    "h2": "Heading 2",
    "h3": "Heading 3",
    "p": "Normal",
    "bold": "Normal",
    "lb": "List Bullet",
    "ln": "List Number",
    "runs": "Normal",
}


def build(spec: dict, *, bold_table_header: bool = False) -> bytes:
    document = docx.Document()
    document.styles["Normal"].font.size = Pt(11)
    for kind, payload in spec["blocks"]:
        if kind == "table":
            table = document.add_table(rows=len(payload), cols=len(payload[0]))
            table.style = "Table Grid"
            for r, row in enumerate(payload):
                for c, text in enumerate(row):
                    cell = table.cell(r, c)
                    cell.text = text
                    if r == 0 and bold_table_header:
                        for run in cell.paragraphs[0].runs:
                            run.bold = True
            continue
        paragraph = document.add_paragraph(style=STYLE[kind])
        if kind == "runs":
            for text, bold in payload:
                paragraph.add_run(text).bold = bold
        elif payload:
            run = paragraph.add_run(payload)
            if kind == "bold":
                run.bold = True
    props = document.core_properties
    props.title = spec["title"]
    props.author = spec["author"]
    props.last_modified_by = spec["author"]
    props.created = spec["created"]
    props.modified = spec["modified"]
    props.revision = 1
    props.comments = ""
    props.subject = ""
    props.keywords = "FAQ"
    raw = io.BytesIO()
    document.save(raw)
    return _normalise_zip(raw.getvalue())


def _normalise_zip(data: bytes) -> bytes:
    """Rewrite the package with fixed entry timestamps so output is reproducible."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=ZIP_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            dst.writestr(fixed, src.read(info.filename))
    return out.getvalue()


def write_documents(documents: dict[str, dict], root: Path, *, bold_table_header: bool = False) -> None:
    """Write each document of ``documents`` (name relative to ``root``: spec)."""
    for name, spec in documents.items():
        path = root / name
        path.write_bytes(build(spec, bold_table_header=bold_table_header))
        print(f"wrote {path.relative_to(root)}")


def main() -> None:
    write_documents(DOCUMENTS, ROOT)


if __name__ == "__main__":
    main()
