"""Read replicas against a real streaming standby of the test server (pg_basebackup -R, started
on its own socket), with replay delayed where a test needs a replica that lags."""

import time

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import connection, connections
from django.urls import reverse
from django.utils.timezone import now
from guardian.shortcuts import assign_perm, remove_perm
from psycopg.conninfo import conninfo_to_dict

from accounts import replicas
from accounts.models import PermissionMark, User
from core import metrics
from documents.services.uploads import document_delete
from prodrag.embedded_db import (
    embedded_server_stop,
    embedded_standby_pgdata,
    embedded_standby_remove,
    embedded_standby_uri,
)
from retrieval.selectors import passages_search
from retrieval.types import FULLTEXT
from tests.accounts.factories import GroupFactory, UserFactory
from tests.documents.factories import CollectionFactory
from tests.handbook import ingest

REPLICA = "replica1"
SECRET = "# Merger plan\n\nThe zanzibarco merger closes in March."


def standby_pgdata():
    return embedded_standby_pgdata(django_settings.EMBEDDED_DATABASE.pgdata, 1)


pytestmark = pytest.mark.django_db(transaction=True, databases=["default", REPLICA])


@pytest.fixture(scope="module")
def standby_uri(django_db_setup, django_db_blocker):
    """A streaming standby of the test server, made from it after the test database exists,
    registered as database REPLICA (a test mirror of the primary: never flushed)."""
    if django_settings.EMBEDDED_DATABASE is None:
        pytest.skip("the standby is made from the embedded server (DATABASE_URL is set)")
    primary = django_settings.EMBEDDED_DATABASE.pgdata
    pgdata = standby_pgdata()
    embedded_standby_remove(pgdata=pgdata, primary=primary)
    with django_db_blocker.unblock():
        uri = embedded_standby_uri(
            pgdata=pgdata, primary=primary, dbname=connection.settings_dict["NAME"]
        )
    params = conninfo_to_dict(uri)
    default = connections.settings["default"]
    connections.settings[REPLICA] = {
        key: value for key, value in default.items() if key != "EMBEDDED_SERVER"
    } | {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": params["host"],
        "USER": "postgres",
        "TEST": {"MIRROR": "default"},
    }
    yield uri
    connections[REPLICA].close()
    del connections.settings[REPLICA]
    delattr(connections._connections, REPLICA)
    embedded_standby_remove(pgdata=pgdata, primary=primary)


def standby_query(uri: str, sql: str, params=()):
    with psycopg.connect(uri, autocommit=True) as session:
        return session.execute(sql, params).fetchone()


def replay_delay(uri: str, delay: str) -> None:
    with psycopg.connect(uri, autocommit=True) as session:
        session.execute(f"ALTER SYSTEM SET recovery_min_apply_delay = '{delay}'")
        session.execute("SELECT pg_reload_conf()")


