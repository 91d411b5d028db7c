"""Evaluation sets from the answers' feedback, and the evaluation set admin (schedule, run
now, and who sees which set)."""

import json
from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from chat.services import answer_create, feedback_record
from retrieval.models import EvaluationRun, EvaluationSet
from retrieval.tasks import evaluation_set_run
from tests.chat.test_answers import LEAVE, ask

pytestmark = pytest.mark.django_db


def test_feedback_becomes_a_set_of_the_documents_helpful_answers_cited(handbook, boss):
    """GIVEN a helpful answer citing the leave policy and an unhelpful one, WHEN the feedback
    is registered as a set, THEN the helpful question judges the leave policy relevant (by
    file name), the question with no helpful answer is left out, and the set runs."""
    good = answer_create(question=ask(boss, LEAVE), user=boss)
    bad = answer_create(question=ask(boss, "How long must passwords be?"), user=boss)
    feedback_record(answer=good, user=boss, helpful=True)
    feedback_record(answer=bad, user=boss, helpful=False)
    out = StringIO()

    call_command("feedback_evaluation_set", "Staff ratings", "--collection", "Handbook", stdout=out)

    cited = {good.sources[n - 1]["document_id"] for n in good.cited}
    names = {d.pk: name for name, d in handbook.items()}
    assert f"Staff ratings: 1 queries, {len(cited)} judged documents" in out.getvalue()
    evaluation_set = EvaluationSet.objects.get(name="Staff ratings")
    assert evaluation_set.source == "feedback" and evaluation_set.collection.name == "Handbook"
    assert evaluation_set.queries == {f"q{good.question_id}": LEAVE}
    assert evaluation_set.qrels == {f"q{good.question_id}": {names[pk]: 1 for pk in cited}}
    assert "leave.md" in evaluation_set.qrels[f"q{good.question_id}"]

    runs = StringIO()
    call_command("evaluate", "--set", "Staff ratings", "--json", stdout=runs, stderr=StringIO())
    result = json.loads(runs.getvalue())
    assert result["ndcg@10"] > 0.9  # the cited documents rank first
    assert EvaluationRun.objects.get(pk=result["run"]).evaluation_set == evaluation_set


def test_feedback_with_nothing_helpful_is_refused_clearly(handbook, boss):
    bad = answer_create(question=ask(boss, "How long must passwords be?"), user=boss)
    feedback_record(answer=bad, user=boss, helpful=False)
    with pytest.raises(CommandError, match="no query has a relevant judgement"):
        call_command("feedback_evaluation_set", "Nothing", stdout=StringIO())
    with pytest.raises(CommandError, match="No collection named 'nope'"):
        call_command("feedback_evaluation_set", "Nothing", "--collection", "nope")
    assert not EvaluationSet.objects.exists()


@pytest.fixture
def sets(people):
    handbook = EvaluationSet.objects.create(
        name="Handbook set", collection=people["handbook"], source="beir",
        queries={"q": "leave"}, qrels={"q": {"leave.md": 1}}, modes=["fulltext"],
    )  # fmt: skip
    board = EvaluationSet.objects.create(
        name="Board set", collection=people["board"], source="beir",
        queries={"q": "leave"}, qrels={"q": {"minutes.md": 1}}, modes=["fulltext"],
    )  # fmt: skip
    return {"handbook": handbook, "board": board}


def test_the_admin_lists_sets_of_readable_collections_and_runs_managed_ones_now(
    client, people, sets, django_capture_on_commit_callbacks, monkeypatch
):
    owner = people["owner"]  # owns (manages) the handbook; may not read the board
    owner.is_staff = True
    owner.save()
    owner.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_evaluationset", "change_evaluationset"])
    )
    client.force_login(owner)
    listing = client.get(reverse("admin:retrieval_evaluationset_changelist")).content.decode()
    assert "Handbook set" in listing and "Board set" not in listing
    board_page = reverse("admin:retrieval_evaluationset_change", args=[sets["board"].pk])
    assert client.get(board_page).status_code == 302  # missing to them: back to the list

    change = reverse("admin:retrieval_evaluationset_change", args=[sets["handbook"].pk])
    refused = client.post(change, {"modes": "hybrid,nonsense", "schedule_hours": "0"})
    assert refused.status_code == 200  # the form again, with its errors
    assert "nonsense" in refused.content.decode() and "greater than or equal to 1" in (
        refused.content.decode()
    )
    response = client.post(change, {"modes": "hybrid,dense", "schedule_hours": "24"})
    assert response.status_code == 302
    sets["handbook"].refresh_from_db()
    assert (sets["handbook"].modes, sets["handbook"].schedule_hours) == (["hybrid", "dense"], 24)

    queued = []
    monkeypatch.setattr(evaluation_set_run, "delay", lambda *args: queued.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:retrieval_evaluationset_changelist"),
            {"action": "run_now", "_selected_action": [sets["handbook"].pk, sets["board"].pk]},
        )
    assert response.status_code == 302
    # Only the set they manage (the board's is not even in their list to select).
    assert queued == [(sets["handbook"].pk, "admin")]
    assert evaluation_set_run.apply(args=queued[0]).get() == 2
    runs = EvaluationRun.objects.filter(trigger="admin")
    assert sorted(runs.values_list("evaluation_set__name", "mode")) == [
        ("Handbook set", "dense"),
        ("Handbook set", "hybrid"),
    ]
