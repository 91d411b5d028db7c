"""The Sources admin and schedule: a collection's manager adds a source only to a collection
they manage and only from the folders PRODRAG_SOURCE_FOLDERS allows (never the server's own
files); Sync now queues only sources they manage; the worker's beat task queues the sources
whose interval has passed."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import assign_perm

from sources.models import Source, SourceRun
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
