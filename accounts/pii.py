"""Desensitisation of free text (queries, answers) before it is written to the audit trail or
a log: personal identifiers are replaced by a bracketed kind, e.g. `[email]`.

Which kinds are masked is PRODRAG_PII_MASK; PRODRAG_PII_EXTRA adds one regular expression of
the operator's own (employee numbers, case ids), masked as `[redacted]`. Card numbers and IBANs
are masked only when their check digits are right, so order numbers and the like survive; a
run of digits shaped like a phone number is masked as one even if it is something else, the
cheaper mistake for a compliance record.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.conf import settings


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, digit in enumerate(reversed(digits)):
        value = int(digit)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _iban_valid(compact: str) -> bool:
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in moved)) % 97 == 1


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


# (kind, pattern, check of a match): applied in this order, so that a card number is not
# taken for a phone number first.
_KINDS: tuple[tuple[str, re.Pattern, Callable[[str], bool]], ...] = (
    (
        "email",
        re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}", re.IGNORECASE),
        lambda _: True,
    ),
    (
        "iban",
        re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b"),
        lambda found: _iban_valid(found.replace(" ", "")),
    ),
    (
        "card",
        re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])"),
        lambda found: _luhn_valid(_digits(found)),
    ),
    (
        "ssn",
        re.compile(r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])"),
        lambda _: True,
    ),
    (
        "ip",
        re.compile(
            r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)"
            r"(?![\w.])"
        ),
        lambda _: True,
    ),
    (
        # International (+ or 00) or national numbers, 8 to 15 digits with separators and an
        # optional parenthesised area code. Not an ISO date (2024-05-01), not a decimal.
        "phone",
        re.compile(
            r"(?<![\w+(])(?:(?:\+|00)\d{1,3}[ ./-]*)?(?:\(\d{1,5}\)[ ./-]*)?\d[\d ./-]*\d(?!\w)"
        ),
        lambda found: (
            8 <= len(_digits(found)) <= 15
            and not re.fullmatch(r"\d{4}-\d{2}-\d{2}|\d+\.\d+", found)
        ),
    ),
)

KINDS = tuple(kind for kind, _, _ in _KINDS)


def pii_mask(text: str) -> str:
    """`text` with every identifier of the configured kinds replaced by `[kind]`."""
    if not text:
        return text
    enabled = settings.PII_MASK
    for kind, pattern, valid in _KINDS:
        if kind in enabled:
            text = pattern.sub(
                lambda match, kind=kind, valid=valid: (
                    f"[{kind}]" if valid(match.group()) else match.group()
                ),
                text,
            )
    if settings.PII_EXTRA is not None:
        text = settings.PII_EXTRA.sub("[redacted]", text)
    return text
