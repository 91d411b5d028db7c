"""The LDAP directory sync: make prodrag's directory users, groups and memberships what the
directory says, for everyone, whether they sign in or not (docs/identity.md).

A run reads the whole directory first (accounts.ldap.directory_read) and changes nothing
unless that read succeeded in full: a directory that does not answer, or cuts a search short,
removes nobody; the run is recorded as failed and the task retries. A run that would remove
more than PRODRAG_LDAP_MAX_REMOVAL_SHARE of directory memberships and active directory users
(and more than PRODRAG_LDAP_REMOVALS_ALWAYS_ALLOWED) is held: nothing changes, an error is
logged and counted, until `manage.py directory_sync --allow-removals` applies it.

What a run changes, it changes in one transaction and in bulk (docs/benchmarks.md, "Directory
sync", for 10,000 users): users created and linked, renamed, deactivated (sessions
ended, tokens revoked: accounts.directory.user_active_set) or reactivated; groups created and
renamed; memberships of the directory's groups added and removed, each one audited.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Func, TextField, Value
from django.utils import timezone

from accounts.directory import (
    group_mapped,
    group_name_free,
    group_rename,
    group_renamed,
    user_active_set,
)
from accounts.ldap import LDAP, DirectoryUnavailable, Snapshot, directory_read
from accounts.models import AuditEvent, DirectoryGroup, DirectorySync, ExternalIdentity, User
from accounts.services import AuditOrigin, audit_event, audit_origin
from core import metrics

logger = logging.getLogger("prodrag.accounts.directory_sync")
_LOCK_KEYS = (0x70726F64, 1)  # "prod", the directory sync
Membership = User.groups.through


@dataclass
class _Plan:
    """What a run would change, worked out before anything is written."""

    new_groups: list = field(default_factory=list)  # Team
    renamed_groups: dict = field(default_factory=dict)  # group id -> new name
    new_users: list = field(default_factory=list)  # Person
    linked_users: list = field(default_factory=list)  # (user id, Person)
    profile_updates: list = field(default_factory=list)  # (user id, {field: value})
    deactivate: set = field(default_factory=set)  # user ids
    reactivate: set = field(default_factory=set)
    conflicts: list = field(default_factory=list)  # usernames of local accounts
    memberships: set = field(default_factory=set)  # wanted (user id | Person id, group key)
    current: dict = field(default_factory=dict)  # (user id, group id) -> membership row id
    removals: int = 0  # memberships removed and users deactivated
    base: int = 0  # what removals are a share of: memberships and active users now


def directory_sync(*, allow_removals: bool = False) -> DirectorySync:
    """One sync run, recorded (DirectorySync). Raises DirectoryUnavailable after recording a
    failed run, so that the task retries; any other error is recorded too, and raised.

    Locks: none while reading the directory; then, in one transaction, the sync's own lock
    (a second sync, from beat or the command, waits for the first and works out its changes
    after it), then the rows it changes (users deactivated or reactivated one by one, as
    user_active_set locks them)."""
    run = DirectorySync.objects.create()
    try:
        snapshot = directory_read()
    except DirectoryUnavailable as exc:
        _finish(run, DirectorySync.Outcome.FAILED, error=str(exc))
        logger.error("directory sync failed, nothing changed: %s", exc)
        raise
    run.users_seen, run.groups_seen = len(snapshot.people), len(snapshot.teams)
    try:
        with audit_origin(AuditOrigin(via=AuditEvent.Via.SYNC)), transaction.atomic():
            _sync_lock(run)
            plan = _plan(snapshot)
            if held := _held(plan, allow_removals):
                _finish(run, DirectorySync.Outcome.HELD, error=held)
                logger.error("directory sync held: %s", held)
                return run
            group_ids = _groups_apply(plan, run)
            user_ids = _users_apply(plan, run)
            _activity_apply(plan, run)
            wanted = {(user_ids[who], group_ids[key]) for who, key in plan.memberships}
            _memberships_apply(plan, wanted, run)
    except Exception as exc:
        _finish(_unchanged(run), DirectorySync.Outcome.FAILED, error=f"{type(exc).__name__}: {exc}")
        logger.exception("directory sync failed, nothing changed")
        raise
    run.conflicts = plan.conflicts
    if plan.conflicts:
        logger.warning(
            "directory sync skipped %d users whose usernames are local accounts: %s",
            len(plan.conflicts),
            ", ".join(plan.conflicts[:20]),
        )
    _finish(run, DirectorySync.Outcome.DONE)
    return run


def _sync_lock(run: DirectorySync) -> None:
    """Wait for any other sync's transaction to end. A transaction-level advisory lock on a
    pair of keys, a key space apart from the documents' single-key locks."""
    DirectorySync.objects.filter(pk=run.pk).annotate(
        locked=Func(
            Value(_LOCK_KEYS[0]),
            Value(_LOCK_KEYS[1]),
            function="pg_advisory_xact_lock",
            output_field=TextField(),
        )
    ).values_list("locked").get()


