from celery import shared_task

from accounts.directory_sync import directory_sync
from accounts.ldap import DirectoryUnavailable
from accounts.services import audit_purge


@shared_task
def audit_events_purge() -> int:
    return audit_purge()


@shared_task(
    autoretry_for=(DirectoryUnavailable,),
    retry_backoff=30,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=5,
)
def directory_sync_run() -> str:
    """The scheduled LDAP sync (PRODRAG_LDAP_SYNC_SECONDS); a directory that does not answer
    is tried again with backoff, and changes nothing meanwhile."""
    return directory_sync().outcome
