from celery import shared_task

from accounts.services import audit_purge


@shared_task
def audit_events_purge() -> int:
    return audit_purge()
