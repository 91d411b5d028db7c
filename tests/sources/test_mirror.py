"""Mirror mode on a real folder: each document's readers are those the file's owner, group,
mode bits and POSIX ACL (set with setfacl) let read it and pass through its folders, mapped to
prodrag users and groups by name; a name that maps to no one grants nothing; a revocation
there reaches search at the next permission pass, without the file being read again.

The machine's own accounts serve as the source's principals: user `daemon`, groups `adm` and
`staff` (every Debian system has them), so nothing is added to the machine's accounts."""

import grp
import os
import pwd
import shutil
import subprocess

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import connection
from django.urls import reverse

from accounts.models import AuditEvent
from documents.models import DocumentVersion
from sources.connectors import Readers
from sources.connectors.folder import FolderConnector
from sources.models import Source, SourceItem
from sources.services import source_permissions_sync, source_save
from tests.accounts.factories import UserFactory
from tests.api import api_client
from tests.documents.factories import CollectionFactory, DocumentFactory
from tests.sources.syncing import synced

pytestmark = pytest.mark.django_db

DAEMON, ADM, STAFF = pwd.getpwnam("daemon").pw_uid, grp.getgrnam("adm").gr_gid, 50


SETFACL = shutil.which("setfacl") or "/usr/bin/setfacl"  # Debian's acl (make test installs it)


def setfacl(*arguments):
    subprocess.run([SETFACL, *arguments], check=True)


@pytest.fixture
def share(tmp_path):
    """board.md: daemon's, group adm, 0640. canteen.md: 0644, everyone. hr/pay.md: 0644 in a
    folder only group staff may enter (0750). acl.md: 0600 with an ACL for group staff."""
    root = tmp_path / "share"
    (root / "hr").mkdir(parents=True)
    texts = {
        "board.md": "# Board\n\nThe board approved the merger with Quill Corp.",
        "canteen.md": "# Canteen\n\nLunch is served from noon.",
        "hr/pay.md": "# Pay\n\nSalaries rise by four per cent in April.",
        "acl.md": "# Audit\n\nThe auditors arrive on the ninth of March.",
    }
    for name, text in texts.items():
        (root / name).write_text(text)
    os.chown(root / "board.md", DAEMON, ADM)
    os.chmod(root / "board.md", 0o640)
    os.chmod(root / "canteen.md", 0o644)
    os.chown(root / "hr", 0, STAFF)
    os.chmod(root / "hr", 0o750)
    os.chmod(root / "hr/pay.md", 0o644)
    os.chmod(root / "acl.md", 0o600)
    setfacl("-m", "g:staff:r", str(root / "acl.md"))
    os.chmod(root, 0o755)
    return root


@pytest.fixture
def world(share):
    manager = UserFactory()
    people = {
        "daemon": UserFactory(username="daemon"),  # the file owner's name
        "auditor": UserFactory(),  # in staff
        "clerk": UserFactory(),  # in adm
        "outsider": UserFactory(),  # in no group
    }
    Group.objects.create(name="adm").user_set.add(people["clerk"])
    Group.objects.create(name="staff").user_set.add(people["auditor"])
    collection = CollectionFactory(owner=manager, open_to_staff=True)
    source = source_save(
        source=Source(
            name="share", kind=Source.Kind.FOLDER, location=str(share), collection=collection,
            owner=manager, permission_mode=Source.PermissionMode.MIRROR,
        ),
        folders_checked=False,
    )  # fmt: skip
    return {"source": source, "people": people, "manager": manager}


