from __future__ import annotations

import secrets
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import ApiToken, User
from accounts.selectors import TOKEN_MARK, token_digest


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
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=prefix,
        digest=token_digest(plain),
        scope=scope,
        expires_at=None if days is None else timezone.now() + timedelta(days=days),
    )
    return token, plain


def token_revoke(*, token: ApiToken) -> None:
    """Locks: none; revoking twice keeps the first time."""
    ApiToken.objects.filter(pk=token.pk, revoked_at=None).update(revoked_at=timezone.now())


def token_used(*, token: ApiToken) -> None:
    """Record that the token was just used, at most once a minute (no write per request).

    Locks: the token's row, briefly, when the minute has passed."""
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
