"""Stored evaluation runs: `evaluate` keeps each full run with what it ran on, registered
sets run by name, by the admin or on their schedule, and a run that falls more than
PRODRAG_QUALITY_DROP below the previous one is a regression (log line, metric, mark)."""

import json
import logging
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from prometheus_client import REGISTRY

from documents.embedding import embedder
from documents.models import Collection, Document
from retrieval.evaluation_runs import evaluation_sets_due
from retrieval.models import EvaluationRun, EvaluationSet
from retrieval.tasks import evaluation_set_run, evaluation_sets_run_due
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db


def evaluate(*args) -> list[dict]:
    out = StringIO()
    call_command("evaluate", *args, "--json", stdout=out, stderr=StringIO())
    return [json.loads(line) for line in out.getvalue().splitlines()]


def regressions(name: str, mode: str) -> float:
    value = REGISTRY.get_sample_value(
        "prodrag_quality_regressions_total", {"set": name, "mode": mode}
    )
    return value or 0.0


def test_evaluate_registers_the_dataset_and_stores_each_run_with_what_it_ran_on(dataset, settings):
    (dense,) = evaluate(str(dataset), "--collection", "mini", "--mode", "dense")
    (fulltext,) = evaluate(str(dataset), "--collection", "mini", "--mode", "fulltext")

    evaluation_set = EvaluationSet.objects.get()
    assert (evaluation_set.name, evaluation_set.source) == (dataset.name, "beir")
    assert evaluation_set.collection.name == "mini"
    assert set(evaluation_set.queries) == {"q1", "q2", "q3"}  # the unjudged query is not kept
    runs = {run.pk: run for run in EvaluationRun.objects.all()}
    assert set(runs) == {dense["run"], fulltext["run"]}
    stored = runs[fulltext["run"]]
    assert (stored.mode, stored.queries, stored.trigger) == ("fulltext", 3, "command")
    assert stored.ndcg_at_10 == pytest.approx(fulltext["ndcg@10"], abs=1e-4)
    assert stored.recall_at_100 == pytest.approx(fulltext["recall@100"], abs=1e-4)
    assert stored.mrr_at_10 == pytest.approx(fulltext["mrr@10"], abs=1e-4)
    assert stored.latency_p50_ms == pytest.approx(fulltext["latency_ms"]["p50"], abs=0.1)
    assert stored.embedding_model == settings.EMBEDDING_MODEL
    # What embedded the queries: unquantised ONNX ("onnx"), or what this CPU falls back to.
    quantised = "" if embedder().quantize == "none" else f" {embedder().quantize}"
    assert stored.embedding_runtime == f"{embedder().runtime}{quantised}"
    assert stored.code_version  # git describe of this checkout
    assert stored.regressed_from is None


def test_no_store_and_partial_runs_store_nothing(dataset):
    (plain,) = evaluate(str(dataset), "--collection", "mini", "--no-store")
    (limited,) = evaluate(str(dataset), "--collection", "mini", "--limit", "2")
    (shared,) = evaluate(str(dataset), "--collection", "mini", "--share", "0.5")
    assert plain["run"] is limited["run"] is shared["run"] is None
    assert not EvaluationRun.objects.exists()
    assert not EvaluationSet.objects.exists()  # --no-store registers nothing either


def test_a_registered_set_runs_by_name_in_its_modes(dataset):
    evaluate(str(dataset), "--collection", "mini", "--set", "Mini drugs")
    EvaluationSet.objects.filter(name="Mini drugs").update(modes=["dense", "fulltext"])

    results = evaluate("--set", "Mini drugs")

    assert [r["mode"] for r in results] == ["dense", "fulltext"]
    assert EvaluationRun.objects.filter(evaluation_set__name="Mini drugs").count() == 3
    with pytest.raises(CommandError, match="No evaluation set named 'nope'"):
        evaluate("--set", "nope")
    with pytest.raises(CommandError, match="--set NAME"):
        evaluate()


