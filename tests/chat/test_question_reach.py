"""A question belongs to the collections it could draw on when it was asked (Message.reach):
the Quality page, its CSVs and the feedback admin show it only to viewers who may read in all
of them, whatever happens to its asker afterwards."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from guardian.shortcuts import assign_perm, remove_perm

from accounts.models import User
from chat.models import Feedback, Message
from chat.selectors import answers_countable_by, feedback_visible_to
from tests.accounts.factories import GroupFactory, UserFactory
from tests.api import api_client

pytestmark = pytest.mark.django_db

TAKEOVER = "When will the takeover of Fabrikam by Northwind be announced?"


def _quality_viewer(user: User) -> User:
    user.is_staff = True
    user.save()
    for codename in ("view_quality", "view_feedback"):
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return User.objects.get(pk=user.pk)  # permission cache cleared


@pytest.fixture
def board_question(people):
    """A board member (through the "directors" group) asks in all collections, gets "not
    covered" and rates it down; the handbook's owner may see the Quality page and feedback."""
    directors = GroupFactory(name="directors")
    assign_perm("view_document", directors, people["board"])
    director = UserFactory(username="d.irector", first_name="Dana")
    director.groups.add(directors)
    asked = api_client(director).post("/api/v1/ask/", {"question": TAKEOVER}, format="json")
    assert asked.status_code == 201, asked.content
    answer = Message.objects.get(pk=asked.json()["answer"]["id"])
    assert answer.mode == Message.Mode.NOT_COVERED and answer.documents == []
    assert answer.question.reach == [people["board"].pk]
    Feedback.objects.create(message=answer, user=director, helpful=False, comment="Fabrikam?")
    return {
        **people,
        "director": director,
        "directors": directors,
        "viewer": _quality_viewer(people["owner"]),
        "answer": answer,
    }


def _leave(world, how: str) -> None:
    director = world["director"]
    if how == "deactivated":
        director.is_active = False
        director.save()
    elif how == "left the group":
        director.groups.remove(world["directors"])
    elif how == "grant revoked":
        remove_perm("view_document", world["directors"], world["board"])
    elif how == "deleted":
        director.delete()


def _shown_to(client, viewer) -> str:
    """Every place the Quality page and the feedback admin could show the question."""
    client.force_login(viewer)
    bodies = [client.get("/admin/quality/").content.decode()]
    for table in ("gaps", "answers", "feedback", "feedback-by-collection"):
        bodies.append(client.get(reverse("admin-quality-csv", args=[table])).content.decode())
    bodies.append(client.get(reverse("admin:chat_feedback_changelist")).content.decode())
    bodies.append(
        client.get(reverse("admin:chat_feedback_changelist"), {"q": "takeover"}).content.decode()
    )
    return "\n".join(bodies)


@pytest.mark.parametrize(
    "how", ["still a member", "deactivated", "left the group", "grant revoked", "deleted"]
)
def test_a_board_question_stays_with_the_board_whatever_happens_to_its_asker(
    client, board_question, how
):
    """GIVEN a board member's "not covered" question asked in all collections, WHEN they are
    deactivated, leave the group, lose the grant or are deleted, THEN a viewer who reads only
    the handbook sees nothing of it: no question, no comment, no asker, no count."""
    _leave(board_question, how)
    viewer = board_question["viewer"]

    shown = _shown_to(client, viewer)

    for secret in ("Fabrikam", "Northwind", "d.irector", "Dana"):
        assert secret not in shown
    assert not answers_countable_by(viewer).filter(pk=board_question["answer"].pk).exists()
    assert not feedback_visible_to(viewer).exists()
    # The answers table counts none of it: no "not covered" answer at all for this viewer.
    answers_csv = client.get(reverse("admin-quality-csv", args=["answers"])).content.decode()
    assert all(line.endswith(",0") for line in answers_csv.splitlines()[1:])


def test_a_viewer_who_reads_every_collection_it_reached_sees_it(client, board_question):
    """The other side: the board's readers see the question, its rating and comment."""
    viewer = board_question["viewer"]
    assign_perm("view_document", viewer, board_question["board"])

    shown = _shown_to(client, viewer)

    assert "Fabrikam" in shown
    assert feedback_visible_to(viewer).count() == 1


def test_a_question_asked_in_the_handbook_alone_is_the_handbook_managers(client, board_question):
    """Reach is the scope when one was chosen: a handbook question by the same board member
    is shown to the handbook's manager, after the asker left too."""
    director = board_question["director"]
    assign_perm("view_document", director, board_question["handbook"])
    handbook = board_question["handbook"].pk
    body = {"question": "Where do I park my bicycle at the office?", "scope": [handbook]}
    answer = api_client(director).post("/api/v1/ask/", body, format="json").json()["answer"]
    assert Message.objects.get(pk=answer["id"]).question.reach == [handbook]
    _leave(board_question, "deactivated")

    shown = _shown_to(client, board_question["viewer"])

    assert "bicycle" in shown and "Fabrikam" not in shown


def test_a_question_of_unknown_reach_is_for_unrestricted_viewers_only(board_question):
    """Questions stored before reach was recorded, had the migration not filled them, or
    written by code that forgot it: nobody but a superuser sees them."""
    Message.objects.filter(role="user").update(reach=None)
    assert not answers_countable_by(board_question["viewer"]).exists()
    assert answers_countable_by(board_question["superuser"]).count() == 1
