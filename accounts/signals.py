"""Audit changes of who may do what that are made on users and groups: group membership,
model-level permissions, and the staff, superuser and active flags (a superuser reads every
document); and sign-ins, accepted or refused. Object grants are audited where the objects live
(documents.signals)."""

from django.contrib.auth.models import Group, Permission
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models.signals import m2m_changed, post_save, pre_save
from django.dispatch import receiver

from accounts.models import AuditEvent, User
from accounts.services import audit_diff, audit_record, audit_snapshot
from accounts.signin import signin_method, signin_record

_USER_ACCESS = ("is_active", "is_staff", "is_superuser")


@receiver(m2m_changed, sender=User.groups.through)
def membership_changed(sender, instance, action, reverse, pk_set, **kwargs):
    if action == "pre_clear":
        # After the clear, the removed rows are gone: name them now.
        instance._audit_cleared = (
            set(instance.user_set.values_list("pk", flat=True))
            if reverse
            else set(instance.groups.values_list("pk", flat=True))
        )
        return
    if action == "post_clear":
        action, pk_set = "post_remove", instance._audit_cleared
    if action not in ("post_add", "post_remove") or not pk_set:
        return
    kind = (
        AuditEvent.Action.MEMBERSHIP_ADD
        if action == "post_add"
        else AuditEvent.Action.MEMBERSHIP_REMOVE
    )
    pairs = (
        [(user, instance) for user in User.objects.filter(pk__in=pk_set)]
        if reverse
        else [
            (instance, group)
            for group in Group.objects.filter(pk__in=pk_set).select_related("directory")
        ]
    )
    for user, group in pairs:
        details = {"group": group.name}
        if hasattr(group, "directory"):
            details["directory"] = group.directory.directory
        audit_record(action=kind, target=user, details=details)


@receiver(m2m_changed, sender=User.user_permissions.through)
@receiver(m2m_changed, sender=Group.permissions.through)
def model_permissions_changed(sender, instance, action, reverse, pk_set, **kwargs):
    """Permissions granted on a whole model (the admin's user and group pages), as against one
    object."""
    if reverse or action not in ("post_add", "post_remove") or not pk_set:
        return
    kind = (
        AuditEvent.Action.PERMISSION_GRANT
        if action == "post_add"
        else AuditEvent.Action.PERMISSION_REVOKE
    )
    for permission in Permission.objects.filter(pk__in=pk_set).select_related("content_type"):
        audit_record(
            action=kind,
            target=instance,
            details={"permission": f"{permission.content_type.app_label}.{permission.codename}"},
        )


@receiver(pre_save, sender=User)
def user_saving(sender, instance, update_fields=None, **kwargs):
    touched = update_fields is None or set(_USER_ACCESS) & set(update_fields)
    instance._audit_before = (
        audit_snapshot(instance, _USER_ACCESS) if instance.pk and touched else None
    )


@receiver(post_save, sender=User)
def user_saved(sender, instance, created, **kwargs):
    if created or instance._audit_before is None:
        return
    if changes := audit_diff(instance._audit_before, instance, _USER_ACCESS):
        audit_record(action=AuditEvent.Action.USER_UPDATE, target=instance, details=changes)


@receiver(user_logged_in)
def signed_in(sender, request, user, **kwargs):
    signin_record(method=signin_method(getattr(user, "backend", "")), user=user)


@receiver(user_login_failed)
def signin_failed(sender, credentials, request=None, **kwargs):
    """A refused password sign-in (local or directory). The directory's backend leaves its own
    reason on the request (accounts.ldap)."""
    refusal = getattr(request, "signin_refusal", None)
    signin_record(
        method=refusal.method if refusal else "password",
        username=credentials.get("username", ""),
        reason=refusal.reason if refusal else "wrong username or password",
    )
