"""WebDAV and S3 sources against real servers on loopback (wsgidav; moto's S3 emulator): the
first sync indexes what is under the location, an edited item becomes a new version and only
it is fetched, a deleted one is deleted, a server that is down or refuses the credentials
deletes nothing and says why, and the credentials are stored encrypted, never in clear."""

import pytest

from documents.models import Document, DocumentVersion
from sources.credentials import Credentials
from sources.models import Source, SourceRun
from sources.services import source_save
from tests.accounts.factories import UserFactory
from tests.documents.factories import CollectionFactory
from tests.sources.servers import PASSWORD, S3, USER, WebDav
from tests.sources.syncing import counts, synced

pytestmark = pytest.mark.django_db

LEAVE = "# Leave\n\nEvery employee gets 27 days of annual leave."
TRAVEL = "# Travel\n\nBook flights two weeks ahead."


@pytest.fixture(params=["webdav", "s3"])
def server(request, tmp_path):
    if request.param == "webdav":
        (tmp_path / "dav").mkdir()
        served = WebDav(tmp_path / "dav")
        location, prefix, endpoint = served.url + "handbook", "handbook/", ""
    else:
        served = S3()
        location, prefix, endpoint = "s3://docs/handbook", "handbook/", served.url
    served.start()
    served.put(prefix + "leave.md", LEAVE)
    served.put(prefix + "trips/travel.md", TRAVEL)
    served.put("elsewhere/other.md", "# Other\n\nNot under the location.")
    owner = UserFactory()
    source = source_save(
        source=Source(name=request.param, kind=request.param, location=location,
                      endpoint=endpoint, collection=CollectionFactory(owner=owner), owner=owner,
                      max_deletion_share=0.5),
        credentials=Credentials(username=USER, secret=PASSWORD),
    )  # fmt: skip
    yield served, source, prefix
    served.stop()


def test_a_remote_source_follows_its_items(server):
    served, source, prefix = server
    first = synced(source)
    assert first.outcome == SourceRun.Outcome.DONE, first.error
    assert counts(first) == (2, 2, 0, 0, 0, 0)
    documents = Document.objects.filter(collection=source.collection)
    assert {d.source.rsplit("/", 1)[1] for d in documents} == {"leave.md", "travel.md"}
    assert set(documents.values_list("status", flat=True)) == {"ready"}
    assert synced(source).unchanged == 2

    served.put(prefix + "leave.md", LEAVE + "\n\nPart-time staff get it pro rata.")
    edited = synced(source)
    assert counts(edited) == (2, 0, 1, 1, 0, 0)
    leave = documents.get(source__endswith="/leave.md")
    origins = DocumentVersion.objects.filter(document=leave).values_list("origin", flat=True)
    assert len(set(origins)) == 2 and all(o.startswith("marker ") for o in origins)  # ETags

    served.delete(prefix + "trips/travel.md")
    assert counts(synced(source)) == (1, 0, 0, 1, 1, 0)
    assert not documents.filter(source__endswith="/travel.md").exists()

    served.stop()
    down = synced(source)
    assert down.outcome == SourceRun.Outcome.FAILED and "cannot" in down.error
    assert documents.filter(source__endswith="/leave.md").exists()  # nothing deleted


def test_credentials_are_stored_encrypted_and_wrong_ones_delete_nothing(server):
    source = server[1]
    synced(source)
    stored = Source.objects.get(pk=source.pk).credentials
    assert PASSWORD not in stored and USER not in stored

    if source.kind == Source.Kind.S3:
        return  # the emulator accepts any key: refusals are WebDAV's to show here
    source_save(source=source, credentials=Credentials(username=USER, secret="wrong"))
    refused = synced(source)
    assert refused.outcome == SourceRun.Outcome.FAILED and "401" in refused.error
    assert "wrong" not in refused.error
    assert Document.objects.filter(collection=source.collection).count() == 2
