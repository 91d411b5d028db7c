"""An SMB source against a real Samba server on loopback, in mirror mode: the share's files
are listed and read over SMB, each document's readers come from the file's NT ACL and the
share's permissions (SIDs, mapped through directory identities and groups), a revocation on
the server (of a file or of the share) reaches search at the permission pass, a server that
cannot be reached changes no readers, and one that refuses the credentials deletes
nothing."""

import grp
import os
import pwd
import shutil
import tempfile
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from accounts.models import DirectoryGroup, ExternalIdentity
from documents.models import Document
from documents.services.ingestion import documents_ingest
from sources.connectors import ItemUnreadable, Readers
from sources.connectors.smb import SmbConnector
from sources.credentials import Credentials
from sources.models import Source, SourceRun
from sources.services import source_permissions_sync, source_save, source_sync
from tests.accounts.factories import UserFactory
from tests.api import api_client
from tests.documents.factories import CollectionFactory
from tests.sources.servers import PASSWORD, Samba

pytestmark = pytest.mark.django_db

ADM = grp.getgrnam("adm").gr_gid
ADM_SID = f"S-1-22-2-{ADM}"  # Samba's SID for a Unix group
ROOT_SID = "S-1-22-1-0"  # Samba's SID for the Unix user root: the source's account


@pytest.fixture
def samba():
    # Samba reads the share as the signed-in account (daemon): the share's folder must be
    # reachable by it, which pytest's own temporary folders (0700, root's) are not.
    base = Path(tempfile.mkdtemp(prefix="prodrag-smb-"))
    base.chmod(0o755)
    share = base / "share"
    share.mkdir(mode=0o755)
    (share / "board.md").write_text("# Board\n\nThe board approved the merger with Quill Corp.")
    os.chown(share / "board.md", pwd.getpwnam("daemon").pw_uid, ADM)
    os.chmod(share / "board.md", 0o640)
    (share / "canteen.md").write_text("# Canteen\n\nLunch is served from noon.")
    os.chmod(share / "canteen.md", 0o644)
    server = Samba(share)
    server.start()
    yield server, share
    server.stop()
    shutil.rmtree(base)


def found(user, query: str) -> set[str]:
    answer = api_client(user).post(reverse("v1:search"), {"query": query}, format="json")
    assert answer.status_code == 200
    return {passage["source"].rsplit("/", 1)[1] for passage in answer.json()["passages"]}


def test_an_smb_share_is_mirrored_with_its_nt_acls(samba):
    server, share = samba
    connector = SmbConnector(server.url, Credentials("root", PASSWORD))
    owner_sid = next(iter(connector.readers("board.md").users - {ADM_SID}))
    assert owner_sid.startswith("S-1-5-21-")  # the Samba account of the file's owner

    manager, clerk, outsider = UserFactory(), UserFactory(), UserFactory()
    owner = UserFactory()
    ExternalIdentity.objects.create(user=owner, directory="ldap", subject=owner_sid)
    clerks = Group.objects.create(name="Clerks")
    DirectoryGroup.objects.create(group=clerks, directory="ldap", external_id=ADM_SID)
    clerks.user_set.add(clerk)
    source = source_save(
        source=Source(name="smb", kind=Source.Kind.SMB, location=server.url,
                      collection=CollectionFactory(owner=manager), owner=manager,
                      permission_mode=Source.PermissionMode.MIRROR),
        credentials=Credentials(username="root", secret=PASSWORD),
    )  # fmt: skip
    run = source_sync(source=source)
    assert run.outcome == SourceRun.Outcome.DONE, run.error
    assert run.added == 2
    pending = Document.objects.filter(collection=source.collection, status="pending")
    documents_ingest(document_ids=list(pending.values_list("pk", flat=True)))

    assert "board.md" in found(clerk, "board merger Quill")
    assert "board.md" in found(owner, "board merger Quill")
    assert "board.md" not in found(outsider, "board merger Quill")
    assert "canteen.md" in found(outsider, "lunch served noon")  # Everyone may read it

    os.chmod(share / "board.md", 0o600)  # the group's ACE loses read
    assert source_permissions_sync(source=source) == 1
    assert "board.md" not in found(clerk, "board merger Quill")
    assert "board.md" in found(owner, "board merger Quill")

    # The share: the group, and the source's account (which its gate stops too).
    server.share_permissions(f"{ADM_SID}:ALLOWED/0/READ", f"{ROOT_SID}:ALLOWED/0/FULL")
    assert source_permissions_sync(source=source) == 2
    assert "canteen.md" not in found(outsider, "lunch served noon")
    assert "canteen.md" in found(clerk, "lunch served noon")
    assert "board.md" not in found(owner, "board merger Quill")  # the share does not let him

    server.stop()  # unreachable: the readers stay as the last pass left them
    assert source_permissions_sync(source=source) is None
    assert "canteen.md" in found(clerk, "lunch served noon")
    server.start()

    source_save(source=source, credentials=Credentials(username="root", secret="wrong"))
    refused = source_sync(source=source)
    assert refused.outcome == SourceRun.Outcome.FAILED and "refused" in refused.error
    assert "wrong" not in refused.error
    assert Document.objects.filter(collection=source.collection).count() == 2


def test_share_permissions_narrow_the_files_readers_and_only_an_administrator_reads_them(samba):
    server, _ = samba
    clerk = SmbConnector(server.url, Credentials("daemon", PASSWORD))
    with pytest.raises(ItemUnreadable, match="must be an administrator"):
        clerk.readers("canteen.md")

    server.share_permissions(f"{ADM_SID}:ALLOWED/0/FULL", f"{ROOT_SID}:ALLOWED/0/FULL")
    connector = SmbConnector(server.url, Credentials("root", PASSWORD))
    share = frozenset({ADM_SID, ROOT_SID})
    assert connector.readers("canteen.md") == Readers(share, share)  # Everyone's file
    group = frozenset({ADM_SID})
    assert connector.readers("board.md") == Readers(group, group)  # its owner's is not there
    clerk = SmbConnector(server.url, Credentials("daemon", PASSWORD))
    with pytest.raises(ItemUnreadable, match=r"cannot read the ACL of canteen\.md: [^=]*$"):
        clerk.readers("canteen.md")  # the share's gate stops the account itself
