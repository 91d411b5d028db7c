"""Keep read ACLs in step with every change that affects them, in the same transaction.

Admin pages (including guardian's object-permission pages, which go through assign_perm and
remove_perm) and the ORM send these signals; group membership needs no hook, because a
user's groups are resolved at query time (accounts.selectors.user_principals).
"""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from documents.models import (
    Collection,
    CollectionGroupObjectPermission,
    CollectionUserObjectPermission,
    Document,
    DocumentGroupObjectPermission,
    DocumentUserObjectPermission,
)
from documents.services import read_acl_refresh

_ACL_FIELDS = {"owner", "owner_id", "open_to_staff"}


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
