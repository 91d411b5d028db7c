"""The admin's Quality page and its CSV: evaluation runs, feedback and answers per week,
knowledge gaps and ingestion, each limited to what the viewer may see."""

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from chat.gaps import gaps_grouped
from chat.models import Conversation, Feedback, Message
from chat.quality import answers_weekly, feedback_weekly, weeks_ending
from documents.models import Collection, Document
from retrieval.models import EvaluationRun, EvaluationSet
from tests.accounts.factories import UserFactory
from tests.documents.factories import DocumentFactory

pytestmark = pytest.mark.django_db

PAGE = "/admin/quality/"
BOARD_SECRET = "When is the merger with Contoso announced?"


def answered(user, text, *, mode, scope=(), documents=(), helpful=None, days_ago=0, now=None):
    """A question and its answer as the chat stores them (and a rating, if given), `days_ago`
    before `now` (default: this moment)."""
    when = (now or timezone.now()) - timedelta(days=days_ago)
    conversation = Conversation.objects.create(owner=user, title=text[:80])
    # Its reach, as an ask records it: the scope, or what the asker reads in now.
    reach = list(scope) or list(Collection.objects.visible_to(user).values_list("pk", flat=True))
    question = Message.objects.create(
        conversation=conversation, role="user", text=text, query=text, scope=list(scope),
        reach=reach,
    )  # fmt: skip
    answer = Message.objects.create(
        conversation=conversation,
        role="assistant",
        question=question,
        text="...",
        mode=mode,
        documents=list(documents),
    )
    Message.objects.filter(pk__in=[question.pk, answer.pk]).update(created_at=when)
    if helpful is not None:
        rating = Feedback.objects.create(message=answer, user=user, helpful=helpful)
        Feedback.objects.filter(pk=rating.pk).update(created_at=when)
    return answer


def staff(user):
    user.is_staff = True
    user.save()
    return user


def quality_viewer(user):
    staff(user).user_permissions.add(Permission.objects.get(codename="view_quality"))
    return user


@pytest.fixture
def asked(people):
    """Questions over the handbook (the member's) and over the board (the superuser's)."""
    handbook, board = people["handbook"], people["board"]
    leave = Document.objects.get(collection=handbook, source__endswith="leave.md")
    minutes = Document.objects.get(collection=board)
    member, boss = people["member"], people["superuser"]
    # One moment for every row and for the weeks the tests count them in: a test that read
    # the clock again after the rows were written would count them in the week before, were
    # Monday's midnight to pass in between.
    now = people["now"] = timezone.now()
    for text in (
        "Where can I park my bicycle at the office?",
        "Is there bicycle parking near the office?",
        "Where do I leave my bike at the office?",
    ):
        answered(member, text, mode="not_covered", scope=[handbook.pk], now=now)
    answered(member, "How many days of leave do I get?", mode="extractive",
             documents=[leave.pk], helpful=True, scope=[handbook.pk], now=now)  # fmt: skip
    answered(member, "Can I carry over leave days?", mode="extractive",
             documents=[leave.pk], helpful=False, now=now)  # fmt: skip
    answered(boss, BOARD_SECRET, mode="not_covered", scope=[board.pk], now=now)
    answered(boss, "What did the board approve about leave?", mode="generated",
             documents=[minutes.pk], helpful=False, scope=[board.pk], now=now)  # fmt: skip
    # Asked in every collection by someone who reads the board: the board's too.
    answered(boss, "Who is the next chief executive?", mode="not_covered", now=now)
    return people


def test_the_page_needs_the_view_quality_permission(client, people):
    client.force_login(quality_viewer(people["member"]))
    assert client.get(PAGE).status_code == 200
    plain_staff = UserFactory(username="plainstaff", is_staff=True)
    client.force_login(plain_staff)
    assert client.get(PAGE).status_code == 403
    assert client.get(reverse("admin-quality-csv", args=["gaps"])).status_code == 403
    client.force_login(people["stranger"])  # not staff: the admin's sign-in page
    assert client.get(PAGE).status_code == 302
    client.force_login(staff(people["superuser"]))
    index = client.get(reverse("admin:index")).content.decode()
    assert f'href="{PAGE}"' in index
    client.force_login(plain_staff)
    assert f'href="{PAGE}"' not in client.get(reverse("admin:index")).content.decode()


