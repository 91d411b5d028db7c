"""Who a user is, for permission checks: the principal ids that may appear in a read ACL.

Read ACLs (documents' and collections' `read_principals` arrays) hold integers:
a user is its own id, a group is minus its id, and ALL_STAFF (0) stands for every active,
authenticated user. A user's principals are computed per request from the user and group
tables, so group membership changes take effect on the next query with no ACL rewrite.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

from django.contrib.auth.models import AnonymousUser, Group
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import ApiToken, AuditEvent, User

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


def audit_write(*, events: QuerySet[AuditEvent], fmt: str, out: TextIO) -> int:
    """Write these audit events to `out`, oldest first, as CSV (lists and details as JSON text
    in their cells) or as one JSON array, streaming rows from the database. Returns how many."""
    rows = events.order_by("at", "id").values_list(*AUDIT_COLUMNS).iterator(chunk_size=2000)
    count = 0
    if fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(AUDIT_COLUMNS)
        for row in rows:
            writer.writerow(
                json.dumps(value, cls=DjangoJSONEncoder)
                if isinstance(value, list | dict)
                else value.isoformat()
                if isinstance(value, datetime)
                else value
                for value in row
            )
            count += 1
        return count
    if fmt != "json":
        raise ValueError(f"Unknown export format {fmt!r}; csv or json.")
    out.write("[")
    for row in rows:
        out.write(",\n" if count else "\n")
        out.write(json.dumps(dict(zip(AUDIT_COLUMNS, row, strict=True)), cls=DjangoJSONEncoder))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count
