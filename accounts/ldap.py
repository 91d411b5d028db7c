"""LDAP and Active Directory: reading the directory (users, groups, nested groups) and sign-in
by bind (docs/identity.md); accounts.directory_sync mirrors what directory_read finds.
ldap3 speaks the protocol: pure Python, so installing prodrag needs no OpenLDAP headers or
compiler, and one library serves the sign-in and the sync. Every search is paged, and a search
the server cuts short raises: a partial read is never taken for the directory.
"""

from __future__ import annotations

import logging
import ssl
from collections import defaultdict
from dataclasses import dataclass, field

import ldap3
from django.conf import settings
from django.contrib.auth.backends import BaseBackend
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from ldap3.core.exceptions import LDAPBindError, LDAPException, LDAPInvalidCredentialsResult
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import safe_dn

from accounts.directory import (
    IdentityRefused,
    directory_group_ensure,
    directory_memberships_set,
    directory_user_ensure,
    group_mapped,
    user_active_set,
)
from accounts.models import AuditEvent, Directory, User
from accounts.services import AuditOrigin, audit_origin
from accounts.signin import SigninRefusal

logger = logging.getLogger("prodrag.accounts.ldap")

LDAP = Directory.LDAP
_MEMBER_ATTRIBUTES = ("member", "uniqueMember")
_PAGE = 500


class DirectoryUnavailable(Exception):
    """The directory did not answer, or not in full; the message says how."""


@dataclass(frozen=True)
class Person:
    id: str
    dn: str
    username: str
    email: str
    first_name: str
    last_name: str
    disabled: bool


@dataclass(frozen=True)
class Team:
    id: str
    dn: str
    name: str
    members: frozenset[str]  # normalised DNs of users and groups


@dataclass
class Snapshot:
    """The directory as one read found it, keyed by normalised DN."""

    people: dict[str, Person]
    teams: dict[str, Team]
    _ancestors: dict[str, frozenset[str]] = field(default_factory=dict)

    def groups_of(self, dn: str) -> frozenset[str]:
        """The DNs of every group `dn` belongs to, directly or through nested groups."""
        if dn not in self._ancestors:
            self._ancestors[dn] = frozenset()  # a cycle of groups ends here
            parents = self._parents().get(dn, ())
            found = set(parents)
            for parent in parents:
                found |= self.groups_of(parent)
            self._ancestors[dn] = frozenset(found)
        return self._ancestors[dn]

    def _parents(self) -> dict[str, set[str]]:
        if not hasattr(self, "_parent_map"):
            parents: dict[str, set[str]] = defaultdict(set)
            for team in self.teams.values():
                for member in team.members:
                    parents[member].add(team.dn)
            self._parent_map = parents
        return self._parent_map


def dn_normal(dn: str) -> str:
    """A DN as one string whatever its spelling: spaces and case do not matter in DNs."""
    try:
        return safe_dn(dn).lower()
    except LDAPException:
        return dn.strip().lower()


def _connection(*, user: str | None = None, password: str | None = None) -> ldap3.Connection:
    conf = settings.LDAP
    tls = ldap3.Tls(ca_certs_file=conf["ca_file"] or None, validate=ssl.CERT_REQUIRED)
    server = ldap3.Server(
        conf["url"], connect_timeout=conf["timeout"], tls=tls, get_info=ldap3.NONE
    )
    connection = ldap3.Connection(
        server,
        user=conf["bind_dn"] if user is None else user,
        password=conf["bind_password"] if password is None else password,
        receive_timeout=conf["timeout"],
        raise_exceptions=True,
        read_only=True,
    )
    try:
        connection.open()
        if conf["start_tls"]:
            connection.start_tls()
        connection.bind()
    except LDAPException:
        connection.unbind()
        raise
    return connection


def _value(entry: dict, attribute: str) -> str:
    value = entry.get(attribute)
    if isinstance(value, list):
        value = value[0] if value else ""
    return "" if value is None else str(value)


def _search(connection: ldap3.Connection, base: str, query: str, attributes: list[str]):
    """Every entry, page by page; a search the server cuts short raises (raise_exceptions)."""
    yield from connection.extend.standard.paged_search(
        base, query, attributes=attributes, paged_size=_PAGE, generator=True
    )


def _person(entry: dict, disabled: set[str]) -> Person:
    conf, attributes = settings.LDAP, entry["attributes"]
    dn = dn_normal(entry["dn"])
    return Person(
        id=_value(attributes, conf["id_attribute"]) or dn,
        dn=dn,
        username=_value(attributes, conf["username_attribute"]),
        email=_value(attributes, "mail"),
        first_name=_value(attributes, "givenName"),
        last_name=_value(attributes, "sn"),
        disabled=dn in disabled,
    )


def _team(entry: dict, members: frozenset[str]) -> Team:
    conf, attributes = settings.LDAP, entry["attributes"]
    dn = dn_normal(entry["dn"])
    return Team(
        id=_value(attributes, conf["id_attribute"]) or dn,
        dn=dn,
        name=_value(attributes, conf["group_name_attribute"]),
        members=members,
    )


def _person_attributes() -> list[str]:
    conf = settings.LDAP
    return [conf["id_attribute"], conf["username_attribute"], "mail", "givenName", "sn"]


