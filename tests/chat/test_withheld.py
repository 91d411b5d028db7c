"""Stored answers outlive access no more: an answer that used a document its asker can no
longer read is withheld on every surface (API, chat pages, sources, follow-up rewriting,
feedback admin), decided at read time by the same rule as search."""

import json

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from guardian.shortcuts import assign_perm, remove_perm

from accounts.models import AuditEvent
from accounts.selectors import audit_redact
from chat.models import Message
from chat.selectors import WITHHELD, answers_withhold
from chat.services import answer_create, feedback_record
from documents.services.uploads import document_delete
from tests.accounts.factories import GroupFactory, UserFactory
from tests.api import api_client, sse
from tests.chat.asking import question_add
from tests.fake_openai import FakeOpenAI

pytestmark = pytest.mark.django_db

HOTEL = "Up to how much are hotel costs refunded per night?"
SECRET = "150 euros a night"


@pytest.fixture
def reader(handbook):
    """A member of a group granted the travel policy, who has asked about hotels."""
    user = UserFactory(username="reader")
    travellers = GroupFactory(name="travellers")
    user.groups.add(travellers)
    assign_perm("view_document", travellers, handbook["travel.md"])
    question = question_add(conversation=None, user=user, text=HOTEL)
    answer = answer_create(question=question, user=user)
    assert SECRET in answer.text and answer.documents == [handbook["travel.md"].pk]
    return {"user": user, "group": travellers, "answer": answer}


def _revoke(reader, handbook):
    remove_perm("view_document", reader["group"], handbook["travel.md"])


def test_a_readable_answer_is_shown_whole(reader):
    body = api_client(reader["user"]).get(f"/api/v1/answers/{reader['answer'].pk}/").json()
    assert body["withheld"] is False
    assert SECRET in body["text"] and body["sources"][0]["title"] == "travel.md"


def test_after_access_ends_the_api_withholds_the_answer_its_sources_and_quotes(reader, handbook):
    _revoke(reader, handbook)
    client = api_client(reader["user"])
    answer = reader["answer"]

    bodies = [
        client.get(f"/api/v1/answers/{answer.pk}/"),
        client.get(f"/api/v1/conversations/{answer.conversation_id}/messages/"),
    ]

    for response in bodies:
        assert response.status_code == 200
        text = response.content.decode()
        assert SECRET not in text and "travel.md" not in text
    withheld = bodies[0].json()
    assert (withheld["withheld"], withheld["text"], withheld["sources"], withheld["cited"]) == (
        True,
        WITHHELD,
        [],
        [],
    )
    messages = bodies[1].json()["results"]
    assert [m["withheld"] for m in messages] == [False, True]
    assert messages[0]["text"] == HOTEL  # the asker's own question stays


def test_after_access_ends_the_chat_page_and_the_source_page_show_nothing_of_it(
    client, reader, handbook
):
    _revoke(reader, handbook)
    client.force_login(reader["user"])
    answer = reader["answer"]

    page = client.get(reverse("chat:conversation", args=[answer.conversation_id]))
    source = client.get(reverse("chat:source", args=[answer.pk, 1]))

    assert page.status_code == 200
    shown = page.content.decode()
    assert SECRET not in shown and "travel.md" not in shown
    assert "Withheld: a source is no longer available to you" in shown
    assert source.status_code == 404 and SECRET not in source.content.decode()


def test_a_deleted_source_withholds_the_answer_too(reader, handbook):
    document_delete(document=handbook["travel.md"])
    body = api_client(reader["user"]).get(f"/api/v1/answers/{reader['answer'].pk}/").json()
    assert body["withheld"] is True and SECRET not in json.dumps(body)


def test_follow_up_rewriting_does_not_send_a_withheld_answer_to_the_model(
    reader, handbook, llm_endpoint
):
    _revoke(reader, handbook)
    FakeOpenAI.replies = ["How far ahead must flights be booked?"]

    question_add(
        conversation=reader["answer"].conversation, user=reader["user"], text="and flights?"
    )

    sent = json.dumps(FakeOpenAI.requests[-1]["messages"])
    assert SECRET not in sent and "travel.md" not in sent
    assert WITHHELD in sent  # the model learns an answer was there, not what it said


def test_withholding_a_page_of_answers_costs_the_same_queries_for_one_or_many(
    reader, handbook, django_assert_num_queries
):
    user = reader["user"]
    for _ in range(5):
        question = question_add(conversation=reader["answer"].conversation, user=user, text=HOTEL)
        answer_create(question=question, user=user)
    _revoke(reader, handbook)
    messages = list(Message.objects.filter(conversation=reader["answer"].conversation))

    # The user's groups, then which of the answers' documents they may read.
    with django_assert_num_queries(2):
        shown = answers_withhold(user, messages)

    assert [m.withheld for m in shown if m.role == "assistant"] == [True] * 6


