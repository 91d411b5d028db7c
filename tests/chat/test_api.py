"""/api/v1/ask/, conversations and answers: answers rest on readable passages only; each
user's conversations are their own; feedback."""

import pytest

from chat.models import Feedback, Message
from tests.api import api_client, sse
from tests.fake_openai import FakeOpenAI

pytestmark = pytest.mark.django_db

ASK = "/api/v1/ask/"
LEAVE = "How many days of annual leave do I get?"


def test_an_answer_cites_only_what_the_asker_may_read(people):
    member = api_client(people["member"]).post(ASK, {"question": LEAVE}, format="json")
    boss = api_client(people["superuser"]).post(ASK, {"question": LEAVE}, format="json")

    assert member.status_code == boss.status_code == 201
    answer = member.json()["answer"]
    assert answer["mode"] == "extractive" and "27 days" in answer["text"]
    titles = {s["title"] for s in answer["sources"]}
    assert "leave.md" in titles and "minutes.md" not in titles  # the board's, unreadable
    assert "minutes.md" in {s["title"] for s in boss.json()["answer"]["sources"]}


def test_a_stranger_is_told_the_documents_do_not_cover_it(people):
    response = api_client(people["stranger"]).post(ASK, {"question": LEAVE}, format="json")

    answer = response.json()["answer"]
    assert answer["mode"] == "not_covered" and answer["sources"] == []


def test_a_follow_up_continues_the_askers_own_conversation_only(people):
    member = api_client(people["member"])
    first = member.post(ASK, {"question": LEAVE}, format="json").json()
    conversation = first["conversation"]

    follow_up = member.post(
        ASK, {"question": "And sick leave?", "conversation": conversation}, format="json"
    )
    intruder = api_client(people["owner"]).post(
        ASK, {"question": "And sick leave?", "conversation": conversation}, format="json"
    )
    listed = member.get(f"/api/v1/conversations/{conversation}/messages/").json()["results"]

    assert follow_up.status_code == 201 and follow_up.json()["conversation"] == conversation
    assert intruder.status_code == 404
    assert [m["role"] for m in listed] == ["user", "assistant", "user", "assistant"]
    assert api_client(people["owner"]).get("/api/v1/conversations/").json()["count"] == 0
    assert (
        api_client(people["owner"]).get(f"/api/v1/conversations/{conversation}/").status_code == 404
    )


def test_a_streamed_answer_comes_as_server_sent_events_with_its_sources(people, llm_endpoint):
    FakeOpenAI.replies = ["Every employee gets 27 days of paid annual leave [1]."]

    response = api_client(people["member"]).post(
        ASK, {"question": LEAVE, "stream": True}, format="json"
    )

    assert response["Content-Type"] == "text/event-stream"
    events = sse(response)
    kinds = [kind for kind, _ in events]
    assert kinds[:2] == ["question", "sources"] and kinds[-1] == "done"
    assert events[1][1]["sources"][0]["title"] == "leave.md"
    streamed = "".join(data["text"] for kind, data in events if kind == "delta")
    done = events[-1][1]
    assert streamed == done["text"] == "Every employee gets 27 days of paid annual leave [1]."
    assert done["mode"] == "generated" and done["cited"] == [1]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"question": ""}, "question"),
        ({"question": LEAVE, "task": "poem"}, "task"),
        ({"question": LEAVE, "scope": ["x"]}, "scope"),
    ],
)
def test_bad_questions_are_400s_naming_the_field(people, body, field):
    response = api_client(people["member"]).post(ASK, body, format="json")

    assert response.status_code == 400 and field in response.json()["error"]["fields"]


def test_a_scope_the_asker_may_not_read_is_refused_like_a_missing_one(people):
    client = api_client(people["member"])

    board = client.post(ASK, {"question": LEAVE, "scope": [people["board"].pk]}, format="json")
    missing = client.post(ASK, {"question": LEAVE, "scope": [999999]}, format="json")

    assert board.status_code == missing.status_code == 400
    assert "No such collection" in board.json()["error"]["message"]
    assert str(people["board"].pk) in board.json()["error"]["message"]


def test_feedback_on_ones_own_answer_is_stored_once_per_user(people):
    member = api_client(people["member"])
    answer = member.post(ASK, {"question": LEAVE}, format="json").json()["answer"]

    first = member.post(f"/api/v1/answers/{answer['id']}/feedback/", {"helpful": False})
    second = member.post(
        f"/api/v1/answers/{answer['id']}/feedback/", {"helpful": True, "comment": "Right."}
    )
    foreign = api_client(people["owner"]).post(
        f"/api/v1/answers/{answer['id']}/feedback/", {"helpful": True}
    )
    on_question = member.post(f"/api/v1/answers/{answer['id'] - 1}/feedback/", {"helpful": True})

    assert first.status_code == second.status_code == 201
    assert foreign.status_code == on_question.status_code == 404
    stored = Feedback.objects.get()
    assert (stored.helpful, stored.comment, stored.user) == (True, "Right.", people["member"])
    assert Message.objects.get(pk=answer["id"]).feedback.count() == 1