def test_a_drop_beyond_the_threshold_is_a_regression_with_metric_log_and_mark(
    dataset, settings, caplog
):
    """GIVEN a stored hybrid run, WHEN a later run scores more than PRODRAG_QUALITY_DROP below
    it, THEN that run is marked with the previous score, the metric rises and a warning says
    so; a drop within the threshold, or in another mode, is none."""
    settings.QUALITY_DROP = 0.02
    (first,) = evaluate(str(dataset), "--collection", "mini", "--mode", "hybrid")
    evaluation_set = EvaluationSet.objects.get()
    before = regressions(evaluation_set.name, "hybrid")
    # The judgements change under the set: q1's relevant document becomes one search ranks
    # low, so the next run scores lower on the same search.
    evaluation_set.qrels["q1"] = {"d2": 1}
    evaluation_set.save()

    with caplog.at_level(logging.WARNING, logger="prodrag.quality"):
        (second,) = evaluate("--set", evaluation_set.name)

    assert second["ndcg@10"] < first["ndcg@10"] - 0.02
    run = EvaluationRun.objects.get(pk=second["run"])
    assert run.regressed_from == pytest.approx(first["ndcg@10"], abs=1e-4)
    assert regressions(evaluation_set.name, "hybrid") == before + 1
    assert f"quality regression: {evaluation_set.name} (hybrid)" in caplog.text

    # The same score again is no regression (compared with the previous run, not the best).
    (third,) = evaluate("--set", evaluation_set.name)
    assert EvaluationRun.objects.get(pk=third["run"]).regressed_from is None
    # Another mode has no previous run to fall from.
    (dense,) = evaluate("--set", evaluation_set.name, "--mode", "dense")
    assert EvaluationRun.objects.get(pk=dense["run"]).regressed_from is None
    assert regressions(evaluation_set.name, "hybrid") == before + 1


def test_a_drop_within_the_threshold_is_not_a_regression(dataset, settings):
    evaluate(str(dataset), "--collection", "mini", "--mode", "fulltext")
    evaluation_set = EvaluationSet.objects.get()
    previous = EvaluationRun.objects.get()
    settings.QUALITY_DROP = 1.0
    evaluation_set.qrels["q1"] = {"d2": 1}
    evaluation_set.save()
    (lower,) = evaluate("--set", evaluation_set.name)
    assert lower["ndcg@10"] < previous.ndcg_at_10
    assert EvaluationRun.objects.get(pk=lower["run"]).regressed_from is None


def test_scheduled_sets_run_when_due_and_sets_without_a_schedule_never(dataset):
    call_command("evaluate", str(dataset), "--collection", "mini", "--set", "scheduled",
                 "--mode", "fulltext", stdout=StringIO(), stderr=StringIO())  # fmt: skip
    call_command("evaluate", str(dataset), "--collection", "mini", "--set", "manual",
                 stdout=StringIO(), stderr=StringIO())  # fmt: skip
    scheduled = EvaluationSet.objects.get(name="scheduled")
    scheduled.schedule_hours, scheduled.modes = 24, ["fulltext", "dense"]
    scheduled.save()
    now = timezone.now()
    assert evaluation_sets_due(now) == []  # it ran a moment ago
    assert evaluation_sets_due(now + timedelta(hours=24)) == [scheduled]

    EvaluationRun.objects.update(created_at=now - timedelta(hours=25))
    assert evaluation_sets_run_due.apply().get() == 2  # both of its modes
    latest = EvaluationRun.objects.filter(evaluation_set=scheduled, trigger="schedule")
    assert sorted(latest.values_list("mode", flat=True)) == ["dense", "fulltext"]
    assert not EvaluationRun.objects.filter(evaluation_set__name="manual", trigger="schedule")
    assert evaluation_sets_run_due.apply().get() == 0  # not due again yet


def test_the_run_task_stores_runs_of_the_set_and_returns_quietly_for_a_deleted_one(dataset):
    evaluate(str(dataset), "--collection", "mini", "--set", "asked")
    asked = EvaluationSet.objects.get(name="asked")
    asked.delete()
    assert evaluation_set_run.apply(args=(asked.pk, "admin")).get() == 0
    evaluate(str(dataset), "--collection", "mini", "--set", "asked")
    asked = EvaluationSet.objects.get(name="asked")
    assert evaluation_set_run.apply(args=(asked.pk, "admin")).get() == 1
    assert asked.runs.filter(trigger="admin", mode="hybrid").count() == 1