def caught_up(uri: str) -> None:
    """Wait until the standby has replayed everything the primary has written so far."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()")
        (target,) = cursor.fetchone()
    for _ in range(200):
        if standby_query(uri, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target])[0]:
            return
        time.sleep(0.05)
    raise AssertionError("the standby did not catch up within 10 s")


@pytest.fixture
def replica(standby_uri, settings):
    """The standby as the one replica, caught up, with no lag limit to speak of (the tests
    that want one set it)."""
    settings.DATABASE_REPLICAS = [REPLICA]
    settings.REPLICA_MAX_LAG_SECONDS = 3600
    replicas._down_until.clear()
    caught_up(standby_uri)
    yield standby_uri
    replay_delay(standby_uri, "0")


def reads(database: str) -> float:
    return metrics.REPLICA_READS.labels(database=database)._value.get()


def skips(reason: str) -> float:
    return metrics.REPLICA_SKIPS.labels(replica=REPLICA, reason=reason)._value.get()


def searched_on(user, query: str = "zanzibarco merger") -> tuple[set[str], str | None]:
    """The titles `user` finds, and the database the statement ran on (None: it did not run,
    because the user may read nothing)."""
    ran: set[str] = set()

    def watch(alias):
        def wrapper(execute, sql, params, many, context):
            if "documents_chunk" in sql:
                ran.add(alias)
            return execute(sql, params, many, context)

        return wrapper

    with (
        connections["default"].execute_wrapper(watch("default")),
        connections[REPLICA].execute_wrapper(watch(REPLICA)),
    ):
        result = passages_search(user=user, query=query, mode=FULLTEXT)
    assert len(ran) <= 1
    return {p.title for p in result.passages}, next(iter(ran), None)


@pytest.fixture
def merger(replica):
    """A document in a collection that group "deal" may read; "reader" is in the group and
    "bystander" may read another collection."""
    owner = UserFactory(username="owner")
    deal = GroupFactory(name="deal")
    reader = UserFactory(username="reader")
    reader.groups.add(deal)
    collection = CollectionFactory(name="Deals", owner=owner)
    assign_perm("view_document", deal, collection)
    document = ingest(collection, "merger.md", SECRET)
    bystander = UserFactory(username="bystander")
    other = CollectionFactory(name="Canteen", owner=owner)
    assign_perm("view_document", bystander, other)
    ingest(other, "menu.md", "# Menu\n\nThe zanzibarco soup is back on Fridays.")
    caught_up(replica)
    return {
        "standby": replica,
        "reader": reader,
        "deal": deal,
        "document": document,
        "bystander": bystander,
    }


def test_a_search_reads_from_a_caught_up_replica(merger):
    before = reads("replica")
    titles, database = searched_on(merger["reader"])
    assert titles == {"merger.md"}
    assert database == REPLICA
    assert reads("replica") == before + 1


REVOCATIONS = {
    "grant revoked": lambda m: remove_perm("view_document", m["deal"], m["document"].collection),
    "group left": lambda m: m["reader"].groups.remove(m["deal"]),
    "user deactivated": lambda m: User.objects.filter(pk=m["reader"].pk).update(is_active=False),
    "document deleted": lambda m: document_delete(document=m["document"]),
}


@pytest.mark.parametrize("change", REVOCATIONS)
def test_a_revoked_reader_never_gets_the_document_from_a_lagging_replica(merger, change):
    """GIVEN a reader of the merger plan and a standby whose replay is held back an hour
    WHEN their access ends on the primary (four ways)
    THEN the standby still shows the old state, but the reader's very next search (and every
    other user's) runs on the primary and does not find the plan."""
    replay_delay(merger["standby"], "1h")
    REVOCATIONS[change](merger)
    reader = User.objects.get(pk=merger["reader"].pk)
    assert standby_query(
        merger["standby"],
        "SELECT count(*) FROM documents_chunk c JOIN documents_document d ON d.id = c.document_id"
        " WHERE d.title = 'merger.md'",
    ) == (1,), "the standby should still hold the plan: replay is delayed"
    behind = skips("behind")
    titles, database = searched_on(reader)
    assert "merger.md" not in titles
    # A deactivated user reads nothing: no statement runs at all.
    assert database == (None if change == "user deactivated" else "default")
    titles, database = searched_on(merger["bystander"])
    assert (titles, database) == ({"menu.md"}, "default")
    assert skips("behind") == behind + 2


def test_a_users_reads_after_their_own_write_come_from_the_primary(merger, client):
    """GIVEN a standby whose replay is held back WHEN the reader asks a question (a write)
    THEN their conversation's page and the API's list of their conversations show it (the
    standby has no such conversation), while the bystander, who wrote nothing, still reads
    from the standby."""
    replay_delay(merger["standby"], "1h")
    client.force_login(merger["reader"])
    response = client.post(reverse("chat:ask"), {"question": "When does the merger close?"})
    assert response.status_code == 302
    primary_reads = reads("primary")

    page = client.get(response["Location"])
    listed = client.get("/api/v1/conversations/").json()

    assert page.status_code == 200
    assert "When does the merger close?" in page.content.decode()
    assert [c["title"] for c in listed["results"]] == ["When does the merger close?"]
    assert reads("primary") == primary_reads + 2
    assert standby_query(merger["standby"], "SELECT count(*) FROM chat_conversation") == (0,)
    _, database = searched_on(merger["bystander"])
    assert database == REPLICA


def test_a_replica_lagging_beyond_the_limit_is_skipped(merger, settings, caplog):
    replay_delay(merger["standby"], "1h")
    UserFactory(username="newcomer")  # a write the standby will not replay for an hour
    time.sleep(1.2)
    settings.REPLICA_MAX_LAG_SECONDS = 1.0
    lagging = skips("lagging")

    titles, database = searched_on(merger["bystander"])

    assert (titles, database) == ({"menu.md"}, "default")
    assert skips("lagging") == lagging + 1
    assert "replica replica1 skipped (lagging)" in caplog.text