def permission_mark() -> int:
    """Where the primary's permission mark stands (accounts.replicas)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT position FROM accounts_permissionmark WHERE id = 1")
        return int(cursor.fetchone()[0])


def found(user, query: str) -> set[str]:
    """The files of the passages a search finds for the user, in every mode."""
    sources = set()
    for mode in ("dense", "fulltext", "hybrid"):
        answer = api_client(user).post(reverse("v1:search"), {"query": query, "mode": mode},
                                       format="json")  # fmt: skip
        assert answer.status_code == 200
        sources |= {
            passage["source"].rsplit("/share/", 1)[1] for passage in answer.json()["passages"]
        }
    return sources


def test_posix_readers_are_owner_group_mode_acl_and_the_folders_on_the_way(share):
    connector = FolderConnector(str(share))
    assert connector.readers("board.md") == Readers(frozenset({"daemon"}), frozenset({"adm"}))
    assert connector.readers("canteen.md") == Readers(
        frozenset({"root"}), frozenset({"root"}), everyone=True
    )
    # Everyone may read pay.md, but only root (its folder's owner) and staff may enter hr/.
    assert connector.readers("hr/pay.md") == Readers(frozenset({"root"}), frozenset({"staff"}))
    assert connector.readers("acl.md") == Readers(frozenset({"root"}), frozenset({"staff"}))
    setfacl("-m", "u:daemon:-", str(share / "acl.md"))  # a user denied: groups left out
    assert connector.readers("acl.md") == Readers(frozenset({"root"}), frozenset())
    setfacl("-m", "m::-", str(share / "acl.md"))  # the mask caps the group entries
    assert connector.readers("acl.md") == Readers(frozenset({"root"}))


def test_each_document_is_read_by_those_the_share_lets_read_it(world):
    source, people = world["source"], world["people"]
    synced(source)
    assert source.collection.__class__.objects.get(pk=source.collection_id).readers_per_document

    # The collection is open to staff, yet mirrored documents follow their files' readers.
    assert found(people["outsider"], "board merger Quill") <= {"canteen.md"}  # open to all
    assert "board.md" in found(people["clerk"], "board merger Quill")
    assert "board.md" in found(people["daemon"], "board merger Quill")
    assert "board.md" not in found(people["auditor"], "board merger Quill")
    assert "hr/pay.md" in found(people["auditor"], "salaries rise April")
    assert "hr/pay.md" not in found(people["clerk"], "salaries rise April")
    assert "acl.md" in found(people["auditor"], "auditors arrive March")
    assert "canteen.md" in found(people["outsider"], "lunch served noon")
    for user in (people["outsider"], people["clerk"]):  # no title, no count either
        listed = api_client(user).get("/api/v1/documents/").json()
        titles = {document["title"] for document in listed["results"]}
        assert "Audit" not in titles and "Pay" not in titles


@pytest.mark.django_db(transaction=True)  # the mark moves once per committed transaction
def test_a_revocation_at_the_source_reaches_search_at_the_permission_pass(world, share):
    source, people = world["source"], world["people"]
    synced(source)
    assert "board.md" in found(people["clerk"], "board merger Quill")
    versions = DocumentVersion.objects.count()

    mark = permission_mark()
    os.chmod(share / "board.md", 0o600)  # group adm no longer reads it
    assert source_permissions_sync(source=source) == 1
    assert permission_mark() > mark  # replicas must replay the revocation before serving

    assert "board.md" not in found(people["clerk"], "board merger Quill")
    assert "board.md" in found(people["daemon"], "board merger Quill")
    assert DocumentVersion.objects.count() == versions  # nothing read or parsed again
    assert AuditEvent.objects.filter(action=AuditEvent.Action.PERMISSION_REVOKE).exists()
    assert source_permissions_sync(source=source) == 0  # nothing changed since

    os.chmod(share / "board.md", 0o640)
    source_permissions_sync(source=source)
    assert "board.md" in found(people["clerk"], "board merger Quill")

    share.rename(share.with_name("unmounted"))  # the folder is gone, not its files' readers
    assert source_permissions_sync(source=source) is None
    share.with_name("unmounted").rename(share)
    assert "board.md" in found(people["clerk"], "board merger Quill")


def test_names_that_map_to_no_one_and_unreadable_acls_grant_nothing(world, share):
    source, people = world["source"], world["people"]
    Group.objects.get(name="adm").delete()  # adm maps to no prodrag group now
    synced(source)
    board = SourceItem.objects.get(source=source, key="board.md")
    assert board.readers == {"users": ["daemon"], "groups": ["adm"], "everyone": False}
    assert "board.md" not in found(people["clerk"], "board merger Quill")

    os.chmod(share / "hr", 0o000)  # no one may enter the folder now
    source_permissions_sync(source=source)
    pay = SourceItem.objects.get(source=source, key="hr/pay.md")
    assert pay.readers == {"users": [], "groups": [], "everyone": False}
    assert "hr/pay.md" not in found(people["auditor"], "salaries rise April")

    os.chmod(share / "hr", 0o750)
    (share / "hr" / "pay.md").unlink()  # gone before the next sync: its ACL cannot be read
    source_permissions_sync(source=source)
    assert SourceItem.objects.get(source=source, key="hr/pay.md").readers is None
    assert "hr/pay.md" not in found(people["auditor"], "salaries rise April")


def test_a_mirror_source_needs_a_collection_of_its_own(world):
    manager = world["manager"]
    shared = CollectionFactory(owner=manager)
    DocumentFactory(collection=shared, owner=manager)
    with pytest.raises(ValidationError, match="needs a collection of its own"):
        source_save(source=Source(name="b", kind=Source.Kind.FOLDER, location="/srv",
                                  collection=shared, owner=manager,
                                  permission_mode=Source.PermissionMode.MIRROR),
                    folders_checked=False)  # fmt: skip
    with pytest.raises(ValidationError, match="none but the collection's managers"):
        source_save(source=Source(name="c", kind=Source.Kind.FOLDER, location="/srv",
                                  collection=world["source"].collection, owner=manager),
                    folders_checked=False)  # fmt: skip
    with pytest.raises(ValidationError, match="keep no permissions per item"):
        source_save(source=Source(name="d", kind=Source.Kind.GIT, location="git://h/r",
                                  collection=CollectionFactory(owner=manager), owner=manager,
                                  permission_mode=Source.PermissionMode.MIRROR))  # fmt: skip