def test_wait_refuses_to_measure_a_half_ingested_collection(dataset):
    evaluate(str(dataset), "--collection", "mini", "--set", "waits")
    Document.objects.filter(collection__name="mini", external_id="d1").update(status="pending")
    with pytest.raises(CommandError, match=r"still being ingested after 0\.1 s"):
        evaluate("--set", "waits", "--wait", "0.1")
    assert EvaluationRun.objects.filter(evaluation_set__name="waits").count() == 1


def test_sets_over_every_collection_search_all_of_them(dataset):
    """GIVEN q3's vitamin document moved to another collection, a set over every collection
    still finds it (dense search reaches every document: recall 1) where the set over "mini"
    cannot."""
    evaluate(str(dataset), "--collection", "mini", "--set", "everywhere", "--mode", "fulltext")
    evaluate(str(dataset), "--collection", "mini", "--set", "mini only", "--mode", "fulltext")
    EvaluationSet.objects.filter(name="everywhere").update(collection=None)
    mini = Collection.objects.get(name="mini")
    other = Collection.objects.create(name="other", owner=mini.owner)
    Document.objects.filter(collection=mini, external_id="d2").update(collection=other)

    (everywhere,) = evaluate("--set", "everywhere", "--mode", "dense")
    (mini_only,) = evaluate("--set", "mini only", "--mode", "dense")

    assert everywhere["recall@100"] == pytest.approx(1.0)
    assert mini_only["recall@100"] == pytest.approx(2.5 / 3, abs=1e-4)
    assert EvaluationRun.objects.get(pk=everywhere["run"]).collection is None


def test_the_sample_corpus_comes_with_questions_whose_first_runs_are_stored(settings, tmp_path):
    """What `make up` does after loading the sample: its questions become the sample set,
    measured in every mode, and each run finds the sample's answers near the top."""
    settings.VAR_DIR = tmp_path
    UserFactory(is_superuser=True)
    with pytest.raises(CommandError, match="load the sample first"):
        evaluate("--sample")
    call_command("load_sample", "--sync", stdout=StringIO(), stderr=StringIO())

    results = evaluate("--sample", "--wait", "5")

    sample = EvaluationSet.objects.get(name="Sample: Northwind questions")
    assert (sample.source, sample.collection.name) == ("sample", "Sample: Northwind handbook")
    assert len(sample.queries) == 15
    assert [r["mode"] for r in results] == ["hybrid", "dense", "fulltext"]
    assert all(r["run"] for r in results)
    scores = {r["mode"]: r["ndcg@10"] for r in results}
    assert min(scores.values()) > 0.8


def test_a_scheduled_set_that_cannot_run_is_logged_and_the_others_still_run(dataset, caplog):
    call_command("evaluate", str(dataset), "--collection", "mini", "--set", "fine",
                 stdout=StringIO(), stderr=StringIO())  # fmt: skip
    empty = Collection.objects.create(name="empty", owner=Collection.objects.get(name="mini").owner)
    EvaluationSet.objects.create(name="broken", collection=empty, source="beir",
                                 queries={"q": "x"}, qrels={"q": {"d1": 1}},
                                 modes=["fulltext"], schedule_hours=1)  # fmt: skip
    EvaluationSet.objects.filter(name="fine").update(schedule_hours=1, modes=["fulltext"])
    EvaluationRun.objects.update(created_at=timezone.now() - timedelta(hours=2))

    with caplog.at_level(logging.WARNING, logger="prodrag.quality"):
        assert evaluation_sets_run_due.apply().get() == 1

    assert "scheduled evaluation of broken not run: Collection 'empty' has no documents" in (
        caplog.text
    )
    assert EvaluationRun.objects.filter(evaluation_set__name="fine", trigger="schedule").exists()
