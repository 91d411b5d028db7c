"""The chat pages through Django's test client: plain form posts (no JavaScript), the
server-sent event stream, the source view, feedback and who may see what."""

import json

import pytest
from django.urls import reverse
from guardian.shortcuts import assign_perm

from chat.models import Conversation, Feedback, Message
from tests.accounts.factories import UserFactory
from tests.api import sse
from tests.documents.factories import CollectionFactory
from tests.fake_openai import FakeOpenAI
from tests.handbook import ingest

pytestmark = pytest.mark.django_db

LEAVE = "How many days of annual leave does an employee get?"


@pytest.fixture
def staff(client, handbook):
    user = UserFactory(username="staff")
    collection = handbook["leave.md"].collection
    collection.open_to_staff = True
    collection.save()
    client.force_login(user)
    return user


def test_the_pages_need_a_signed_in_user(client):
    response = client.get(reverse("chat:home"))

    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    assert client.get("/").url == reverse("chat:home")


def test_asking_without_javascript_posts_and_shows_the_cited_answer(client, staff, handbook):
    response = client.post(reverse("chat:ask"), {"question": LEAVE, "task": "answer"})

    conversation = Conversation.objects.get(owner=staff)
    answer = conversation.messages.get(role=Message.Role.ASSISTANT)
    assert response.status_code == 302
    assert response.url == reverse("chat:conversation", args=[conversation.pk]) + f"#m{answer.pk}"
    page = client.get(response.url).content.decode()
    assert LEAVE in page and "Extractive answer" in page
    source_url = reverse("chat:source", args=[answer.pk, answer.cited[0]])
    assert f'<a class="cite" href="{source_url}#passage"' in page
    assert conversation.title == LEAVE


def test_the_source_view_shows_the_passage_highlighted_in_its_document(client, staff, handbook):
    client.post(reverse("chat:ask"), {"question": LEAVE})
    answer = Message.objects.get(role=Message.Role.ASSISTANT)

    page = client.get(reverse("chat:source", args=[answer.pk, answer.cited[0]])).content.decode()

    assert '<mark id="passage">' in page
    marked = page.split('<mark id="passage">')[1].split("</mark>")[0]
    assert "27 days of paid annual leave" in marked
    assert "Leave policy" in page and "Annual leave" in page and "Version</dt><dd>1" in page


def test_a_streamed_answer_comes_as_server_sent_events(client, staff, handbook, llm_endpoint):
    FakeOpenAI.replies = ["Every employee gets 27 days of paid annual leave [1]."]

    response = client.post(
        reverse("chat:ask"), {"question": LEAVE}, HTTP_ACCEPT="text/event-stream"
    )

    assert response["Content-Type"] == "text/event-stream"
    events = sse(response)
    kinds = [kind for kind, _ in events]
    assert kinds[:2] == ["question", "sources"] and kinds[-1] == "done"
    assert "".join(data["text"] for kind, data in events if kind == "delta") == (
        "Every employee gets 27 days of paid annual leave [1]."
    )
    done = events[-1][1]
    assert 'class="cite"' in done["html"] and f'id="m{done["id"]}"' in done["html"]
    assert Message.objects.get(pk=done["id"]).mode == Message.Mode.GENERATED


def test_bad_input_gets_a_clear_error_and_no_500(client, staff, handbook):
    empty = client.post(reverse("chat:ask"), {"question": "  "})
    foreign = client.post(reverse("chat:ask"), {"question": LEAVE, "scope": ["999999"]})
    streamed = client.post(reverse("chat:ask"), {"question": ""}, HTTP_ACCEPT="text/event-stream")

    assert empty.status_code == 400 and "This field is required" in empty.content.decode()
    assert foreign.status_code == 400 and "Select a valid choice" in foreign.content.decode()
    assert streamed.status_code == 400 and "question" in streamed.json()["errors"]
    assert not Message.objects.exists()


def test_feedback_and_regenerate_from_the_page(client, staff, handbook):
    client.post(reverse("chat:ask"), {"question": LEAVE})
    answer = Message.objects.get(role=Message.Role.ASSISTANT)

    voted = client.post(
        reverse("chat:feedback", args=[answer.pk]), {"helpful": "0", "comment": "old"}
    )
    client.post(
        reverse("chat:feedback", args=[answer.pk]),
        {"helpful": "1", "comment": "clear"},
        HTTP_ACCEPT="application/json",
    )
    again = client.post(reverse("chat:regenerate", args=[answer.pk]))

    assert voted.status_code == 302
    vote = Feedback.objects.get()
    assert (vote.helpful, vote.comment, vote.user) == (True, "clear", staff)
    assert again.status_code == 302
    assert answer.question.answers.count() == 2
    assert "You rated this helpful" in client.get(again.url).content.decode()


