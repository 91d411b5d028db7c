"""Users and groups a directory owns: the services through which the LDAP sign-in, the OpenID
sign-in and SCIM provisioning change them, so that the same rules hold whichever way a change
arrives (docs/identity.md):

- a directory's group is marked (DirectoryGroup) and only groups whose names match
  PRODRAG_DIRECTORY_GROUPS become prodrag groups;
- a directory user is linked by a stable id (ExternalIdentity); a local account is never taken
  over by a directory user of the same name;
- a directory sets only its own groups' memberships, never those given by hand;
- a user deactivated by a directory loses their sessions and API tokens at once.

The LDAP sync (accounts.ldap) applies whole-directory changes in bulk under the same rules.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from accounts.models import ApiToken, AuditEvent, DirectoryGroup, ExternalIdentity, User
from accounts.services import audit_record, token_revoke
from core import metrics


class IdentityRefused(Exception):
    """A directory's change or sign-in that is refused; the message says why, in words an
    identity provider's administrator can act on."""


def group_mapped(name: str) -> bool:
    """Does a directory group of this name become a prodrag group (PRODRAG_DIRECTORY_GROUPS)?"""
    return bool(name) and settings.DIRECTORY_GROUPS.fullmatch(name) is not None


def group_name_free(name: str, *, directory: str, group: Group | None = None) -> str:
    """`name`, or, when another group holds it, `name (directory)`, numbered if need be: a
    directory's group never merges with a group given by hand or by another directory."""
    candidates = [name, f"{name} ({directory})"]
    candidates += [f"{name} ({directory} {n})" for n in range(2, 100)]
    taken = Group.objects.filter(name__in=candidates)
    if group is not None:
        taken = taken.exclude(pk=group.pk)
    names = set(taken.values_list("name", flat=True))
    for candidate in candidates:
        if candidate not in names and len(candidate) <= 150:
            return candidate
    raise IdentityRefused(f"No free group name for the directory group {name!r}.")


def group_renamed(current: str, name: str, *, directory: str) -> bool:
    """Has the directory renamed the group now called `current` (its name, or the name made
    free for it by group_name_free)?"""
    return current != name and not current.startswith(f"{name} ({directory}")


def directory_group_ensure(*, directory: str, external_id: str, name: str) -> Group:
    """The prodrag group of this directory group, created (and marked) if need be, renamed when
    the directory renamed it. Raises IdentityRefused for a name PRODRAG_DIRECTORY_GROUPS does
    not map.

    Locks: the marked group's row when it is renamed; the unique (directory, external_id)
    constraint settles two callers creating one group."""
    if not group_mapped(name):
        raise IdentityRefused(
            f"The group {name!r} is not a prodrag group: its name does not match "
            f"PRODRAG_DIRECTORY_GROUPS ({settings.DIRECTORY_GROUPS.pattern})."
        )
    with transaction.atomic():
        marked = (
            DirectoryGroup.objects.select_for_update()
            .select_related("group")
            .filter(directory=directory, external_id=external_id)
            .first()
            if external_id
            else None
        )
        if marked is not None:
            group = marked.group
            if group_renamed(group.name, name, directory=directory):
                group_rename(group=group, name=name, directory=directory)
            return group
        group = Group.objects.create(name=group_name_free(name, directory=directory))
        DirectoryGroup.objects.create(group=group, directory=directory, external_id=external_id)
        audit_record(
            action=AuditEvent.Action.GROUP_CREATE,
            target=group,
            details={"directory": directory, "external_id": external_id, "name": name},
        )
        metrics.DIRECTORY_CHANGES.labels(directory, "group_created").inc()
        return group


def group_rename(*, group: Group, name: str, directory: str) -> None:
    """Locks: the group's row (the caller's transaction)."""
    before = group.name
    group.name = group_name_free(name, directory=directory, group=group)
    group.save(update_fields=["name"])
    audit_record(
        action=AuditEvent.Action.GROUP_UPDATE,
        target=group,
        details={"name": [before, group.name], "directory": directory},
    )


