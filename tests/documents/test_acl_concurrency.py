"""Concurrent grants on one document: neither overwrites the other's ACL entry."""

import threading
import time

import pytest
from django.db import connection, transaction
from guardian.shortcuts import assign_perm

from accounts.selectors import group_principal
from documents.models import Document
from tests.accounts.factories import GroupFactory
from tests.documents.factories import DocumentFactory


@pytest.mark.django_db(transaction=True)
def test_two_transactions_granting_at_once_both_end_up_in_the_acl():
    """GIVEN a transaction that granted group A and has not committed yet
    WHEN another transaction grants group B on the same document meanwhile
    THEN after both commit the document's ACL lists A and B (the second refresh waited for the
    first's row lock, then read both grants, instead of computing its ACL from a stale read)."""
    document = DocumentFactory()
    group_a, group_b = GroupFactory(), GroupFactory()
    a_granted = threading.Event()
    errors = []

    def grant_a():
        try:
            with transaction.atomic():
                assign_perm("view_document", group_a, document)
                a_granted.set()
                time.sleep(0.5)  # hold the transaction open while B runs
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
            a_granted.set()
        finally:
            connection.close()

    def grant_b():
        try:
            a_granted.wait(timeout=10)
            with transaction.atomic():
                assign_perm("view_document", group_b, document)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=grant_a), threading.Thread(target=grant_b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    acl = Document.objects.get(pk=document.pk).read_principals
    assert {group_principal(group_a.pk), group_principal(group_b.pk)} <= set(acl)
