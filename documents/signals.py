"""Keep read ACLs in step with every change that affects them, and record every change of a
collection, a document or a grant in the audit trail, in the same transaction.

Admin pages (including guardian's object-permission pages, which go through assign_perm and
remove_perm), the API's services and the ORM all send these signals, so no path of change
escapes them. Group membership needs no ACL hook, because a user's groups are resolved at
query time (accounts.selectors.user_principals); accounts.signals audits it.
"""

from django.db.models import QuerySet
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from accounts.models import AuditEvent
from accounts.services import audit_describe, audit_diff, audit_record, audit_snapshot
from documents.models import (
    Collection,
    CollectionGroupObjectPermission,
    CollectionUserObjectPermission,
    Document,
    DocumentGroupObjectPermission,
    DocumentUserObjectPermission,
    DocumentVersion,
)
from documents.services.acl import read_acl_refresh

_ACL_FIELDS = {"owner", "owner_id", "open_to_staff", "readers_per_document"}


@receiver(post_save, sender=Collection)
@receiver(post_save, sender=Document)
def acl_holder_saved(sender, instance, created, update_fields=None, **kwargs):
    # A new row got its ACL in ReadACL.save; grants can only follow it.
    if not created and (update_fields is None or _ACL_FIELDS & set(update_fields)):
        read_acl_refresh(model=sender, ids=[instance.pk])


@receiver([post_save, post_delete], sender=CollectionUserObjectPermission)
@receiver([post_save, post_delete], sender=CollectionGroupObjectPermission)
def collection_grant_changed(sender, instance, **kwargs):
    read_acl_refresh(model=Collection, ids=[instance.content_object_id])


@receiver([post_save, post_delete], sender=DocumentUserObjectPermission)
@receiver([post_save, post_delete], sender=DocumentGroupObjectPermission)
def document_grant_changed(sender, instance, **kwargs):
    read_acl_refresh(model=Document, ids=[instance.content_object_id])


# What a person may change; ingestion's own bookkeeping (status, progress, versions' ids) is
# not audited as a change.
_AUDITED = {
    Collection: (
        (
            "name",
            "description",
            "owner",
            "open_to_staff",
            "chunking",
            "chunk_tokens",
            "chunk_overlap",
            "readers_per_document",
        ),
        (
            AuditEvent.Action.COLLECTION_CREATE,
            AuditEvent.Action.COLLECTION_UPDATE,
            AuditEvent.Action.COLLECTION_DELETE,
        ),
    ),
    Document: (
        ("collection", "title", "source", "external_id", "owner", "open_to_staff", "metadata"),
        (
            AuditEvent.Action.DOCUMENT_CREATE,
            AuditEvent.Action.DOCUMENT_UPDATE,
            AuditEvent.Action.DOCUMENT_DELETE,
        ),
    ),
}


@receiver(pre_save, sender=Collection)
@receiver(pre_save, sender=Document)
def audited_holder_saving(sender, instance, update_fields=None, **kwargs):
    fields, _ = _AUDITED[sender]
    touched = update_fields is None or set(fields) & set(update_fields)
    instance._audit_before = audit_snapshot(instance, fields) if instance.pk and touched else None


@receiver(post_save, sender=Collection)
@receiver(post_save, sender=Document)
def audited_holder_saved(sender, instance, created, **kwargs):
    fields, (create, update, _) = _AUDITED[sender]
    if created:
        audit_record(action=create, target=instance, details=audit_describe(instance, fields))
    elif instance._audit_before is not None and (
        changes := audit_diff(instance._audit_before, instance, fields)
    ):
        audit_record(action=update, target=instance, details=changes)


@receiver(post_delete, sender=Collection)
@receiver(post_delete, sender=Document)
def audited_holder_deleted(sender, instance, **kwargs):
    fields, (_, _, delete) = _AUDITED[sender]
    audit_record(action=delete, target=instance, details=audit_describe(instance, fields))


@receiver(post_save, sender=DocumentVersion)
def version_added(sender, instance, created, **kwargs):
    if created and instance.number > 1:
        audit_record(
            action=AuditEvent.Action.DOCUMENT_UPDATE,
            target=instance.document,
            details={
                "version": [instance.number - 1, instance.number],
                "file": instance.file.name,
                "sha256": instance.sha256,
            },
        )


@receiver([post_save, post_delete], sender=CollectionUserObjectPermission)
@receiver([post_save, post_delete], sender=CollectionGroupObjectPermission)
@receiver([post_save, post_delete], sender=DocumentUserObjectPermission)
@receiver([post_save, post_delete], sender=DocumentGroupObjectPermission)
def grant_audited(sender, instance, signal, origin=None, **kwargs):
    deleted_with = origin.model if isinstance(origin, QuerySet) else type(origin)
    if signal is post_delete and deleted_with in (Collection, Document):
        return  # the grants of a deleted object go with it; its deletion is recorded
    user = getattr(instance, "user", None)
    audit_record(
        action=(
            AuditEvent.Action.PERMISSION_GRANT
            if signal is post_save
            else AuditEvent.Action.PERMISSION_REVOKE
        ),
        target=instance.content_object,
        details={
            "user" if user else "group": str(user or instance.group),
            "permission": instance.permission.codename,
        },
    )
