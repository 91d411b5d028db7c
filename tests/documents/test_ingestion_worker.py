"""Ingestion end to end through a real Celery worker process on the embedded database."""

import signal
import time

import pytest
from django.core.files.base import ContentFile

from documents.models import Chunk, Document
from documents.services import LoadReport, document_create, documents_enqueue, files_load
from tests.accounts.factories import UserFactory
from tests.documents.conftest import WORKER_LIMITS, documents_settle
from tests.documents.factories import CollectionFactory
from tests.documents.files import broken_files, good_files

pytestmark = pytest.mark.django_db(transaction=True)

EXPECTED_ERRORS = {
    "truncated.pdf": "damaged or truncated",
    "encrypted.pdf": "encrypted",
    "empty.txt": "empty",
    "latin1.txt": "not valid UTF-8",
    "oversized.txt": "the limit is 2,000,000",
    "bomb.docx": "zip bomb",
    "renamed.pdf": "content is a Word document",
}


def test_every_format_is_indexed_and_each_broken_file_fails_alone(worker, tmp_path):
    """GIVEN one file of every supported format and seven broken files in one batch
    WHEN the worker processes the batch
    THEN every good file is searchable with its structure, and each broken one is failed
    with its own reason."""
    owner = UserFactory()
    collection = CollectionFactory(owner=owner)
    broken = broken_files(
        tmp_path / "broken",
        size_limit=int(WORKER_LIMITS["PRODRAG_MAX_FILE_BYTES"]),
        unzipped_limit=int(WORKER_LIMITS["PRODRAG_MAX_UNZIPPED_BYTES"]),
    )
    report = LoadReport()
    files_load(
        collection=collection,
        owner=owner,
        files=[*good_files(tmp_path / "good"), *broken.values()],
        report=report,
    )
    documents_enqueue(document_ids=report.document_ids)
    documents = {
        doc.source.rsplit("/", 1)[-1]: doc for doc in documents_settle(report.document_ids)
    }

    for name, fragment in EXPECTED_ERRORS.items():
        assert documents[name].status == Document.Status.FAILED, name
        assert fragment in documents[name].error, (name, documents[name].error)
    good = {name: doc for name, doc in documents.items() if name not in EXPECTED_ERRORS}
    assert len(good) == 10
    for name, doc in good.items():
        assert doc.status == Document.Status.READY, (name, doc.error)
        assert doc.chunks.exists(), name
        assert doc.indexed_version_id == doc.current_version_id
        assert set(doc.stage_seconds) == {"parse", "chunk", "embed", "store"}
    assert not Chunk.objects.filter(document__in=good.values(), search_vector=None).exists()
    assert not Chunk.objects.filter(document__in=good.values(), embedding=None).exists()

    pdf = good["security-handbook.pdf"]
    assert pdf.title == "Security handbook"
    assert pdf.properties["author"] == "Northwind Labs Security"
    assert pdf.properties["page_count"] == 3
    assert pdf.chunks.filter(page_end=3).exists()
    docx = good["leave-policy.docx"]
    assert docx.language == "en"
    carry = docx.chunks.get(text__contains="carried over")
    assert carry.heading_path == ["Leave policy", "Carry-over"]
    assert docx.current_version.text[carry.char_start : carry.char_end] == carry.text
    assert good["office-locations.xlsx"].chunks.filter(text__contains="Lisbon").exists()
    python = good["vacation_calculator.py"]
    assert python.chunks.filter(
        heading_path__contains=["class LeaveBalance", "def carry_over(self, unused: int)"]
    ).exists()
    assert good["release-process.rst"].chunks.filter(heading_path__contains=["Rollback"]).exists()


def test_new_version_replaces_the_old_one_atomically(worker):
    """GIVEN an indexed document
    WHEN new bytes arrive under the same source and are processed
    THEN at every moment its passages are all of one version, then all of the new one."""
    owner = UserFactory()
    collection = CollectionFactory(owner=owner)
    first = "\n\n".join(f"Old paragraph {n} about the cafeteria menu." for n in range(40))
    document, _ = document_create(
        collection=collection, owner=owner, upload=ContentFile(first.encode(), name="menu.txt")
    )
    documents_settle([document.pk])
    old_count = document.chunks.count()
    second = "\n\n".join(f"New paragraph {n} about the parking rules." for n in range(400))
    same, outcome = document_create(
        collection=collection, owner=owner, upload=ContentFile(first.encode(), name="menu.txt")
    )
    assert outcome == "unchanged" and same.pk == document.pk

    document, outcome = document_create(
        collection=collection, owner=owner, upload=ContentFile(second.encode(), name="menu.txt")
    )
    assert outcome == "new_version"
    seen = set()
    deadline = time.monotonic() + 180
    while Document.objects.get(pk=document.pk).status != Document.Status.READY:
        assert Document.objects.get(pk=document.pk).status != Document.Status.FAILED
        assert time.monotonic() < deadline, "the new version was never indexed"
        versions = list(Chunk.objects.filter(document=document).values_list("version", flat=True))
        assert len(set(versions)) == 1, "passages of two versions at once"
        seen.add((versions[0], len(versions)))
        time.sleep(0.05)
    document.refresh_from_db()
    assert document.indexed_version.number == 2
    assert set(document.chunks.values_list("version", flat=True)) == {document.current_version_id}
    assert (document.versions.get(number=1).pk, old_count) in seen
    assert not document.chunks.filter(text__contains="cafeteria").exists()


def test_a_worker_killed_mid_task_hands_the_document_to_its_replacement(worker):
    """GIVEN a long document being embedded
    WHEN the worker process running the task is killed outright
    THEN the task is delivered again and the document ends ready, once, on its second try."""
    owner = UserFactory()
    collection = CollectionFactory(owner=owner)
    text = "\n\n".join(f"Paragraph {n} of the long safety report on ladders." for n in range(3000))
    document, _ = document_create(
        collection=collection, owner=owner, upload=ContentFile(text.encode(), name="long.txt")
    )
    deadline = time.monotonic() + 120
    while Document.objects.get(pk=document.pk).status != Document.Status.EMBEDDING:
        assert time.monotonic() < deadline, "never reached the embedding stage"
        assert Document.objects.get(pk=document.pk).status != Document.Status.FAILED
        time.sleep(0.05)
    (child,) = worker.pool_children()
    child.send_signal(signal.SIGKILL)

    (document,) = documents_settle([document.pk])
    assert document.status == Document.Status.READY, document.error
    assert document.attempts == 2
    ordinals = list(document.chunks.order_by("ordinal").values_list("ordinal", flat=True))
    assert ordinals == list(range(len(ordinals))) and len(ordinals) > 10
