"""SCIM provisioning's reads and writes: which users and groups SCIM sees (those it
provisioned), their representations, and the changes a provider pushes, made through
accounts.directory so that they take effect at once and are audited."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from accounts.directory import (
    IdentityRefused,
    directory_group_ensure,
    directory_user_ensure,
    directory_user_remove,
    directory_user_update,
    group_rename,
    user_active_set,
)
from accounts.models import AuditEvent, Directory, DirectoryGroup, ExternalIdentity, User
from accounts.scim.resources import (
    GROUP_SCHEMA,
    USER_SCHEMA,
    GroupFields,
    ScimError,
    UserFields,
    invalid,
)
from accounts.services import audit_record

SCIM = Directory.SCIM


def scim_users() -> QuerySet[User]:
    return User.objects.filter(identities__directory=SCIM).order_by("pk")


def scim_groups() -> QuerySet[Group]:
    return Group.objects.filter(directory__directory=SCIM).order_by("pk")


def user_resource(user: User, location: str) -> dict:
    identity = user.identities.filter(directory=SCIM).first()
    resource = {
        "schemas": [USER_SCHEMA],
        "id": str(user.pk),
        "userName": user.username,
        "name": {"givenName": user.first_name, "familyName": user.last_name},
        "displayName": user.get_full_name() or user.username,
        "active": user.is_active,
        "emails": [{"value": user.email, "primary": True, "type": "work"}] if user.email else [],
        "groups": [
            {"value": str(g.pk), "display": g.name}
            for g in user.groups.filter(directory__directory=SCIM)
        ],
        "meta": {
            "resourceType": "User",
            "created": user.date_joined.isoformat(),
            "location": location,
        },
    }
    if identity is not None and identity.subject:
        resource["externalId"] = identity.subject
    return resource


def group_resource(group: Group, location: str, *, members: bool = True) -> dict:
    resource = {
        "schemas": [GROUP_SCHEMA],
        "id": str(group.pk),
        "displayName": group.name,
        "meta": {"resourceType": "Group", "location": location},
    }
    if group.directory.external_id:
        resource["externalId"] = group.directory.external_id
    if members:
        resource["members"] = [
            {"value": str(pk), "display": username}
            for pk, username in group.user_set.order_by("pk").values_list("pk", "username")
        ]
    return resource


def scim_user_create(*, fields: UserFields) -> User:
    """A user pushed by the provider: created, or linked when another directory (the OpenID
    sign-in) knows them already. 409 when SCIM has them or a local account has the name.

    Locks: as accounts.directory.directory_user_ensure, then the user's row."""
    with transaction.atomic():
        if scim_users().filter(username=fields.username).exists() or (
            fields.external_id
            and ExternalIdentity.objects.filter(directory=SCIM, subject=fields.external_id).exists()
        ):
            raise ScimError(409, f"The user {fields.username!r} exists.", "uniqueness")
        user = _ensure(fields, subject=fields.external_id)
        user_active_set(user=user, active=fields.active, directory=SCIM)
        return user


def scim_user_replace(*, user: User, fields: UserFields) -> User:
    """Locks: the user's row (and their tokens' when they are deactivated)."""
    with transaction.atomic():
        clash = scim_users().filter(username=fields.username).exclude(pk=user.pk)
        if (
            clash.exists()
            or User.objects.filter(username=fields.username).exclude(pk=user.pk).exists()
        ):
            raise ScimError(409, f"Another user is named {fields.username!r}.", "uniqueness")
        user = User.objects.select_for_update().get(pk=user.pk)
        try:
            with transaction.atomic():
                ExternalIdentity.objects.filter(user=user, directory=SCIM).update(
                    subject=fields.external_id
                )
        except IntegrityError as exc:
            raise ScimError(
                409, f"externalId {fields.external_id!r} is another user's.", "uniqueness"
            ) from exc
        directory_user_update(
            user=user,
            directory=SCIM,
            username=fields.username,
            email=fields.email,
            first_name=fields.first_name,
            last_name=fields.last_name,
        )
        user_active_set(user=user, active=fields.active, directory=SCIM)
        return user


def _ensure(fields: UserFields, *, subject: str) -> User:
    try:
        return directory_user_ensure(
            directory=SCIM,
            subject=subject,
            username=fields.username,
            email=fields.email,
            first_name=fields.first_name,
            last_name=fields.last_name,
        )
    except IdentityRefused as exc:
        raise ScimError(409, str(exc), "uniqueness") from exc
    except IntegrityError as exc:
        raise ScimError(409, f"externalId {subject!r} is another user's.", "uniqueness") from exc


def scim_user_delete(*, user: User) -> None:
    """The provider deleted the user: deactivated (sessions ended, tokens revoked), out of its
    SCIM groups, no longer SCIM's (a GET then answers 404)."""
    directory_user_remove(user=user, directory=SCIM)


def scim_group_create(*, fields: GroupFields) -> Group:
    """Locks: as accounts.directory.directory_group_ensure."""
    with transaction.atomic():
        if scim_groups().filter(name=fields.display_name).exists():
            raise ScimError(409, f"The group {fields.display_name!r} exists.", "uniqueness")
        if (
            fields.external_id
            and DirectoryGroup.objects.filter(
                directory=SCIM, external_id=fields.external_id
            ).exists()
        ):
            raise ScimError(409, f"externalId {fields.external_id!r} exists.", "uniqueness")
        try:
            group = directory_group_ensure(
                directory=SCIM, external_id=fields.external_id, name=fields.display_name
            )
        except IdentityRefused as exc:
            raise invalid(str(exc)) from exc
        _members_set(group, fields.members or ())
        return group


def scim_group_replace(*, group: Group, fields: GroupFields) -> Group:
    """Name, external id and (when given) members, as the provider says.

    Locks: the group's row, then its membership rows that change."""
    with transaction.atomic():
        group = Group.objects.select_for_update().get(pk=group.pk)
        if fields.display_name != group.name:
            if scim_groups().filter(name=fields.display_name).exclude(pk=group.pk).exists():
                raise ScimError(409, f"The group {fields.display_name!r} exists.", "uniqueness")
            group_rename(group=group, name=fields.display_name, directory=SCIM)
        try:
            DirectoryGroup.objects.filter(group=group).update(external_id=fields.external_id)
        except IntegrityError as exc:
            raise ScimError(
                409, f"externalId {fields.external_id!r} exists.", "uniqueness"
            ) from exc
        if fields.members is not None:
            _members_set(group, fields.members)
        return group


def scim_group_delete(*, group: Group) -> None:
    """The provider deleted the group: its members leave it, and it goes, with every grant
    to it (documents.signals updates the documents' read lists).

    Locks: the group's row and what cascades from it."""
    with transaction.atomic():
        audit_record(
            action=AuditEvent.Action.GROUP_DELETE,
            target=group,
            details={"directory": SCIM, "name": group.name},
        )
        group.user_set.clear()
        group.delete()


def _members_set(group: Group, ids: tuple[str, ...]) -> None:
    wanted = set()
    for value in ids:
        if not value.isdigit():
            raise invalid(f"No user has the id {value!r}.")
        wanted.add(int(value))
    found = set(scim_users().filter(pk__in=wanted).values_list("pk", flat=True))
    if missing := wanted - found:
        raise invalid(f"No user has the id(s) {', '.join(map(str, sorted(missing)))}.")
    held = set(group.user_set.values_list("pk", flat=True))
    if gone := held - wanted:
        group.user_set.remove(*gone)  # audited, one event per user (accounts.signals)
    if new := wanted - held:
        group.user_set.add(*new)
