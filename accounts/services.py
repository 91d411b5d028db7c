from __future__ import annotations

import secrets

from django.db import IntegrityError, transaction

from accounts.models import User


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