def _held(plan: _Plan, allow_removals: bool) -> str:
    """Why the run is held by the removal guard, or empty."""
    allowed = max(
        settings.LDAP_REMOVALS_ALWAYS_ALLOWED, int(settings.LDAP_MAX_REMOVAL_SHARE * plan.base)
    )
    if plan.removals <= allowed or allow_removals:
        return ""
    return (
        f"{plan.removals} removals (memberships and active users) of {plan.base} exceed "
        f"PRODRAG_LDAP_MAX_REMOVAL_SHARE ({settings.LDAP_MAX_REMOVAL_SHARE:.0%}); nothing "
        "changed. Check the directory, then run `manage.py directory_sync --allow-removals`."
    )


def _unchanged(run: DirectorySync) -> DirectorySync:
    """The run's record with no changes counted: its transaction rolled back."""
    for counted in ("users_created", "users_updated", "users_deactivated", "users_reactivated",
                    "groups_created", "memberships_added", "memberships_removed"):  # fmt: skip
        setattr(run, counted, 0)
    return run


def _finish(run: DirectorySync, outcome: str, *, error: str = "") -> None:
    run.outcome, run.error, run.finished_at = outcome, error, timezone.now()
    run.save()
    metrics.DIRECTORY_SYNCS.labels(outcome).inc()


def _plan(snapshot: Snapshot) -> _Plan:
    plan = _Plan()
    known_groups = {
        marked.external_id: (marked.group_id, marked.group.name)
        for marked in DirectoryGroup.objects.filter(directory=LDAP).select_related("group")
    }
    for team in snapshot.teams.values():
        if not group_mapped(team.name):
            continue
        if team.id not in known_groups:
            plan.new_groups.append(team)
        elif group_renamed(known_groups[team.id][1], team.name, directory=LDAP):
            plan.renamed_groups[known_groups[team.id][0]] = team.name
    identities = {
        row["subject"]: row
        for row in ExternalIdentity.objects.filter(directory=LDAP).values(
            "subject",
            "user_id",
            "user__username",
            "user__email",
            "user__first_name",
            "user__last_name",
            "user__is_active",
        )
    }
    unknown = [p for p in snapshot.people.values() if p.id not in identities and p.username]
    taken = {
        row["username"]: row
        for row in User.objects.filter(username__in=[p.username for p in unknown]).values(
            "pk", "username"
        )
    }
    managed = set(
        ExternalIdentity.objects.filter(user_id__in=[row["pk"] for row in taken.values()])
        .exclude(directory=LDAP)
        .values_list("user_id", flat=True)
    )
    owners: dict[str, int | str] = {}  # Person id -> user id (or the Person id, for new users)
    for person in unknown:
        row = taken.get(person.username)
        if row is None:
            plan.new_users.append(person)
            owners[person.id] = person.id
        elif row["pk"] in managed:
            plan.linked_users.append((row["pk"], person))
            owners[person.id] = row["pk"]
            if person.disabled:
                plan.deactivate.add(row["pk"])
        else:
            plan.conflicts.append(person.username)
    seen = set()
    for person in snapshot.people.values():
        row = identities.get(person.id)
        if row is None:
            continue
        seen.add(person.id)
        owners[person.id] = row["user_id"]
        profile = {
            "username": person.username,
            "email": person.email,
            "first_name": person.first_name[:150],
            "last_name": person.last_name[:150],
        }
        changed = {k: v for k, v in profile.items() if v and row[f"user__{k}"] != v}
        if changed:
            plan.profile_updates.append((row["user_id"], changed))
        if person.disabled and row["user__is_active"]:
            plan.deactivate.add(row["user_id"])
        elif not person.disabled and not row["user__is_active"]:
            plan.reactivate.add(row["user_id"])
    # A rename onto a username another user holds waits (the directory may be mid-swap).
    renamed = {changed["username"] for _, changed in plan.profile_updates if "username" in changed}
    held = set(User.objects.filter(username__in=renamed).values_list("username", flat=True))
    for _, changed in plan.profile_updates:
        if changed.get("username") in held:
            del changed["username"]
    plan.profile_updates = [(pk, changed) for pk, changed in plan.profile_updates if changed]
    for subject, row in identities.items():
        if subject not in seen and row["user__is_active"]:
            plan.deactivate.add(row["user_id"])  # gone from the directory
    for person in snapshot.people.values():
        if person.id not in owners:
            continue
        for group_dn in snapshot.groups_of(person.dn):
            team = snapshot.teams[group_dn]
            if group_mapped(team.name):
                plan.memberships.add((owners[person.id], team.id))
    plan.current = {
        (user_id, group_id): pk
        for pk, user_id, group_id in Membership.objects.filter(
            group__directory__directory=LDAP
        ).values_list("pk", "user_id", "group_id")
    }
    # Memberships a new user or a new group cannot be among the current ones.
    kept = {
        (who, known_groups[key][0])
        for who, key in plan.memberships
        if isinstance(who, int) and key in known_groups
    }
    plan.removals = len(set(plan.current) - kept) + len(plan.deactivate)
    active = sum(1 for row in identities.values() if row["user__is_active"])
    plan.base = len(plan.current) + active
    return plan


