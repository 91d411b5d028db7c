"""Refusals change nothing: an ask or a Regenerate refused as overloaded, throttled or invalid,
on the chat pages or the API, streamed or not, leaves every earlier row as it was (the search
runs before anything is stored)."""

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from chat.models import Conversation, Feedback, Message
from core.admission import search_admitted
from tests.api import api_client

pytestmark = pytest.mark.django_db

STREAM = {"HTTP_ACCEPT": "text/event-stream"}


@pytest.fixture
def history(client, people):
    """The member's conversation: a question, its answer and a rating of it."""
    member = people["member"]
    client.force_login(member)
    client.post(reverse("chat:ask"), {"question": "How many days of annual leave do I get?"})
    answer = Message.objects.get(role="assistant", conversation__owner=member)
    Feedback.objects.create(message=answer, user=member, helpful=True, comment="clear")
    return {
        "member": member,
        "api": api_client(member),  # its token made before anything is compared
        "answer": answer,
        "conversation": answer.conversation,
    }


def _rows() -> list:
    return [
        list(model.objects.order_by("pk").values())
        for model in (Conversation, Message, Feedback, AuditEvent)
    ]


def _attempts(client, history) -> dict:
    """Every way to ask or regenerate, each sent once: name -> response."""
    answer, conversation = history["answer"], history["conversation"]
    api = history["api"]
    follow_up = {"question": "And how many for part-timers?", "conversation": conversation.pk}
    regenerate = reverse("chat:regenerate", args=[answer.pk])
    return {
        "regenerate": client.post(regenerate),
        "regenerate streamed": client.post(regenerate, **STREAM),
        "ask": client.post(reverse("chat:ask"), follow_up),
        "ask streamed": client.post(reverse("chat:ask"), follow_up, **STREAM),
        "ask, new conversation": client.post(reverse("chat:ask"), {"question": "Parking?"}),
        "api ask": api.post("/api/v1/ask/", follow_up, format="json"),
        "api ask streamed": api.post("/api/v1/ask/", {**follow_up, "stream": True}, format="json"),
        "api ask, new conversation": api.post("/api/v1/ask/", {"question": "x?"}, format="json"),
    }


def test_an_overload_refusal_deletes_and_changes_nothing(client, history, settings):
    """GIVEN a conversation with a rated answer, WHEN every search slot is taken and the
    member regenerates or asks in any way THEN each gets 503 and no row changed: not the
    earlier question, answer or rating, not the conversation's time, no audit event."""
    settings.SEARCH_CONCURRENCY = 1
    settings.SEARCH_QUEUE_SECONDS = 0.05
    before = _rows()

    with search_admitted():
        responses = _attempts(client, history)

    assert {name: r.status_code for name, r in responses.items()} == dict.fromkeys(responses, 503)
    assert _rows() == before
    # Once a slot is free, Regenerate works and adds a second answer to the same question.
    assert client.post(reverse("chat:regenerate", args=[history["answer"].pk])).status_code == 302
    assert history["answer"].question.answers.count() == 2


def test_a_throttled_ask_changes_nothing(client, history, settings):
    settings.CHAT_RATE = "0/minute"
    before = _rows()
    answer = history["answer"]
    pages = [
        client.post(reverse("chat:regenerate", args=[answer.pk])),
        client.post(reverse("chat:ask"), {"question": "Parking?"}),
    ]
    assert [page.status_code for page in pages] == [429, 429]
    assert _rows() == before


@pytest.mark.parametrize(
    "body",
    [
        {"question": "   "},
        {"question": "x" * 4001},
        {"question": "Parking?", "scope": [987654]},
        {"question": "Parking?", "task": "poem"},
        {"question": "Parking?", "conversation": 987654},
    ],
)
def test_an_invalid_ask_stores_nothing(client, history, people, body):
    """Bad input gets a clear 4xx in the API's error shape (or the form again), and nothing
    is stored: no question, no empty conversation."""
    before = _rows()
    api = history["api"].post("/api/v1/ask/", body, format="json")
    page = client.post(reverse("chat:ask"), body)

    assert api.status_code in (400, 404) and "error" in api.json()
    assert page.status_code in (400, 404)
    assert _rows() == before