def directory_read() -> Snapshot:
    """Read every user and group. Raises DirectoryUnavailable when the directory cannot be
    reached or does not answer in full."""
    conf = settings.LDAP
    try:
        connection = _connection()
        try:
            disabled = set()
            if conf["disabled_filter"]:
                disabled = {
                    dn_normal(entry["dn"])
                    for entry in _search(
                        connection,
                        conf["user_base"],
                        f"(&{conf['user_filter']}{conf['disabled_filter']})",
                        ["1.1"],
                    )
                    if entry["type"] == "searchResEntry"
                }
            people = {}
            for entry in _search(
                connection, conf["user_base"], conf["user_filter"], _person_attributes()
            ):
                if entry["type"] == "searchResEntry":
                    person = _person(entry, disabled)
                    people[person.dn] = person
            teams = {}
            attributes = [conf["id_attribute"], conf["group_name_attribute"], *_MEMBER_ATTRIBUTES]
            for entry in _search(connection, conf["group_base"], conf["group_filter"], attributes):
                if entry["type"] != "searchResEntry":
                    continue
                members = frozenset(
                    dn_normal(member)
                    for attribute in _MEMBER_ATTRIBUTES
                    for member in entry["attributes"].get(attribute) or ()
                )
                team = _team(entry, members)
                teams[team.dn] = team
        finally:
            connection.unbind()
    except LDAPException as exc:
        raise DirectoryUnavailable(f"{conf['url']}: {type(exc).__name__}: {exc}") from exc
    return Snapshot(people=people, teams=teams)


# --- sign-in -------------------------------------------------------------------------------------


class DirectoryBackend(BaseBackend):
    """Sign-in with a directory password: the service account finds the user's entry, a bind
    as that entry checks the password, and the user's groups are read at that moment (nested
    included). A directory that does not answer refuses the sign-in (a local account still
    signs in: ModelBackend comes first)."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if not settings.LDAP["url"] or not username or not password:
            return None  # an empty password would be an anonymous bind, which always succeeds
        try:
            return self._authenticate(username, password)
        except DirectoryUnavailable as exc:
            logger.error("directory sign-in: the directory did not answer: %s", exc)
            reason = "the directory did not answer"
        except IdentityRefused as exc:
            reason = str(exc)
        except _Refused as exc:
            reason = str(exc)
        except IntegrityError:  # a sync or another sign-in created the user meanwhile
            reason = "another sign-in or sync of this person was under way; try again"
        if request is not None:
            request.signin_refusal = SigninRefusal(method="ldap", reason=reason)
        return None

    def get_user(self, user_id):
        user = User.objects.filter(pk=user_id).first()
        return user if user is not None and user.is_active else None

    def _authenticate(self, username: str, password: str) -> User:
        conf = settings.LDAP
        attribute = conf["username_attribute"]
        query = f"(&{conf['user_filter']}({attribute}={escape_filter_chars(username)}))"
        try:
            connection = _connection()
            try:
                found = [
                    entry
                    for entry in _search(connection, conf["user_base"], query, _person_attributes())
                    if entry["type"] == "searchResEntry"
                ]
                if len(found) != 1:
                    raise _Refused("wrong username or password")
                dn = found[0]["dn"]
                disabled = bool(conf["disabled_filter"]) and bool(
                    connection.search(dn, conf["disabled_filter"], ldap3.BASE, attributes=["1.1"])
                )
                teams = _teams_of(connection, dn) if not disabled else {}
            finally:
                connection.unbind()
            self._bind(dn, password)
        except LDAPException as exc:
            raise DirectoryUnavailable(f"{conf['url']}: {type(exc).__name__}: {exc}") from exc
        person = _person(found[0], {dn_normal(dn)} if disabled else set())
        with audit_origin(AuditOrigin(via=AuditEvent.Via.PAGE)), transaction.atomic():
            user = directory_user_ensure(
                directory=LDAP,
                subject=person.id,
                username=person.username or username,
                email=person.email,
                first_name=person.first_name,
                last_name=person.last_name,
            )
            user_active_set(user=user, active=not disabled, directory=LDAP)
            if disabled:
                raise _Refused("the account is disabled in the directory")
            groups = [_group_ensure(team) for team in teams.values() if group_mapped(team.name)]
            directory_memberships_set(user=user, directory=LDAP, groups=groups)
        return user

    @staticmethod
    def _bind(dn: str, password: str) -> None:
        try:
            _connection(user=dn, password=password).unbind()
        except (LDAPBindError, LDAPInvalidCredentialsResult) as exc:
            raise _Refused("wrong username or password") from exc


class _Refused(Exception):
    pass


def _teams_of(connection: ldap3.Connection, dn: str) -> dict[str, Team]:
    """The groups `dn` belongs to, directly or through nested groups: one search per level."""
    conf = settings.LDAP
    attributes = [conf["id_attribute"], conf["group_name_attribute"]]
    found: dict[str, Team] = {}
    frontier = {dn}
    while frontier:
        members = "".join(
            f"({attribute}={escape_filter_chars(member)})"
            for member in frontier
            for attribute in _MEMBER_ATTRIBUTES
        )
        query = f"(&{conf['group_filter']}(|{members}))"
        frontier = set()
        for entry in _search(connection, conf["group_base"], query, attributes):
            if entry["type"] != "searchResEntry":
                continue
            team = _team(entry, frozenset())
            if team.dn not in found:
                found[team.dn] = team
                frontier.add(entry["dn"])
    return found


def _group_ensure(team: Team) -> Group:
    return directory_group_ensure(directory=LDAP, external_id=team.id, name=team.name)
