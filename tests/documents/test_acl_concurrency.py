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
    a_granted, b_backend = threading.Event(), []
    errors, b_waited = [], []

    def grant_a():
        try:
            with transaction.atomic():
                assign_perm("view_document", group_a, document)
                a_granted.set()
                # Hold the transaction open until B is seen blocked on A's row lock: the race
                # this test is about has then certainly happened, however busy the machine.
                b_waited.append(_blocked_on_a_lock(b_backend))
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
            a_granted.set()
        finally:
            connection.close()

    def grant_b():
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                b_backend.append(cursor.fetchone()[0])
            a_granted.wait(timeout=30)
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
        thread.join(timeout=60)

    assert errors == []
    assert b_waited == [True], "B never waited for A's lock: the race did not happen"
    acl = Document.objects.get(pk=document.pk).read_principals
    assert {group_principal(group_a.pk), group_principal(group_b.pk)} <= set(acl)


def _blocked_on_a_lock(backend: list[int], timeout: float = 30) -> bool:
    """Whether the backend (its pid, once known) comes to wait on a lock within `timeout`."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            if backend:
                cursor.execute(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [backend[0]]
                )
                row = cursor.fetchone()
                if row and row[0] == "Lock":
                    return True
            time.sleep(0.01)
    return False