def test_the_feedback_admin_lists_only_feedback_on_answers_the_viewer_may_read(
    client, reader, handbook
):
    """GIVEN feedback on an answer about the travel policy and on one about the leave policy
    WHEN staff who may read every handbook document but the travel policy, and who hold
    view_feedback, open the list or search it for the travel answer's words THEN they see
    only the leave feedback."""
    feedback_record(answer=reader["answer"], user=reader["user"], helpful=True, comment="hotel")
    asker = UserFactory()
    assign_perm("view_document", asker, handbook["leave.md"])
    leave_question = question_add(conversation=None, user=asker, text="How much annual leave?")
    leave = answer_create(question=leave_question, user=asker)
    feedback_record(answer=leave, user=asker, helpful=False, comment="leave")
    staff = UserFactory(is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(codename="view_feedback"))
    for name, document in handbook.items():
        if name != "travel.md":
            assign_perm("view_document", staff, document)
    assert handbook["travel.md"].pk not in leave.documents
    client.force_login(staff)

    listing = client.get(reverse("admin:chat_feedback_changelist"))
    searched = client.get(reverse("admin:chat_feedback_changelist") + "?q=euros")

    assert [f.comment for f in listing.context["cl"].result_list] == ["leave"]
    assert SECRET not in listing.content.decode() and HOTEL not in listing.content.decode()
    assert list(searched.context["cl"].result_list) == []


def test_a_streamed_answer_shows_only_readable_sources(reader, handbook):
    """Every source of the stream (not only its first) is a document the asker may read."""
    response = api_client(reader["user"]).post(
        "/api/v1/ask/", {"question": "What are the rules on hotels, leave and laptops?",
                         "stream": True}, format="json",
    )  # fmt: skip
    events = dict(sse(response))
    documents = {source["document_id"] for source in events["sources"]["sources"]}
    assert documents == {handbook["travel.md"].pk}
    assert set(events["done"]["text"].split()) and "27 days" not in json.dumps(events)


def _follow_up(reader, text: str) -> Message:
    question = question_add(
        conversation=reader["answer"].conversation, user=reader["user"], text=text
    )
    answer_create(question=question, user=reader["user"])
    return question


def test_a_query_rewritten_from_an_answer_is_withheld_with_it(
    client, reader, handbook, llm_endpoint, settings
):
    """GIVEN a follow-up the model rewrote with the earlier answer's words, and a third
    question that, with the model gone, was joined to that search text, WHEN access to the
    answer's document ends THEN neither search text is shown (API, chat page), nor searched
    again by Regenerate, nor carried into the next question; the asker's own words stay."""
    FakeOpenAI.replies = [f"Is a refund of up to {SECRET} also paid for hostels?", "Yes [1]."]
    second = _follow_up(reader, "and hostels?")
    assert SECRET in second.query and second.derived_from == [handbook["travel.md"].pk]
    settings.LLM_API_BASE = ""
    third = _follow_up(reader, "and then for them in Paris?")
    assert SECRET in third.query and third.derived_from == second.derived_from

    _revoke(reader, handbook)

    conversation = reader["answer"].conversation_id
    api = api_client(reader["user"]).get(f"/api/v1/conversations/{conversation}/messages/")
    client.force_login(reader["user"])
    page = client.get(reverse("chat:conversation", args=[conversation]))
    for body in (api.content.decode(), page.content.decode()):
        assert SECRET not in body and "150 euros" not in body
    questions = [m for m in api.json()["results"] if m["role"] == "user"]
    assert [(q["text"], q["query"], q["withheld"]) for q in questions] == [
        (HOTEL, HOTEL, False),
        ("and hostels?", "", True),
        ("and then for them in Paris?", "", True),
    ]
    # The next question joins the previous one's own words, not its withheld search text.
    fourth = question_add(
        conversation=reader["answer"].conversation, user=reader["user"], text="and in Rome?"
    )
    assert fourth.query == "and then for them in Paris? and in Rome?" and not fourth.derived_from
    # Regenerate searches the question's own words again.
    last_answer = third.answers.get()
    client.post(reverse("chat:regenerate", args=[last_answer.pk]))
    regenerated = third.answers.order_by("-pk").first()
    assert regenerated.pk != last_answer.pk
    search = AuditEvent.objects.filter(action="ask").order_by("-pk").first()
    assert "150 euros" not in json.dumps(search.details) and SECRET not in regenerated.text


def test_the_audit_withholds_a_rewritten_query_from_an_auditor_who_cannot_read_its_source(
    reader, handbook, llm_endpoint
):
    """GIVEN an ask whose query was rewritten from an answer on the travel policy WHEN an
    auditor who may not read the policy reads the event THEN its details (the rewritten
    query) are withheld, even where nothing the ask returned is unreadable to them."""
    FakeOpenAI.replies = [f"Is a refund of up to {SECRET} also paid for hostels?", "Yes."]
    _follow_up(reader, "and hostels?")
    event = AuditEvent.objects.filter(action="ask").order_by("-pk").first()
    assert event.details["derived_from"] == [handbook["travel.md"].pk]
    assert SECRET in event.details["standalone_query"]
    auditor = UserFactory(username="auditor", is_staff=True)
    event.returned_documents = event.cited_documents = []  # only the derivation names it

    audit_redact(viewer=auditor, events=[event])

    assert event.redacted and SECRET not in json.dumps(event.details)
