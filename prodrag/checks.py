"""Start-up checks for the processes that run none themselves."""

import io

from django.core.management import call_command


def system_checks_pass() -> None:
    """Run Django's system checks (raising SystemCheckError on an error): gunicorn and the
    Celery worker run none of their own, and a process with settings that cannot work should
    stop at start with what to change, not fail its first request or task."""
    call_command("check", stdout=io.StringIO())
