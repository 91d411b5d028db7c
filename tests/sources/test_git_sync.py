"""A git source against a real `git daemon`: the branch's files by pattern, then only what
each new commit changed (edits as new versions, removed files deleted, renames keeping their
document), the commit recorded; an unreachable server or a missing branch deletes nothing."""

import pytest

from documents.models import Document
from documents.services.ingestion import documents_ingest
from sources.models import Source, SourceItem, SourceRun
from sources.services import source_sync
from tests.accounts.factories import UserFactory
from tests.documents.factories import CollectionFactory
from tests.sources.gitd import GitDaemon

pytestmark = pytest.mark.django_db


@pytest.fixture
def server(tmp_path):
    daemon = GitDaemon(tmp_path / "git")
    daemon.start()
    yield daemon
    daemon.stop()


@pytest.fixture
def source(server, settings, tmp_path):
    settings.SOURCES_DIR = tmp_path / "sources"
    owner = UserFactory()
    return Source.objects.create(
        name="handbook-repo", kind=Source.Kind.GIT, location=server.url, branch="main",
        collection=CollectionFactory(owner=owner), owner=owner,
        include=["*.md", "*.py"], max_deletion_share=0.5,
    )  # fmt: skip


def synced(source) -> SourceRun:
    run = source_sync(source=source)
    pending = Document.objects.filter(collection=source.collection, status="pending")
    documents_ingest(document_ids=list(pending.values_list("pk", flat=True)))
    return run


def counts(run: SourceRun) -> tuple:
    return (run.seen, run.added, run.changed, run.unchanged, run.deleted, run.failed)


def test_a_branch_is_indexed_then_followed_commit_by_commit(server, source):
    first = server.commit(
        {
            "README.md": "# Handbook\n\nHow we work.",
            "docs/leave.md": "# Leave\n\nEvery employee gets 27 days of annual leave.",
            "docs/travel.md": "# Travel\n\nBook flights two weeks ahead.",
            "tools/check.py": '"""Checks the handbook links."""\n',
            "logo.svg": "<svg/>",
        },
        "handbook",
    )

    run = synced(source)

    assert run.outcome == SourceRun.Outcome.DONE and counts(run) == (4, 4, 0, 0, 0, 0)
    assert source.checkpoint == {"revision": first}
    assert set(SourceItem.objects.values_list("revision", flat=True)) == {first}
    assert set(Document.objects.values_list("status", flat=True)) == {"ready"}
    travel = Document.objects.get(source__endswith="docs/travel.md")

    server.rename("docs/travel.md", "policies/travel.md")
    second = server.commit(
        {"docs/leave.md": "# Leave\n\nEvery employee gets 30 days of annual leave.",
         "tools/check.py": None},
        "thirty days; the checker goes; travel moves",
    )  # fmt: skip
    run = synced(source)

    assert counts(run) == (3, 0, 1, 2, 1, 0)
    leave = Document.objects.get(source__endswith="docs/leave.md")
    assert list(leave.versions.order_by("number").values_list("origin", flat=True)) == [
        f"commit {first}",
        f"commit {second}",
    ]  # each version records the commit it came from
    assert "30 days" in " ".join(leave.chunks.values_list("text", flat=True))
    assert SourceItem.objects.get(key="docs/leave.md").revision == second
    assert Document.objects.filter(pk=travel.pk).exists()  # moved, not indexed again
    assert SourceItem.objects.get(key="policies/travel.md").document_id == travel.pk
    assert not Document.objects.filter(source__endswith="check.py").exists()
    assert synced(source).unchanged == 3  # nothing new: nothing fetched


def test_an_unreachable_server_or_a_missing_branch_deletes_nothing(server, source):
    server.commit({"README.md": "# Handbook"}, "start")
    synced(source)

    source.branch = "release"
    source.save()
    missing = synced(source)
    assert missing.outcome == SourceRun.Outcome.FAILED and "no branch 'release'" in missing.error

    source.branch = "main"
    source.save()
    server.stop()
    down = synced(source)
    assert down.outcome == SourceRun.Outcome.FAILED and "cannot fetch" in down.error
    assert Document.objects.count() == 1
