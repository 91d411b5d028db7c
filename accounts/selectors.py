"""Who a user is, for permission checks: the principal ids that may appear in a read ACL.

Read ACLs (documents' and collections' `read_principals` arrays) hold integers:
a user is its own id, a group is minus its id, and ALL_STAFF (0) stands for every active,
authenticated user. A user's principals are computed per request from the user and group
tables, so group membership changes take effect on the next query with no ACL rewrite.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser, Group

from accounts.models import User

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
