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
