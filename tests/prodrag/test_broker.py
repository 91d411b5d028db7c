"""With no CELERY_BROKER_URL, the database itself carries Celery's messages."""

from django.conf import settings

from prodrag.celery import app


def test_default_broker_is_the_database_and_carries_a_message():
    assert settings.CELERY_BROKER_URL.startswith("sqla+postgresql+psycopg://")
    with app.connection_for_write() as connection:
        queue = connection.SimpleQueue("prodrag-test-probe")
        queue.put({"probe": 1})
        message = queue.get(timeout=10)
        message.ack()
        queue.close()
    assert message.payload == {"probe": 1}


def test_periodic_tasks_go_to_the_maintenance_queue_and_uploads_to_ingestion():
    """A large import fills "ingestion"; the stall sweep, audit retention, calibration,
    evaluation runs (scheduled or asked for in the admin), source syncs and the directory sync
    travel on "maintenance", which a worker without -Q consumes too."""

    def queue_of(task: str) -> str:
        return app.amqp.router.route({}, task)["queue"].name

    periodic = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert len(periodic) == 5 and "sources.tasks.sources_sync_due" in periodic
    assert {queue_of(task) for task in periodic} == {"maintenance"}
    assert queue_of("retrieval.tasks.evaluation_set_run") == "maintenance"
    assert queue_of("sources.tasks.source_sync_run") == "maintenance"
    assert queue_of("accounts.tasks.directory_sync_run") == "maintenance"
    assert queue_of("documents.tasks.documents_process") == "ingestion"
    assert {queue.name for queue in app.conf.task_queues} == {"ingestion", "maintenance"}