def directory_user_ensure(
    *,
    directory: str,
    subject: str,
    username: str,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
) -> User:
    """The user this directory knows by `subject`: found by that id, else linked by username
    to a user another directory manages, else created (with no usable password: they sign in
    through the directory). Name and e-mail follow the directory. Raises IdentityRefused when
    the username belongs to a local account.

    Locks: the user's row; the unique (directory, subject) constraint settles two callers
    creating one user."""
    if not username:
        raise IdentityRefused("The directory gave no username.")
    profile = {"email": email, "first_name": first_name[:150], "last_name": last_name[:150]}
    with transaction.atomic():
        identity = (
            ExternalIdentity.objects.select_related("user")
            .filter(directory=directory, subject=subject)
            .first()
            if subject
            else None
        )
        if identity is not None:
            user = User.objects.select_for_update().get(pk=identity.user_id)
        else:
            user = User.objects.select_for_update().filter(username=username).first()
            if user is not None and not user.identities.exists():
                raise IdentityRefused(
                    f"A local account named {username!r} exists; a directory does not take it "
                    "over. Rename or delete the local account (docs/identity.md)."
                )
            if user is None:
                user = User(username=username, **profile)
                user.set_unusable_password()
                user.save()
                audit_record(
                    action=AuditEvent.Action.USER_CREATE,
                    target=user,
                    details={"directory": directory, "subject": subject},
                )
                metrics.DIRECTORY_CHANGES.labels(directory, "user_created").inc()
            ExternalIdentity.objects.update_or_create(
                user=user, directory=directory, defaults={"subject": subject}
            )
        directory_user_update(user=user, directory=directory, username=username, **profile)
        return user


def directory_user_update(
    *, user: User, directory: str, username: str, email: str, first_name: str, last_name: str
) -> None:
    """The user's name and e-mail as the directory now gives them (a username another user
    holds is left as it was), audited with before and after.

    Locks: the user's row, in the caller's transaction."""
    profile = {"email": email, "first_name": first_name[:150], "last_name": last_name[:150]}
    changed = {k: v for k, v in profile.items() if getattr(user, k) != v}
    if user.username != username and not User.objects.filter(username=username).exists():
        changed["username"] = username
    if changed:
        before = {field: getattr(user, field) for field in changed}
        for field, value in changed.items():
            setattr(user, field, value)
        user.save(update_fields=list(changed))
        audit_record(
            action=AuditEvent.Action.USER_UPDATE,
            target=user,
            details={f: [before[f], v] for f, v in changed.items()} | {"directory": directory},
        )


def directory_memberships_set(*, user: User, directory: str, groups: Iterable[Group]) -> None:
    """Make `groups` the user's groups of this directory: the others of this directory are
    left, groups given by hand or by another directory stay. Each change is audited
    (accounts.signals) and moves the permission mark (its trigger).

    Locks: the user's membership rows that change."""
    wanted = {group.pk for group in groups}
    with transaction.atomic():
        held = set(user.groups.filter(directory__directory=directory).values_list("pk", flat=True))
        if gone := held - wanted:
            user.groups.remove(*gone)
            metrics.DIRECTORY_CHANGES.labels(directory, "membership_removed").inc(len(gone))
        if new := wanted - held:
            user.groups.add(*new)
            metrics.DIRECTORY_CHANGES.labels(directory, "membership_added").inc(len(new))


def user_active_set(*, user: User, active: bool, directory: str) -> bool:
    """Activate or deactivate a user as their directory says. Deactivating ends every session
    of theirs (the session hash changes) and revokes their API tokens, all in one transaction
    with the flag (audited by accounts.signals; the permission mark moves). Returns whether
    anything changed.

    Locks: the user's row, then their tokens' rows."""
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        if locked.is_active == active:
            return False
        locked.is_active = active
        fields = ["is_active"]
        if not active:
            locked.session_generation += 1
            fields.append("session_generation")
            for token in ApiToken.objects.filter(user=locked, revoked_at=None):
                token_revoke(token=token)
        locked.save(update_fields=fields)
        user.is_active, user.session_generation = locked.is_active, locked.session_generation
        change = "user_activated" if active else "user_deactivated"
        metrics.DIRECTORY_CHANGES.labels(directory, change).inc()
        return True


def directory_user_remove(*, user: User, directory: str) -> None:
    """A directory deleted the user: they are deactivated (kept, with what the audit trail
    says of them), leave that directory's groups, and are no longer linked to it.

    Locks: as user_active_set and directory_memberships_set."""
    with transaction.atomic():
        user_active_set(user=user, active=False, directory=directory)
        directory_memberships_set(user=user, directory=directory, groups=())
        ExternalIdentity.objects.filter(user=user, directory=directory).delete()
        audit_record(
            action=AuditEvent.Action.USER_DEPROVISION,
            target=user,
            details={"directory": directory, "at": timezone.now()},
        )