def test_a_replica_that_is_down_is_skipped_and_left_alone_for_a_while(merger, caplog):
    embedded_server_stop(pgdata=standby_pgdata())
    connections[REPLICA].close()
    try:
        down = skips("down")
        titles, database = searched_on(merger["reader"])
        assert (titles, database) == ({"merger.md"}, "default")
        assert skips("down") == down + 1
        assert "replica replica1 skipped (down)" in caplog.text

        searched_on(merger["reader"])
        assert skips("down") == down + 1, "tried again within the pause"
    finally:
        embedded_standby_uri(
            pgdata=standby_pgdata(),
            primary=django_settings.EMBEDDED_DATABASE.pgdata,
            dbname=connection.settings_dict["NAME"],
        )


def permission_mark() -> int:
    return PermissionMark.objects.filter(pk=1).values_list("position", flat=True).first() or 0


# Its own database marker: it needs no replica (the module's marker names the standby's alias,
# which only the standby fixture registers).
@pytest.mark.django_db(transaction=True)
def test_the_permission_mark_moves_with_every_change_that_narrows_reading():
    """GIVEN a reader who reads a document every way there is (a group's grant on its
    collection, a grant of their own on it, managing its collection, owning it, the collection
    open to staff) WHEN each of those ends, each in its own transaction as in production THEN
    the permission mark moves every time, so that no replica that missed it is read from; a
    change that narrows nothing leaves it. (A widening change may move it too: reading from
    the primary a little more often costs nothing that matters.)"""
    owner = UserFactory(username="owner")
    reader = UserFactory(username="reader")
    group = GroupFactory(name="deal")
    collection = CollectionFactory(name="Deals", owner=owner)
    other = CollectionFactory(name="Other", owner=owner)
    document = ingest(collection, "merger.md", SECRET)
    Document = document.__class__
    Collection = collection.__class__

    def widened() -> None:
        """Every way in, each its own transaction: the set-up of what then narrows."""
        reader.groups.add(group)
        assign_perm("view_document", group, collection)
        assign_perm("view_document", reader, document)
        assign_perm("manage_collection", reader, collection)
        collection.open_to_staff = True
        collection.save(update_fields=["open_to_staff"])

    widened()
    unrelated = {
        "title changed": lambda: Document.objects.filter(pk=document.pk).update(title="Plan"),
        "status changed": lambda: Document.objects.filter(pk=document.pk).update(status="failed"),
        "user signed in": lambda: User.objects.filter(pk=reader.pk).update(last_login=now()),
        "user made staff": lambda: User.objects.filter(pk=reader.pk).update(is_staff=True),
        "collection renamed": lambda: Collection.objects.filter(pk=collection.pk).update(
            name="Deals 2"
        ),
    }
    for name, change in unrelated.items():
        before = permission_mark()
        change()
        assert permission_mark() == before, name

    def owner_changed():
        moved = Document.objects.get(pk=document.pk)
        moved.owner = owner
        moved.save(update_fields=["owner"])

    def made_owner():
        taken = Document.objects.get(pk=document.pk)
        taken.owner = reader
        taken.save(update_fields=["owner"])

    def open_off():
        closed = Collection.objects.get(pk=collection.pk)
        closed.open_to_staff = False
        closed.save(update_fields=["open_to_staff"])

    narrowing = {
        "collection no longer open to staff": open_off,
        "group left": lambda: reader.groups.remove(group),
        "collection grant revoked": lambda: remove_perm("view_document", group, collection),
        "document grant revoked": lambda: remove_perm("view_document", reader, document),
        "manage grant revoked": lambda: remove_perm("manage_collection", reader, collection),
        "document's owner changed": (made_owner, owner_changed),
        "superuser no more": (
            lambda: User.objects.filter(pk=reader.pk).update(is_superuser=True),
            lambda: User.objects.filter(pk=reader.pk).update(is_superuser=False),
        ),
        "user deactivated": lambda: User.objects.filter(pk=reader.pk).update(is_active=False),
        "document moved": lambda: Document.objects.filter(pk=document.pk).update(collection=other),
        "document deleted": lambda: document_delete(document=document),
        "collection deleted": lambda: collection.delete(),
        "user deleted": lambda: reader.delete(),
    }
    for name, change in narrowing.items():
        if isinstance(change, tuple):  # (the widening set-up, the narrowing change)
            setup, change = change
            setup()
        before = permission_mark()
        change()
        assert permission_mark() > before, name