def test_another_users_conversation_answers_and_sources_are_not_found(client, staff, handbook):
    client.post(reverse("chat:ask"), {"question": LEAVE})
    conversation = Conversation.objects.get()
    answer = Message.objects.get(role=Message.Role.ASSISTANT)
    client.force_login(UserFactory(username="other", is_superuser=True))

    assert client.get(reverse("chat:conversation", args=[conversation.pk])).status_code == 404
    assert client.get(reverse("chat:source", args=[answer.pk, 1])).status_code == 404
    assert (
        client.post(reverse("chat:feedback", args=[answer.pk]), {"helpful": "1"}).status_code == 404
    )
    assert client.post(reverse("chat:regenerate", args=[answer.pk])).status_code == 404
    asked = client.post(reverse("chat:ask"), {"question": "Hi", "conversation": conversation.pk})
    assert asked.status_code == 404
    assert LEAVE not in client.get(reverse("chat:home")).content.decode()
    assert conversation.messages.count() == 2


def test_a_source_whose_document_became_unreadable_is_not_shown(client, staff, handbook):
    client.post(reverse("chat:ask"), {"question": LEAVE})
    answer = Message.objects.get(role=Message.Role.ASSISTANT)
    collection = handbook["leave.md"].collection
    collection.open_to_staff = False
    collection.save()

    assert client.get(reverse("chat:source", args=[answer.pk, answer.cited[0]])).status_code == 404


@pytest.mark.parametrize("stream", [False, True])
def test_a_reader_of_one_document_sees_only_it_in_the_pages(client, handbook, stream):
    """GIVEN a user granted the travel policy alone (every other handbook document unreadable)
    WHEN they ask, as a form post or streamed, about leave, passwords and hotels, and open the
    conversation, its scope choices and the cited source THEN only the travel policy's
    title and text appear."""
    from guardian.shortcuts import assign_perm

    reader = UserFactory()
    assign_perm("view_document", reader, handbook["travel.md"])
    client.force_login(reader)
    question = "How many days of annual leave, how long are passwords, what do hotels cost?"

    if stream:
        asked = client.post(
            reverse("chat:ask"), {"question": question}, HTTP_ACCEPT="text/event-stream"
        )
        events = sse(asked)
        bodies = [json.dumps(events)]
    else:
        asked = client.post(reverse("chat:ask"), {"question": question})
        bodies = []
    answer = Message.objects.get(role=Message.Role.ASSISTANT, conversation__owner=reader)
    pages = [
        client.get(reverse("chat:conversation", args=[answer.conversation_id])),
        client.get(reverse("chat:home")),
        *(
            client.get(reverse("chat:source", args=[answer.pk, source["number"]]))
            for source in answer.sources
        ),
    ]
    bodies += [page.content.decode() for page in pages]

    assert answer.sources and {s["document_id"] for s in answer.sources} == {
        handbook["travel.md"].pk
    }
    for body in bodies:
        for unreadable in ("27 days", "14 characters", "vegetarian", "leave.md", "security.md"):
            assert unreadable not in body
    assert "150 euros" in bodies[-1]


def test_the_collection_picker_is_checkboxes_counting_only_what_the_user_may_read(
    client, handbook, boss
):
    """GIVEN a user granted one document of the handbook, and the board's collection they may
    not read WHEN they open the chat THEN the handbook is a checkbox counting one document,
    the board is not offered, and the superuser's picker counts every handbook document."""
    reader = UserFactory(username="reader")
    assign_perm("view_document", reader, handbook["leave.md"])
    ingest(CollectionFactory(name="Board", owner=boss), "minutes.md", "# Minutes\n\nApproved.")
    client.force_login(reader)

    page = client.get(reverse("chat:home")).content.decode()

    assert 'type="checkbox" name="scope"' in page
    assert "Handbook (1 document)" in page
    assert "Board" not in page
    client.force_login(boss)
    everything = client.get(reverse("chat:home")).content.decode()
    assert f"Handbook ({len(handbook)} documents)" in everything
    assert "Board (1 document)" in everything
