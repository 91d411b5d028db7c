"""A small sample corpus, written here (no third-party files): the handbook of a made-up
company, Northwind Labs, in every supported format, so a newcomer can search at once."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import docx
import openpyxl
import pptx
from fpdf import FPDF

# Fixed document dates, so the sample's metadata reads the same on every install.
WRITTEN = datetime(2026, 1, 15, 9, 0)

LEAVE = [
    (
        "Annual leave",
        "Every employee gets 27 days of paid annual leave per calendar year, plus "
        "public holidays. Part-time staff get the same entitlement pro rata.",
    ),
    (
        "Carry-over",
        "Up to five unused days may be carried over into the first quarter of the "
        "next year. Days not taken by 31 March expire.",
    ),
    (
        "Parental leave",
        "Parents get 20 weeks of fully paid parental leave, to be taken within "
        "the first year after birth or adoption.",
    ),
]
SECURITY = [
    (
        "Passwords",
        "Use the company password manager. Passwords are at least 16 characters "
        "long and never reused across services.",
    ),
    (
        "Laptops",
        "Laptop disks are encrypted. A lost or stolen laptop is reported to "
        "security@northwind.example within one hour.",
    ),
    (
        "Visitors",
        "Visitors sign in at reception, wear a visitor badge and are accompanied in "
        "the lab at all times.",
    ),
]


# The collection `load_sample` loads into unless told otherwise.
SAMPLE_COLLECTION = "Sample: Northwind handbook"
# Judged questions about the sample, by file name (how an evaluation set names a loaded file):
# the evaluation set `make up` registers and runs first (manage.py evaluate --sample). Worded
# as staff would ask, not in the documents' words.
SAMPLE_EVALUATION_SET = "Sample: Northwind questions"
SAMPLE_QUESTIONS = {
    "leave-days": ("How many holiday days do I get a year?", ["leave-policy.docx"]),
    "carry-over": (
        "Can I take unused vacation into next year?",
        ["leave-policy.docx", "vacation_calculator.py"],
    ),
    "parental": ("How long is paid leave after having a baby?", ["leave-policy.docx"]),
    "password": ("How long does my password have to be?", ["security-handbook.pdf"]),
    "stolen-laptop": ("Who do I tell when my laptop gets stolen?", ["security-handbook.pdf"]),
    "guests": ("Can visitors walk around the lab on their own?", ["security-handbook.pdf"]),
    "revenue": ("How much did revenue grow last quarter?", ["quarterly-review.pptx"]),
    "lisbon": ("What is the address of the Lisbon office?", ["office-locations.xlsx"]),
    "hotel": ("How much can I spend on a hotel per night?", ["expense-limits.csv"]),
    "first-day": ("What happens on my first day?", ["onboarding.html"]),
    "review": ("How many approvals does a code change need?", ["engineering-guide.md"]),
    "on-call": ("How quickly must on-call answer a page?", ["engineering-guide.md"]),
    "help-desk": ("When is the IT help desk open?", ["it-support.txt"]),
    "releases": ("How often do we ship a release?", ["release-process.rst"]),
    "rollback": ("Who is allowed to roll back a release?", ["release-process.rst"]),
}


def sample_corpus_write(*, directory: Path) -> list[Path]:
    """Write the sample files missing from `directory` and return the paths of all of them.
    Files already there are kept: Office files embed the time they were zipped, so rewriting
    them would make new versions of unchanged documents."""
    directory.mkdir(parents=True, exist_ok=True)
    writers = [
        ("leave-policy.docx", _docx),
        ("security-handbook.pdf", _pdf),
        ("quarterly-review.pptx", _pptx),
        ("office-locations.xlsx", _xlsx),
        ("expense-limits.csv", _csv),
        ("onboarding.html", _html),
        ("engineering-guide.md", _markdown),
        ("it-support.txt", _text),
        ("release-process.rst", _rst),
        ("vacation_calculator.py", _python),
    ]
    paths = []
    for name, write in writers:
        path = directory / name
        if not path.exists():
            write(path)
        paths.append(path)
    return paths


def _docx(path: Path) -> None:
    document = docx.Document()
    document.core_properties.title = "Leave policy"
    document.core_properties.author = "Northwind Labs People Team"
    document.add_heading("Leave policy", 1)
    for heading, text in LEAVE:
        document.add_heading(heading, 2)
        document.add_paragraph(text)
    document.add_heading("Entitlement by years of service", 2)
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "Years of service", "Days"
    for years, days in (("0-4", "27"), ("5-9", "29"), ("10+", "31")):
        cells = table.add_row().cells
        cells[0].text, cells[1].text = years, days
    _fixed_dates(document.core_properties)
    document.save(path)


def _fixed_dates(properties) -> None:
    properties.created = properties.modified = WRITTEN


def _pdf(path: Path) -> None:
    pdf = FPDF()
    pdf.set_title("Security handbook")
    pdf.set_author("Northwind Labs Security")
    pdf.set_creation_date(WRITTEN)
    for heading, text in SECURITY:
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 16)
        pdf.cell(0, 10, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=12)
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))


def _pptx(path: Path) -> None:
    presentation = pptx.Presentation()
    presentation.core_properties.title = "Quarterly review"
    _fixed_dates(presentation.core_properties)
    for title, body in (
        (
            "Quarterly review Q3",
            "Revenue grew 12% over Q2. The search product shipped to 40 customers.",
        ),
        ("Next quarter", "Focus on permissions auditing and a faster ingestion pipeline."),
    ):
        slide = presentation.slides.add_slide(presentation.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    presentation.save(path)


def _xlsx(path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Offices"
    sheet.append(["City", "Address", "Desks", "Reception phone"])
    sheet.append(["Lisbon", "Rua Augusta 100", 80, "+351 21 000 0000"])
    sheet.append(["Utrecht", "Oudegracht 12", 45, "+31 30 000 0000"])
    workbook.properties.creator = "Northwind Labs Facilities"
    workbook.properties.created = workbook.properties.modified = WRITTEN
    workbook.save(path)


def _csv(path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Category", "Limit (EUR)", "Needs approval above"])
        writer.writerow(["Hotel per night", "180", "220"])
        writer.writerow(["Meals per day", "60", "80"])
        writer.writerow(["Conference ticket", "900", "900"])


def _html(path: Path) -> None:
    items = "".join(
        f"<h2>{step}</h2><p>{text}</p>"
        for step, text in (
            ("First day", "Collect your laptop from IT at 9:00 and meet your onboarding buddy."),
            ("First week", "Complete the security training and set up the password manager."),
            ("First month", "Agree your goals for the probation period with your manager."),
        )
    )
    path.write_text(
        '<!DOCTYPE html><html lang="en"><head><title>Onboarding checklist</title>'
        '<meta name="author" content="Northwind Labs People Team"></head><body>'
        f"<h1>Onboarding checklist</h1>{items}</body></html>",
        encoding="utf-8",
    )


def _markdown(path: Path) -> None:
    path.write_text(
        "# Engineering guide\n\n## Code review\n\nEvery change needs one approving review. "
        "Reviews happen within one working day.\n\n## On-call\n\nEngineers are on call one "
        "week in eight. The on-call engineer answers pages within 15 minutes.\n\n"
        "| Severity | Response time |\n|---|---|\n| SEV1 | 15 minutes |\n| SEV2 | 4 hours |\n",
        encoding="utf-8",
    )


def _text(path: Path) -> None:
    path.write_text(
        "IT support\n\nThe IT help desk is open from 8:00 to 18:00 on working days. Call "
        "extension 4242 or write to it@northwind.example.\n\nFor a forgotten password, use the "
        "self-service reset page; the help desk never asks for your password.\n",
        encoding="utf-8",
    )


def _rst(path: Path) -> None:
    path.write_text(
        "Release process\n===============\n\nReleases ship every second Tuesday.\n\n"
        "Freeze\n------\n\nThe release branch is cut on Friday; only fixes land after that.\n\n"
        "Rollback\n--------\n\nAny engineer may roll back a release that raises the error rate "
        "above 1%.\n",
        encoding="utf-8",
    )


def _python(path: Path) -> None:
    path.write_text(
        '"""Vacation day calculations used by the HR portal."""\n\n\n'
        "def days_for_years(years_of_service: int) -> int:\n"
        '    """Annual leave days for an employee: 27, plus two days after five years of '
        'service and two more after ten."""\n'
        "    return 27 + 2 * (years_of_service >= 5) + 2 * (years_of_service >= 10)\n\n\n"
        "class LeaveBalance:\n"
        '    """Days an employee has left this year."""\n\n'
        "    def carry_over(self, unused: int) -> int:\n"
        '        """At most five unused days carry over into the next year."""\n'
        "        return min(unused, 5)\n",
        encoding="utf-8",
    )
