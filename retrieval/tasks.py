from celery import shared_task


@shared_task
def collections_calibrate() -> int:
    """Calibrate hybrid search on each collection that is new or changed by a fifth since
    (retrieval.calibration); returns how many were measured."""
    from retrieval.calibration import collection_calibrate, collections_stale

    return sum(collection_calibrate(c) is not None for c in collections_stale())


@shared_task
def evaluation_set_run(evaluation_set_id: int, trigger: str) -> int:
    """Run an evaluation set in its modes and store the runs (retrieval.evaluation_runs);
    returns how many were stored, 0 if the set is gone."""
    from retrieval.evaluation_runs import evaluation_set_run as run
    from retrieval.models import EvaluationSet

    evaluation_set = EvaluationSet.objects.filter(pk=evaluation_set_id).first()
    if evaluation_set is None:
        return 0
    return len(run(evaluation_set=evaluation_set, trigger=trigger))


@shared_task
def evaluation_sets_run_due() -> int:
    """Run the evaluation sets whose schedule is due, one after the other; returns how many
    runs were stored. A set that cannot run (its collection emptied, no superuser) is logged
    and left for its next turn; the others still run."""
    import logging

    from django.utils import timezone

    from retrieval.evaluation import EvaluationError
    from retrieval.evaluation_runs import evaluation_set_run as run
    from retrieval.evaluation_runs import evaluation_sets_due
    from retrieval.models import EvaluationRun
    from retrieval.selectors import SearchError

    stored = 0
    for due in evaluation_sets_due(timezone.now()):
        try:
            stored += len(run(evaluation_set=due, trigger=EvaluationRun.Trigger.SCHEDULE))
        except (EvaluationError, SearchError) as error:
            logging.getLogger("prodrag.quality").warning(
                "scheduled evaluation of %s not run: %s", due.name, error
            )
    return stored
