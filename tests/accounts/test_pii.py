"""Desensitisation of queries and answers: each kind of identifier is masked, look-alikes that
are not identifiers survive, and the operator chooses the kinds and adds their own."""

import re

import pytest
from django.conf import settings

from accounts import pii
from accounts.pii import pii_mask


@pytest.mark.parametrize(
    "text, masked",
    [
        ("mail anna.berg@example.co.uk today", "mail [email] today"),
        ("card 4111 1111 1111 1111, exp 12/27", "card [card], exp 12/27"),
        ("card 4111-1111-1111-1111", "card [card]"),
        ("pay to DE89 3704 0044 0532 0130 00 now", "pay to [iban] now"),
        ("pay to GB82WEST12345698765432", "pay to [iban]"),
        ("ssn 078-05-1120", "ssn [ssn]"),
        ("from 192.168.1.20 again", "from [ip] again"),
        ("call +44 20 7946 0958.", "call [phone]."),
        ("call (030) 123-4567 or 0049 30 1234567", "call [phone] or [phone]"),
        ("call 555-123-4567", "call [phone]"),
    ],
)
def test_each_kind_of_identifier_is_masked(text, masked):
    assert pii_mask(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112 fails its check digit",
        "IBAN DE89 3704 0044 0532 0130 02 fails its checksum",
        "on 2024-05-01, 300 patients, p = 0.05, ISO 9001:2015",
        "version 1.2.3 and pi 3.14159265",
        "covid-19 in 2020; order 12345",
    ],
)
def test_look_alikes_that_are_not_identifiers_survive(text):
    assert pii_mask(text) == text


def test_only_the_configured_kinds_are_masked(settings):
    settings.PII_MASK = frozenset({"email"})

    assert pii_mask("a@example.com, +44 20 7946 0958") == "[email], +44 20 7946 0958"
    settings.PII_MASK = frozenset()
    assert pii_mask("a@example.com") == "a@example.com"


def test_an_operators_own_pattern_is_masked_too(settings):
    settings.PII_EXTRA = re.compile(r"\bEMP-\d{6}\b")

    assert pii_mask("employee EMP-004211 asked") == "employee [redacted] asked"


def test_the_settings_know_every_kind_the_masker_has():
    assert set(pii.KINDS) == set(settings.PII_KINDS)
