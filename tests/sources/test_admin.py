"""The Sources admin and schedule: a collection's manager adds a source only to a collection
they manage and only from the folders PRODRAG_SOURCE_FOLDERS allows (never the server's own
files); Sync now queues only sources they manage; the worker's beat task queues the sources
whose interval has passed, and the permission passes of mirror sources; the Sources page shows
each source's progress, last and next run and errors, never its secret; a document's page
shows the source item it came from."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import assign_perm

from documents.models import Document
from sources.credentials import Credentials, credentials_open
from sources.models import Source, SourceItem, SourceRun
from sources.services import source_save
from sources.tasks import sources_sync_due
from tests.accounts.factories import UserFactory
from tests.documents.factories import CollectionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager(client, settings, tmp_path):
    settings.SOURCE_FOLDERS = [(tmp_path / "shares").resolve()]
    (tmp_path / "shares" / "hr").mkdir(parents=True)
    user = UserFactory(is_staff=True)
    mine = CollectionFactory(owner=UserFactory(), name="HR handbook")
    assign_perm("manage_collection", user, mine)
    client.force_login(user)
    return {"user": user, "mine": mine, "other": CollectionFactory(name="Board minutes"),
            "shares": tmp_path / "shares"}  # fmt: skip


def _add(client, **fields):
    data = {"name": "hr-share", "kind": "folder", "branch": "", "include": "[]",
            "exclude": "[]", "hosts": "[]", "endpoint": "", "permission_mode": "collection",
            "sync_minutes": 60, "permission_minutes": 5, "max_deletion_share": 0.1,
            "runs-TOTAL_FORMS": 0, "runs-INITIAL_FORMS": 0} | fields  # fmt: skip
    return client.post(reverse("admin:sources_source_add"), data)


def test_a_manager_adds_a_folder_source_under_the_allowed_folders_only(client, manager):
    for location, says in (
        ("/etc", "not under the folders sources may read"),
        (str(manager["shares"] / ".." / ".."), "not under the folders sources may read"),
        ("relative/path", "absolute folder path"),
    ):
        refused = _add(client, location=location, collection=manager["mine"].pk)
        assert refused.status_code == 200 and says in refused.content.decode(), location
    foreign = _add(client, location=str(manager["shares"] / "hr"), collection=manager["other"].pk)
    assert "Select a valid choice" in foreign.content.decode()
    assert not Source.objects.exists()

    added = _add(client, location=str(manager["shares"] / "hr"), collection=manager["mine"].pk)

    assert added.status_code == 302
    source = Source.objects.get()
    assert (source.owner, source.collection) == (manager["user"], manager["mine"])


def test_a_git_source_takes_a_remote_url_but_no_local_path_outside_the_folders(client, manager):
    local = _add(client, kind="git", location="/srv/git/secret.git", collection=manager["mine"].pk)
    assert "not under the folders sources may read" in local.content.decode()
    remote = _add(client, kind="git", location="https://git.example.org/docs.git",
                  branch="main", collection=manager["mine"].pk)  # fmt: skip
    assert remote.status_code == 302 and Source.objects.get().kind == "git"


def test_sync_now_queues_only_the_sources_the_user_manages(
    client, manager, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr("sources.tasks.source_sync_run.delay", queued.append)
    boss = UserFactory()
    mine = Source.objects.create(name="mine", kind="folder", location="/x", owner=boss,
                                 collection=manager["mine"])  # fmt: skip
    theirs = Source.objects.create(name="theirs", kind="folder", location="/y", owner=boss,
                                   collection=manager["other"])  # fmt: skip

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("admin:sources_source_changelist"),
            {"action": "sync_now", "_selected_action": [mine.pk, theirs.pk]},
        )

    assert queued == [mine.pk]


def test_the_beat_task_queues_the_sources_whose_interval_has_passed(monkeypatch):
    queued = []
    monkeypatch.setattr("sources.tasks.source_sync_run.delay", queued.append)
    owner = UserFactory()
    collection = CollectionFactory(owner=owner)

    def source(name, minutes, last_run_minutes_ago=None):
        made = Source.objects.create(name=name, kind="folder", location="/x", owner=owner,
                                     collection=collection, sync_minutes=minutes)  # fmt: skip
        if last_run_minutes_ago is not None:
            started = timezone.now() - timedelta(minutes=last_run_minutes_ago)
            SourceRun.objects.create(source=made, started_at=started, outcome="done")
        return made

    never = source("never synced", 60)
    due = source("due", 60, last_run_minutes_ago=61)
    source("recent", 60, last_run_minutes_ago=5)
    source("manual only", 0)

    assert sources_sync_due() == 2
    assert sorted(queued) == sorted([never.pk, due.pk])


def test_the_beat_task_queues_mirror_sources_permission_passes(monkeypatch):
    queued = []
    monkeypatch.setattr("sources.tasks.source_sync_run.delay", lambda pk: None)
    monkeypatch.setattr("sources.tasks.source_permissions_run.delay", queued.append)
    owner = UserFactory()
    mirrored = source_save(source=Source(
        name="m", kind="folder", location="/x", owner=owner, permission_mode="mirror",
        collection=CollectionFactory(owner=owner), permission_minutes=5,
    ), folders_checked=False)  # fmt: skip
    Source.objects.create(name="c", kind="folder", location="/y", owner=owner,
                          collection=CollectionFactory(owner=owner))  # fmt: skip

    sources_sync_due()
    assert queued == [mirrored.pk]  # never checked: due; the collection-mode one has none
    queued.clear()
    Source.objects.filter(pk=mirrored.pk).update(permissions_checked_at=timezone.now())
    sources_sync_due()
    assert queued == []
    Source.objects.filter(pk=mirrored.pk).update(
        permissions_checked_at=timezone.now() - timedelta(minutes=6)
    )
    sources_sync_due()
    assert queued == [mirrored.pk]


def test_the_sources_page_shows_progress_runs_and_errors_but_never_the_secret(client, manager):
    source = source_save(
        source=Source(name="hr-share", kind="webdav", location="https://dav.example.org/hr/",
                      owner=manager["user"], collection=manager["mine"]),
        credentials=Credentials(username="svc-dav", secret="correct horse battery"),
    )  # fmt: skip
    SourceRun.objects.create(source=source, outcome="held", seen=40, unchanged=30,
                             error="12 of the source's 40 documents would be deleted",
                             errors=[["a.pdf", "cannot read a.pdf: 403"]])  # fmt: skip
    SourceRun.objects.create(source=source, seen=40, added=3, unchanged=20)  # running

    listed = client.get(reverse("admin:sources_source_changelist")).content.decode()
    assert "running since" in listed and "23 of 40 items" in listed
    page = client.get(reverse("admin:sources_source_change", args=[source.pk])).content.decode()
    assert "12 of the source&#x27;s 40 documents would be deleted" in page
    assert "a.pdf: cannot read a.pdf: 403" in page
    assert "svc-dav" in page and "correct horse battery" not in page

    changed = client.post(reverse("admin:sources_source_change", args=[source.pk]), {
        "name": "hr-share", "kind": "webdav", "location": "https://dav.example.org/hr/",
        "branch": "", "endpoint": "", "hosts": "[]", "include": "[]", "exclude": "[]",
        "collection": manager["mine"].pk, "permission_mode": "collection", "sync_minutes": 30,
        "permission_minutes": 5, "max_deletion_share": 0.1, "username": "svc-dav",
        "secret": "", "runs-TOTAL_FORMS": 0, "runs-INITIAL_FORMS": 0,
    })  # fmt: skip
    assert changed.status_code == 302
    source.refresh_from_db()
    assert source.sync_minutes == 30
    assert credentials_open(source.credentials).secret == "correct horse battery"  # kept


def test_a_documents_page_shows_the_source_item_it_came_from(client, manager):
    source = Source.objects.create(name="docs", kind="git", location="git://git.example/r.git",
                                   owner=manager["user"], collection=manager["mine"])  # fmt: skip
    document = Document.objects.create(collection=manager["mine"], owner=manager["user"],
                                       title="Install", source="git://git.example/r.git/a.md",
                                       sha256="0" * 64)  # fmt: skip
    SourceItem.objects.create(source=source, key="docs/install.md", marker="9f2c1e",
                              revision="b" * 40, document=document)  # fmt: skip
    page = client.get(reverse("admin:documents_document_change", args=[document.pk]))
    text = page.content.decode()
    assert "git://git.example/r.git/docs/install.md (marker 9f2c1e, commit bbbbbbbbbbbb" in text
