"""Who a user is, for permission checks: the principal ids that may appear in a read ACL.

Read ACLs (documents' and collections' `read_principals` arrays) hold integers:
a user is its own id, a group is minus its id, and ALL_STAFF (0) stands for every active,
authenticated user. A user's principals are computed per request from the user and group
tables, so group membership changes take effect on the next query with no ACL rewrite.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from types import SimpleNamespace
from typing import TextIO

from django.contrib.auth.models import AnonymousUser, Group
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import ApiToken, AuditEvent, User
from core.spreadsheets import SpreadsheetWriter

ALL_STAFF = 0


def user_principal(user_id: int) -> int:
    return user_id


def group_principal(group_id: int) -> int:
    return -group_id


@dataclass(frozen=True)
class Principals:
    """`unrestricted` users (superusers) read everything; otherwise any of `ids` grants reading."""

    unrestricted: bool
    ids: tuple[int, ...]


NOBODY = Principals(unrestricted=False, ids=())


def user_principals(*, user: User | AnonymousUser) -> Principals:
    """One query (the user's groups) for a regular user; none for superusers and anonymous."""
    if not user.is_authenticated or not user.is_active:
        return NOBODY
    if user.is_superuser:
        return Principals(unrestricted=True, ids=())
    group_ids = Group.objects.filter(user=user).values_list("id", flat=True)
    return Principals(
        unrestricted=False,
        ids=(ALL_STAFF, user_principal(user.pk), *(group_principal(g) for g in group_ids)),
    )


TOKEN_MARK = "prd_"  # noqa: S105 (a public marker that makes tokens easy to spot)


class TokenRejected(Exception):
    """The presented API token does not authenticate; the message says why."""


def token_digest(plain: str) -> str:
    # Tokens carry 256 random bits: a fast unsalted hash is enough (nothing to brute-force).
    return hashlib.sha256(plain.encode()).hexdigest()


def token_authenticate(*, plain: str) -> ApiToken:
    """The live token whose text this is. Unknown, revoked and expired tokens, and tokens of
    inactive users, are rejected with a reason. One query (token with its user)."""
    prefix = plain.removeprefix(TOKEN_MARK).split("_", 1)[0]
    token = (
        ApiToken.objects.select_related("user").filter(prefix=prefix).first()
        if plain.startswith(TOKEN_MARK)
        else None
    )
    if token is None or not hmac.compare_digest(token.digest, token_digest(plain)):
        raise TokenRejected("Invalid token.")
    if token.revoked_at is not None:
        raise TokenRejected("This token has been revoked.")
    if token.expires_at is not None and token.expires_at <= timezone.now():
        raise TokenRejected(f"This token expired at {token.expires_at:%Y-%m-%d %H:%M} UTC.")
    if not token.user.is_active:
        raise TokenRejected("This token's user is inactive.")
    return token


AUDIT_COLUMNS = (
    "id",
    "at",
    "actor_name",
    "via",
    "token_prefix",
    "client_ip",
    "action",
    "target_type",
    "target_id",
    "target_repr",
    "query",
    "answer",
    "returned_documents",
    "returned_chunks",
    "cited_documents",
    "cited_chunks",
    "details",
)

# Which of these ("document" | "collection", id) may the user read? The documents app answers
# (documents.authority, registered in its AppConfig.ready): accounts sits below it.
AuditReadable = Callable[[User, set[tuple[str, int]]], set[tuple[str, int]]]
_audit_readable: list[AuditReadable] = []
WITHHELD = "[withheld: not readable by you]"


def audit_readability_register(readable: AuditReadable) -> None:
    _audit_readable[:] = [readable]


def audit_readable(*, viewer: User, refs: set[tuple[str, int]]) -> set[tuple[str, int]]:
    """Which of these ("document" | "collection", id) the viewer may read."""
    if viewer.is_superuser:
        return refs
    return _audit_readable[0](viewer, refs) if refs else set()


def _audit_refs(event) -> set[tuple[str, int]]:
    # An ask's query rewritten from earlier answers names their documents in `derived_from`.
    derived = event.details.get("derived_from", [])
    refs = {
        ("document", pk) for pk in (*event.returned_documents, *event.cited_documents, *derived)
    }
    if event.target_type in ("document", "collection") and event.target_id is not None:
        refs.add((event.target_type, event.target_id))
    return refs


def audit_redact(*, viewer: User, events: Iterable) -> None:
    """Withhold, in place and for showing only, what these events tell of documents and
    collections the viewer may not read (superusers read everything): the answer, the
    target's title or name, the details (fields changed, grantees, settings), the chunks, and
    the unreadable documents' ids, so that not even their count is left. Sets `redacted` on
    each event. One query per kind of object, for the whole batch."""
    refs = [(event, _audit_refs(event)) for event in events]
    readable = audit_readable(viewer=viewer, refs=set().union(*(r for _, r in refs)))
    for event, its_refs in refs:
        event.redacted = not its_refs <= readable
        if not event.redacted:
            continue
        if event.answer:
            event.answer = WITHHELD
        if (event.target_type, event.target_id) not in readable:
            event.target_repr = WITHHELD
        event.details = {}
        event.returned_documents = [
            pk for pk in event.returned_documents if ("document", pk) in readable
        ]
        event.cited_documents = [pk for pk in event.cited_documents if ("document", pk) in readable]
        event.returned_chunks, event.cited_chunks = [], []


def _csv_cell(value) -> object:
    if isinstance(value, list | dict):
        return json.dumps(value, cls=DjangoJSONEncoder)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def audit_write(
    *, events: QuerySet[AuditEvent], fmt: str, out: TextIO, viewer: User | None = None
) -> int:
    """Write these audit events to `out`, oldest first, as CSV (lists and details as JSON text
    in their cells; core.spreadsheets escapes formulas) or as one JSON array,
    streaming rows from the database. With a `viewer`, what they may not read is withheld
    (audit_redact). Returns how many."""
    if fmt not in ("csv", "json"):
        raise ValueError(f"Unknown export format {fmt!r}; csv or json.")
    rows = events.order_by("at", "id").values(*AUDIT_COLUMNS).iterator(chunk_size=2000)
    writer = SpreadsheetWriter(out) if fmt == "csv" else None
    if writer is not None:
        writer.writerow(AUDIT_COLUMNS)
    else:
        out.write("[")
    count = 0
    while batch := [SimpleNamespace(**row) for row in islice(rows, 2000)]:
        if viewer is not None:
            audit_redact(viewer=viewer, events=batch)
        for event in batch:
            row = [getattr(event, column) for column in AUDIT_COLUMNS]
            if writer is not None:
                writer.writerow(_csv_cell(value) for value in row)
            else:
                out.write(",\n" if count else "\n")
                out.write(
                    json.dumps(dict(zip(AUDIT_COLUMNS, row, strict=True)), cls=DjangoJSONEncoder)
                )
            count += 1
    if writer is None:
        out.write("\n]\n" if count else "]\n")
    return count