def test_a_fresh_install_shows_helpful_empty_states(client, boss):
    client.force_login(staff(boss))
    page = client.get(PAGE).content.decode()
    assert "No evaluation runs yet" in page and "manage.py evaluate" in page
    assert "No ratings in these 12 weeks" in page
    assert "No answers in these 12 weeks" in page
    assert "No unanswered or badly rated questions" in page
    assert "No documents yet" in page
    assert 'svg class="chart"' not in page


def test_gaps_group_similar_questions_largest_group_first(asked):
    gaps = gaps_grouped(asked["superuser"], since=timezone.now().date() - timedelta(days=7))

    assert [gap.count for gap in gaps] == [3, 1, 1, 1, 1]
    bicycles = gaps[0]
    assert "bicycle" in bicycles.example or "bike" in bicycles.example
    assert bicycles.not_covered == 3 and bicycles.not_helpful == 0
    assert bicycles.collections == ["Handbook"]
    examples = {gap.example for gap in gaps[1:]}
    assert examples == {
        "Can I carry over leave days?",
        BOARD_SECRET,
        "What did the board approve about leave?",
        "Who is the next chief executive?",
    }
    everywhere = next(g for g in gaps if g.example == "Who is the next chief executive?")
    assert everywhere.collections == ["Board", "Handbook"]  # all its asker could read


def test_a_viewer_never_sees_gaps_counts_or_ratings_from_collections_they_cannot_read(
    client, asked
):
    """GIVEN questions over the handbook and over the board, WHEN the handbook's reader (or
    its owner, who manages it) opens the page, THEN nothing from the board shows: no question,
    no group, no answer or rating counted; the superuser sees them all."""
    week = weeks_ending(asked["now"], 1)
    for name in ("member", "owner"):
        viewer = quality_viewer(asked[name])
        gaps = gaps_grouped(viewer, since=week[0])
        assert sorted(gap.count for gap in gaps) == [1, 3]
        client.force_login(viewer)
        page = client.get(PAGE).content.decode()
        assert "bicycle" in page
        for secret in (BOARD_SECRET, "board approve", "chief executive", "Board"):
            assert secret not in page
        gap_csv = client.get(reverse("admin-quality-csv", args=["gaps"])).content.decode()
        assert "bicycle" in gap_csv and "Contoso" not in gap_csv and "executive" not in gap_csv
        # 5 of the member's answers; one helpful and one not-helpful rating of theirs.
        assert answers_weekly(viewer, weeks=week).rows == [(week[0].isoformat(), 0, 2, 3)]
        assert feedback_weekly(viewer, weeks=week).rows == [(week[0].isoformat(), 1, 1)]
    boss = asked["superuser"]
    assert answers_weekly(boss, weeks=week).rows == [(week[0].isoformat(), 1, 2, 5)]
    assert feedback_weekly(boss, weeks=week).rows == [(week[0].isoformat(), 1, 2)]


def test_feedback_per_collection_counts_answers_that_drew_on_it(client, asked):
    boss, week = asked["superuser"], weeks_ending(asked["now"], 2)
    board = asked["board"].pk
    assert [row[1:] for row in feedback_weekly(boss, weeks=week, collection=board).rows] == [
        (0, 0),
        (0, 1),
    ]
    client.force_login(staff(boss))
    by_collection = client.get(
        reverse("admin-quality-csv", args=["feedback-by-collection"])
    ).content.decode()
    assert list(csv.reader(io.StringIO(by_collection))) == [
        ["collection", "helpful", "not helpful", "share not helpful"],
        ["Board", "0", "1", "100%"],
        ["Handbook", "1", "1", "50%"],
    ]
    page = client.get(PAGE, {"collection": board}).content.decode()
    assert "Feedback on Board" in page
    # A member may not pick the board: the page shows every collection's (theirs) instead.
    client.force_login(quality_viewer(asked["member"]))
    assert "Feedback on Board" not in client.get(PAGE, {"collection": board}).content.decode()


