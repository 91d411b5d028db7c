"""A git source against a real `git daemon`: the branch's files by pattern, then only what
each new commit changed, by a diff since the last synced commit (edits as new versions,
removed files deleted, renames keeping their document), the commit recorded; a run with a
failed item, or new patterns, make the next one list everything; an unreachable server or a
missing branch deletes nothing."""

import pytest

from documents.models import Document
from sources.connectors import ItemUnreadable
from sources.connectors.git import GitConnector
from sources.models import Source, SourceItem, SourceRun
from tests.accounts.factories import UserFactory
from tests.documents.factories import CollectionFactory
from tests.sources.gitd import GitDaemon
from tests.sources.syncing import counts, synced

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
    assert source.checkpoint == {
        "revision": first,
        "patterns": {"include": ["*.md", "*.py"], "exclude": []},
    }
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

    # The diff names leave.md (edited), docs/travel.md (removed), policies/travel.md (added,
    # the same bytes: its document kept) and check.py (removed); README.md is not looked at.
    assert counts(run) == (2, 0, 1, 1, 1, 0)
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
    assert counts(synced(source)) == (0, 0, 0, 0, 0, 0)  # nothing new: an empty diff


def test_a_failed_item_or_new_patterns_make_the_next_sync_list_everything(
    server, source, monkeypatch
):
    server.commit({"README.md": "# Handbook", "docs/leave.md": "# Leave\n\n27 days."}, "start")
    synced(source)
    server.commit({"docs/leave.md": "# Leave\n\n30 days.", "docs/pay.md": "# Pay\n\nMonthly."},
                  "more")  # fmt: skip
    opened = GitConnector.open

    def unreadable(connector, key):
        if key == "docs/pay.md":
            raise ItemUnreadable("the blob is missing")
        return opened(connector, key)

    monkeypatch.setattr(GitConnector, "open", unreadable)
    failed = synced(source)
    assert (failed.changed, failed.failed) == (1, 1)
    assert Source.objects.get(pk=source.pk).checkpoint == {}
    monkeypatch.undo()
    source.refresh_from_db()
    retried = synced(source)  # a full listing: pay.md is found again
    assert counts(retried) == (3, 1, 0, 2, 0, 0)

    server.commit({"logo.txt": "Northwind"}, "a text file")
    source.include = [*source.include, "*.txt"]
    source.save()
    widened = synced(source)  # new patterns: a full listing, not the diff alone
    assert (widened.seen, widened.added) == (4, 1)


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
