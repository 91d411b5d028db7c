"""From the names in a source's ACLs to prodrag's users and groups (mirror mode).

A user name in a source is a prodrag user with that user name, or that e-mail address, or a
directory identity with that subject (an Active Directory SID); a group name is the prodrag
group of that name (a directory group keeps its directory's name: accounts.directory) or the
directory group with that external id. A name that maps to no one, or to more than one user,
grants nothing: it is never guessed."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import Group
from django.db.models import Q

from accounts.models import User
from sources.connectors import Readers


@dataclass(frozen=True)
class Mapped:
    users: frozenset[int]
    groups: frozenset[int]
    everyone: bool


class PrincipalMap:
    """Maps readers to prodrag users and groups, remembering each name's answer for one pass
    (a sync or a permission pass), so that a thousand items shared with one group ask once."""

    def __init__(self) -> None:
        self._users: dict[str, int | None] = {}
        self._groups: dict[str, int | None] = {}

    def mapped(self, readers: Readers | None) -> Mapped:
        """None (an ACL that could not be read) grants nothing."""
        if readers is None:
            return Mapped(frozenset(), frozenset(), everyone=False)
        users = {self._user(name) for name in readers.users} - {None}
        groups = {self._group(name) for name in readers.groups} - {None}
        return Mapped(frozenset(users), frozenset(groups), everyone=readers.everyone)

    def _user(self, name: str) -> int | None:
        if name not in self._users:
            ids = set(
                User.objects.filter(
                    Q(username__iexact=name)
                    | (Q(email__iexact=name) if "@" in name else Q(pk__in=[]))
                    | Q(identities__subject=name)
                ).values_list("pk", flat=True)
            )
            self._users[name] = ids.pop() if len(ids) == 1 else None
        return self._users[name]

    def _group(self, name: str) -> int | None:
        if name not in self._groups:
            ids = set(
                Group.objects.filter(Q(name=name) | Q(directory__external_id=name)).values_list(
                    "pk", flat=True
                )
            )
            self._groups[name] = ids.pop() if len(ids) == 1 else None
        return self._groups[name]
