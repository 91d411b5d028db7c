from celery import shared_task


@shared_task
def collections_calibrate() -> int:
    """Calibrate hybrid search on each collection that is new or changed by a fifth since
    (retrieval.calibration); returns how many were measured."""
    from retrieval.calibration import collection_calibrate, collections_stale

    return sum(collection_calibrate(c) is not None for c in collections_stale())
