"""Sources through the API: those who manage a collection list, add, change, sync and delete
its sources and read their runs; no one else learns that a source exists (404, as for one
that does not), a collection they may not read is as one that does not exist, the secret is
never returned, and bad input is a 400 naming the field."""

import pytest
from guardian.shortcuts import assign_perm

from accounts.models import ApiToken
from sources.models import Source, SourceRun
from tests.accounts.factories import UserFactory
from tests.api import api_client
from tests.documents.factories import CollectionFactory

pytestmark = pytest.mark.django_db

SOURCES = "/api/v1/sources/"


@pytest.fixture
def world():
    boss, manager, reader = UserFactory(), UserFactory(), UserFactory()
    hr = CollectionFactory(owner=boss, name="HR")
    board = CollectionFactory(owner=boss, name="Board")
    assign_perm("manage_collection", manager, hr)
    assign_perm("view_document", reader, hr)
    theirs = Source.objects.create(name="board-feed", kind="web", owner=boss, collection=board,
                                   location="https://board.example.org/")  # fmt: skip
    SourceRun.objects.create(source=theirs, outcome="done", seen=7, added=7)
    return {"manager": api_client(manager, scope=ApiToken.Scope.WRITE), "hr": hr,
            "board": board, "theirs": theirs,
            "reader": api_client(reader, scope=ApiToken.Scope.WRITE)}  # fmt: skip


def web(collection, **fields):
    return {"name": "intranet", "kind": "web", "location": "https://intranet.example.org/hr/",
            "collection": collection.pk} | fields  # fmt: skip


def test_a_manager_adds_changes_syncs_and_deletes_a_source(
    world, monkeypatch, django_capture_on_commit_callbacks
):
    api = world["manager"]
    made = api.post(SOURCES, web(world["hr"], username="svc", secret="hunter2"), format="json")
    assert made.status_code == 201, made.json()
    body = made.json()
    assert (body["username"], body["has_secret"]) == ("svc", True)
    assert "secret" not in body and "hunter2" not in made.content.decode()
    source = Source.objects.get(name="intranet")
    assert "hunter2" not in source.credentials

    changed = api.patch(f"{SOURCES}{source.pk}/", {"sync_minutes": 15}, format="json")
    assert changed.status_code == 200 and changed.json()["sync_minutes"] == 15
    assert changed.json()["has_secret"]  # kept when not given

    queued = []
    monkeypatch.setattr("sources.tasks.source_sync_run.delay",
                        lambda pk, **options: queued.append((pk, options)))  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        synced = api.post(f"{SOURCES}{source.pk}/sync/", {"allow_deletions": True}, format="json")
    assert synced.status_code == 202
    assert queued == [(source.pk, {"allow_deletions": True})]

    SourceRun.objects.create(source=source, outcome="held", error="3 of 4 would go")
    runs = api.get(f"{SOURCES}{source.pk}/runs/").json()["results"]
    assert [run["outcome"] for run in runs] == ["held"]

    listed = api.get(SOURCES).json()["results"]
    assert [s["name"] for s in listed] == ["intranet"]  # not the board's source

    assert api.delete(f"{SOURCES}{source.pk}/").status_code == 204
    assert not Source.objects.filter(pk=source.pk).exists()


def test_no_one_else_learns_that_a_source_exists(world):
    theirs = world["theirs"]
    for api in (world["manager"], world["reader"]):
        assert api.get(SOURCES).json()["results"] == []
        for method, path in (("get", ""), ("patch", ""), ("delete", ""), ("post", "sync/"),
                             ("get", "runs/")):  # fmt: skip
            answer = getattr(api, method)(f"{SOURCES}{theirs.pk}/{path}", {}, format="json")
            assert answer.status_code == 404, (method, path)
            assert "board" not in answer.content.decode().lower()
    missing = world["manager"].post(SOURCES, web(world["board"]), format="json")
    nowhere = world["manager"].post(SOURCES, web(world["board"]) | {"collection": 10**9},
                                    format="json")  # fmt: skip
    assert missing.status_code == nowhere.status_code == 400
    assert missing.json()["error"]["fields"] == {
        "collection": [f'Invalid pk "{world["board"].pk}" - object does not exist.']
    }
    assert Source.objects.count() == 1


def test_reading_a_collection_is_not_managing_its_sources(world):
    refused = world["reader"].post(SOURCES, web(world["hr"]), format="json")
    assert refused.status_code == 403
    assert "manage" in refused.json()["error"]["message"]
    reading = api_client(UserFactory(), scope=ApiToken.Scope.READ)
    scoped = reading.post(SOURCES, web(world["hr"]), format="json")
    assert scoped.status_code == 403 and "scope" in scoped.json()["error"]["message"]


def test_bad_input_is_a_400_naming_the_field(world):
    api = world["manager"]
    for fields, named in (
        ({"location": "file:///etc/passwd"}, "location"),
        ({"kind": "git", "location": "git://h/r", "permission_mode": "mirror"},
         "permission_mode"),
        ({"kind": "ftp"}, "kind"),
        ({"hosts": "intranet"}, "hosts"),
        ({"include": ["*.md\x00"]}, "include"),
        ({"hosts": ["https://docs.example.org/"]}, "hosts"),
        ({"max_deletion_share": 3}, "max_deletion_share"),
    ):  # fmt: skip
        answer = api.post(SOURCES, web(world["hr"], **fields), format="json")
        assert answer.status_code == 400, fields
        assert named in answer.json()["error"]["fields"], answer.json()
    assert not Source.objects.filter(name="intranet").exists()
