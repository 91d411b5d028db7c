from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from accounts.models import ApiToken, AuditEvent, User
from accounts.pii import pii_mask
from accounts.selectors import TOKEN_MARK, token_digest
from core.clients import client_address


def admin_bootstrap(*, username: str) -> str | None:
    """Create the first superuser with a generated password and return that password, once;
    None when the user exists already (its password is never shown again).

    Locks: none; the username's unique constraint settles a race between two callers.
    """
    password = secrets.token_urlsafe(12)
    try:
        with transaction.atomic():
            User.objects.create_superuser(username=username, email="", password=password)
    except IntegrityError:
        return None
    return password


def token_create(
    *, user: User, scope: str = ApiToken.Scope.READ, days: int | None = None, name: str = ""
) -> tuple[ApiToken, str]:
    """A new API token for `user` and its plain text, which is not stored anywhere and cannot
    be shown again. `days`: valid for that many days; None: until revoked.

    Locks: none; the prefix's unique constraint rules out two tokens sharing one.
    """
    if scope not in ApiToken.Scope.values:
        raise ValueError(f"Unknown scope {scope!r}; one of: {', '.join(ApiToken.Scope.values)}.")
    if days is not None and days < 1:
        raise ValueError(f"A token must be valid for at least one day, not {days}.")
    prefix = secrets.token_hex(4)
    plain = f"{TOKEN_MARK}{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name,
            prefix=prefix,
            digest=token_digest(plain),
            scope=scope,
            expires_at=None if days is None else timezone.now() + timedelta(days=days),
        )
        audit_record(
            action=AuditEvent.Action.TOKEN_CREATE,
            target=token,
            details={"user": user.username, "scope": scope, "expires_at": token.expires_at},
        )
    return token, plain


def token_revoke(*, token: ApiToken) -> None:
    """Locks: the token's row; revoking twice keeps the first time."""
    with transaction.atomic():
        if ApiToken.objects.filter(pk=token.pk, revoked_at=None).update(revoked_at=timezone.now()):
            audit_record(
                action=AuditEvent.Action.TOKEN_REVOKE,
                target=token,
                details={"user": token.user.username},
            )


def token_used(*, token: ApiToken) -> None:
    """Record that the token was just used, at most once a minute (no write per request).

    Locks: the token's row, briefly, when the minute has passed."""
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)


@dataclass(frozen=True)
class AuditOrigin:
    """Where the current work comes from. `request`: its user is read when an event is
    recorded, not when the origin is set, because DRF authenticates a token inside the view,
    after the middleware has run."""

    via: str
    request: object | None = None


_origin: ContextVar[AuditOrigin] = ContextVar("audit_origin")
_NO_ORIGIN = AuditOrigin(via=AuditEvent.Via.SYSTEM)


def audit_origin_current() -> AuditOrigin:
    return _origin.get(_NO_ORIGIN)


@contextmanager
def audit_origin(origin: AuditOrigin) -> Iterator[None]:
    """Attribute the audit events recorded inside the block to this origin."""
    token = _origin.set(origin)
    try:
        yield
    finally:
        _origin.reset(token)


def audit_record(**event) -> AuditEvent:
    """Record one audited action (audit_event's keyword arguments).

    Locks: none; joins the caller's transaction, so the record commits or rolls back with the
    change it describes."""
    record = audit_event(**event)
    record.save()
    return record


def audit_event(
    *,
    action: str,
    actor: User | None = None,
    target: models.Model | None = None,
    query: str = "",
    answer: str = "",
    returned: Iterable[tuple[int, int]] = (),
    cited: Iterable[tuple[int, int]] = (),
    details: dict | None = None,
) -> AuditEvent:
    """One audited action, unsaved (audit_record saves it; a caller writing many uses
    `AuditEvent.objects.bulk_create`). `actor`: by default the user of the current origin's
    request; `returned` and `cited`: (document id, chunk id) pairs in rank order. Query and
    answer are desensitised here, so no caller can forget it."""
    origin = audit_origin_current()
    request = origin.request
    token_prefix, client_ip = "", None
    if request is not None:
        auth = getattr(request, "auth", None)
        token_prefix = auth.prefix if isinstance(auth, ApiToken) else ""
        client_ip = client_address(request)
        if actor is None and getattr(request.user, "is_authenticated", False):
            actor = request.user
    returned, cited = list(returned), list(cited)
    return AuditEvent(
        actor=actor,
        actor_name=actor.get_username() if actor else "",
        via=origin.via,
        token_prefix=token_prefix,
        client_ip=client_ip,
        action=action,
        target_type=target._meta.model_name if target is not None else "",
        target_id=target.pk if target is not None else None,
        target_repr=str(target)[:300] if target is not None else "",
        query=pii_mask(query),
        answer=pii_mask(answer),
        returned_documents=list(dict.fromkeys(document for document, _ in returned)),
        returned_chunks=[chunk for _, chunk in returned],
        cited_documents=list(dict.fromkeys(document for document, _ in cited)),
        cited_chunks=[chunk for _, chunk in cited],
        details=details or {},
    )


def audit_purge() -> int:
    """Delete audit records older than PRODRAG_AUDIT_RETENTION_DAYS (none when it is 0).
    Returns how many.

    Locks: the deleted rows."""
    if not settings.AUDIT_RETENTION_DAYS:
        return 0
    cutoff = timezone.now() - timedelta(days=settings.AUDIT_RETENTION_DAYS)
    deleted, _ = AuditEvent.objects.filter(at__lt=cutoff).delete()
    return deleted


def audit_snapshot(instance: models.Model, fields: Iterable[str]) -> dict:
    """The stored values of `fields` of a saved row, before a change is saved over them (for
    audit_diff)."""
    row = type(instance).objects.filter(pk=instance.pk).values(*_attnames(instance, fields))
    return row.first() or {}


def audit_diff(before: dict, instance: models.Model, fields: Iterable[str]) -> dict:
    """{field: [before, after]} of the fields that changed; a foreign key reads as its object."""
    changes = {}
    for name in fields:
        field = instance._meta.get_field(name)
        old, new = before.get(field.attname), getattr(instance, field.attname)
        if old == new:
            continue
        if field.is_relation:
            related = field.related_model.objects.filter(pk=old).first() if old else None
            old, new = str(related) if related else old, str(getattr(instance, name))
        changes[name] = [old, new]
    return changes


def audit_describe(instance: models.Model, fields: Iterable[str]) -> dict:
    """{field: value} of a new or deleted row; a foreign key reads as its object."""
    described = {}
    for name in fields:
        field = instance._meta.get_field(name)
        value = getattr(instance, field.attname)
        described[name] = str(getattr(instance, name)) if field.is_relation and value else value
    return described


def _attnames(instance: models.Model, fields: Iterable[str]) -> list[str]:
    return [instance._meta.get_field(name).attname for name in fields]
