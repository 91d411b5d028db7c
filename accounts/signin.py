"""Sign-in: a typed username read the way authentication reads it, so that every limit,
lockout and audit entry keyed on a username counts the account that would be signed in to.

Django's login form strips the username of surrounding white space and applies Unicode NFKC
(a full-width "anna" is "anna") before it looks the account up; a key built from the raw
posted name would give `" anna"`, `"anna "` and the full-width spelling a limit each.
"""

from __future__ import annotations

from django.contrib.auth.forms import AuthenticationForm


def username_normalize(raw: str) -> str:
    """The username the login form would authenticate for `raw` (its own field's cleaning,
    so that the two cannot drift apart); empty for one it would refuse as empty."""
    return AuthenticationForm.base_fields["username"].to_python(raw) or ""
