import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from prodrag.celery import ALIVE_INTERVAL


class Command(BaseCommand):
    help = (
        "Liveness of the Celery worker on this machine or container, for probes: exit status 0 "
        "if it touched its alive file (PRODRAG_WORKER_ALIVE_FILE) within --max-age seconds, "
        "1 otherwise."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--max-age", type=float, default=3 * ALIVE_INTERVAL)

    def handle(self, *args, max_age, **options):
        path = settings.WORKER_ALIVE_FILE
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            raise CommandError(
                f"No worker is consuming tasks here: {path} does not exist."
            ) from None
        if age > max_age:
            raise CommandError(
                f"The worker has not shown life for {age:.0f} s (limit {max_age:.0f} s): "
                "stuck, or cut off from the broker."
            )
        self.stdout.write(f"worker alive ({age:.0f} s ago)")