def test_weeks_outside_the_window_are_left_out(asked):
    member = asked["member"]
    answered(member, "An old question about parking?", mode="not_covered", days_ago=60,
             now=asked["now"])  # fmt: skip
    week = weeks_ending(asked["now"], 4)
    assert sum(row[3] for row in answers_weekly(member, weeks=week).rows) == 3
    assert len(gaps_grouped(member, since=week[0])) == 2


def test_runs_are_charted_per_set_with_regressions_marked_and_exported(client, asked):
    handbook, board = asked["handbook"], asked["board"]
    mine = EvaluationSet.objects.create(name="Handbook questions", collection=handbook,
                                        source="sample", queries={}, qrels={})  # fmt: skip
    theirs = EvaluationSet.objects.create(name="Board questions", collection=board,
                                          source="beir", queries={}, qrels={})  # fmt: skip
    common = {"queries": 5, "recall_at_100": 1, "mrr_at_10": 0.9, "latency_p50_ms": 5,
              "latency_p95_ms": 9, "embedding_model": "m", "embedding_runtime": "onnx",
              "trigger": "command"}  # fmt: skip
    for score, regressed in ((0.8, None), (0.82, None), (0.7, 0.82)):
        EvaluationRun.objects.create(evaluation_set=mine, mode="hybrid", ndcg_at_10=score,
                                     regressed_from=regressed, **common)  # fmt: skip
    EvaluationRun.objects.create(evaluation_set=mine, mode="dense", ndcg_at_10=0.6, **common)
    EvaluationRun.objects.create(evaluation_set=theirs, mode="hybrid", ndcg_at_10=0.5, **common)

    client.force_login(quality_viewer(asked["member"]))
    page = client.get(PAGE).content.decode()
    assert page.count('class="point') == 4 and page.count('class="point marked"') == 1
    assert "1 run fell more than the allowed drop" in page
    assert "Board questions" not in page
    rows = list(csv.reader(io.StringIO(
        client.get(reverse("admin-quality-csv", args=["runs"])).content.decode()
    )))  # fmt: skip
    assert rows[0][:5] == ["time (UTC)", "set", "mode", "queries", "nDCG@10"]
    assert sorted((r[1], r[2], r[4], r[13]) for r in rows[1:]) == [
        ("Handbook questions", "dense", "0.6", ""),
        ("Handbook questions", "hybrid", "0.7", "fell from 0.8200"),
        ("Handbook questions", "hybrid", "0.8", ""),
        ("Handbook questions", "hybrid", "0.82", ""),
    ]
    assert client.get(reverse("admin-quality-csv", args=["nope"])).status_code == 404


def test_ingestion_counts_and_failure_reasons_of_readable_documents_only(client, asked):
    handbook, board = asked["handbook"], asked["board"]
    for n in range(2):
        DocumentFactory(collection=handbook, status="failed", source=f"bad{n}.pdf",
                        error="The PDF has no text layer.\nDetails follow")  # fmt: skip
    DocumentFactory(collection=board, status="failed", error="Contoso-merger.pdf is encrypted")

    client.force_login(quality_viewer(asked["member"]))
    statuses = client.get(reverse("admin-quality-csv", args=["ingestion"])).content.decode()
    assert "ready,4" in statuses.replace("Ready", "ready") and "failed,2" in statuses.lower()
    reasons = client.get(reverse("admin-quality-csv", args=["failures"])).content.decode()
    assert reasons.splitlines() == ["reason,documents", "The PDF has no text layer.,2"]
    assert "Contoso" not in client.get(PAGE).content.decode()
