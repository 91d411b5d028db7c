"""With no CELERY_BROKER_URL, the database itself carries Celery's messages."""

from django.conf import settings
from kombu import Connection


def test_default_broker_is_the_database_and_carries_a_message():
    assert settings.CELERY_BROKER_URL.startswith("sqla+postgresql+psycopg://")
    with Connection(settings.CELERY_BROKER_URL) as connection:
        queue = connection.SimpleQueue("prodrag-test-probe")
        queue.put({"probe": 1})
        message = queue.get(timeout=10)
        message.ack()
        queue.close()
    assert message.payload == {"probe": 1}