def _groups_apply(plan: _Plan, run: DirectorySync) -> dict[str, int]:
    """Creates and renames groups; returns every mapped group's id by its directory id."""
    for group in Group.objects.filter(pk__in=plan.renamed_groups):
        group_rename(group=group, name=plan.renamed_groups[group.pk], directory=LDAP)
    events = []
    taken = set(
        Group.objects.filter(name__in=[t.name for t in plan.new_groups]).values_list(
            "name", flat=True
        )
    )
    for team in plan.new_groups:
        name = group_name_free(team.name, directory=LDAP) if team.name in taken else team.name
        group = Group.objects.create(name=name)
        DirectoryGroup.objects.create(group=group, directory=LDAP, external_id=team.id)
        events.append(
            audit_event(
                action=AuditEvent.Action.GROUP_CREATE,
                target=group,
                details={"directory": LDAP, "external_id": team.id, "name": team.name},
            )
        )
    AuditEvent.objects.bulk_create(events)
    run.groups_created = len(plan.new_groups)
    metrics.DIRECTORY_CHANGES.labels(LDAP, "group_created").inc(len(plan.new_groups))
    return dict(
        DirectoryGroup.objects.filter(directory=LDAP).values_list("external_id", "group_id")
    )


def _users_apply(plan: _Plan, run: DirectorySync) -> dict[int | str, int]:
    """Creates, links and updates users; returns user ids by what the plan calls them (user
    id, or the directory id of a user it creates)."""
    created = User.objects.bulk_create(
        [
            User(
                username=p.username,
                email=p.email,
                first_name=p.first_name[:150],
                last_name=p.last_name[:150],
                password=make_password(None),
                is_active=not p.disabled,
            )
            for p in plan.new_users
        ]
    )
    pairs = [(u.pk, p) for u, p in zip(created, plan.new_users, strict=True)]
    ExternalIdentity.objects.bulk_create(
        ExternalIdentity(user_id=pk, directory=LDAP, subject=person.id)
        for pk, person in pairs + plan.linked_users
    )
    AuditEvent.objects.bulk_create(
        audit_event(
            action=AuditEvent.Action.USER_CREATE,
            target=user,
            details={"directory": LDAP, "subject": person.id},
        )
        for user, person in zip(created, plan.new_users, strict=True)
    )
    by_fields: dict[tuple[str, ...], list[User]] = {}
    for pk, changed in plan.profile_updates:
        by_fields.setdefault(tuple(sorted(changed)), []).append(User(pk=pk, **changed))
    for fields, users in by_fields.items():
        User.objects.bulk_update(users, fields, batch_size=1000)
    run.users_created, run.users_updated = len(created), len(plan.profile_updates)
    metrics.DIRECTORY_CHANGES.labels(LDAP, "user_created").inc(len(created))
    return _UserIds({p.id: u.pk for u, p in zip(created, plan.new_users, strict=True)})


class _UserIds(dict):
    """User ids by plan key: a user id stands for itself."""

    def __missing__(self, key):
        return key


def _activity_apply(plan: _Plan, run: DirectorySync) -> None:
    for user in User.objects.filter(pk__in=plan.deactivate | plan.reactivate):
        user_active_set(user=user, active=user.pk in plan.reactivate, directory=LDAP)
    run.users_deactivated, run.users_reactivated = len(plan.deactivate), len(plan.reactivate)


def _memberships_apply(plan: _Plan, wanted: set, run: DirectorySync) -> None:
    gone = set(plan.current) - wanted
    new = wanted - set(plan.current)
    Membership.objects.filter(pk__in=[plan.current[pair] for pair in gone]).delete()
    Membership.objects.bulk_create(
        [Membership(user_id=u, group_id=g) for u, g in new], batch_size=5000
    )
    names = dict(Group.objects.filter(directory__directory=LDAP).values_list("pk", "name"))
    touched = {user_id for user_id, _ in gone | new}
    users = dict(User.objects.filter(pk__in=touched).values_list("pk", "username"))
    events = []
    for pairs, action in (
        (gone, AuditEvent.Action.MEMBERSHIP_REMOVE),
        (new, AuditEvent.Action.MEMBERSHIP_ADD),
    ):
        for user_id, group_id in sorted(pairs):
            details = {"group": names[group_id], "directory": LDAP}
            event = audit_event(action=action, details=details)
            event.target_type, event.target_id, event.target_repr = "user", user_id, users[user_id]
            events.append(event)
    AuditEvent.objects.bulk_create(events, batch_size=5000)
    run.memberships_added, run.memberships_removed = len(new), len(gone)
    metrics.DIRECTORY_CHANGES.labels(LDAP, "membership_added").inc(len(new))
    metrics.DIRECTORY_CHANGES.labels(LDAP, "membership_removed").inc(len(gone))
