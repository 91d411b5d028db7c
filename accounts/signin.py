"""Sign-in: how every way in (local password, directory password, OpenID Connect) is
recorded, and a typed username read the way authentication reads it, so that every limit,
lockout and audit entry keyed on a username counts the account that would be signed in to.

Django's login form strips the username of surrounding white space and applies Unicode NFKC
(a full-width "anna" is "anna") before it looks the account up; a key built from the raw
posted name would give `" anna"`, `"anna "` and the full-width spelling a limit each.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.forms import AuthenticationForm

from accounts.models import AuditEvent, User
from accounts.services import audit_record
from core import metrics

# Backends by what the audit trail calls them.
_METHODS = {
    "django.contrib.auth.backends.ModelBackend": "password",
    "accounts.ldap.DirectoryBackend": "ldap",
    "accounts.oidc.OpenIdBackend": "oidc",
}


@dataclass(frozen=True)
class SigninRefusal:
    """Why a backend refused a sign-in, left on the request for the audit trail."""

    method: str
    reason: str


def signin_method(backend: str) -> str:
    return _METHODS.get(backend, backend.rsplit(".", 1)[-1] or "unknown")


def signin_record(*, method: str, user: User | None = None, username: str = "", reason: str = ""):
    """Audit one sign-in: accepted when `user` is given, else refused for `reason`."""
    metrics.SIGNINS.labels(method, "refused" if user is None else "accepted").inc()
    if user is not None:
        audit_record(action=AuditEvent.Action.SIGNIN, actor=user, details={"method": method})
        return
    audit_record(
        action=AuditEvent.Action.SIGNIN_FAILED,
        details={"method": method, "username": username[:150], "reason": reason},
    )


def username_normalize(raw: str) -> str:
    """The username the login form would authenticate for `raw` (its own field's cleaning,
    so that the two cannot drift apart); empty for one it would refuse as empty."""
    return AuthenticationForm.base_fields["username"].to_python(raw) or ""
