import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.liveness import ALIVE_INTERVAL

# Beat ticks at least every beat_max_loop_interval (Celery's default: 300 s).
BEAT_MAX_AGE = 2 * 300


class Command(BaseCommand):
    help = (
        "Liveness of the Celery worker (or with --beat, of Celery beat) on this machine or "
        "container, for probes: exit status 0 if it touched its alive file "
        "(PRODRAG_WORKER_ALIVE_FILE, PRODRAG_BEAT_ALIVE_FILE) within --max-age seconds, 1 "
        "otherwise."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--beat", action="store_true", help="check Celery beat instead")
        parser.add_argument("--max-age", type=float)

    def handle(self, *args, beat, max_age, **options):
        if beat:
            path, what, limit = settings.BEAT_ALIVE_FILE, "beat", BEAT_MAX_AGE
        else:
            path, what, limit = settings.WORKER_ALIVE_FILE, "worker", 3 * ALIVE_INTERVAL
        limit = max_age or limit
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            raise CommandError(f"No {what} is running here: {path} does not exist.") from None
        if age > limit:
            raise CommandError(
                f"The {what} has not shown life for {age:.0f} s (limit {limit:.0f} s): "
                "stuck, or cut off from the broker."
            )
        self.stdout.write(f"{what} alive ({age:.0f} s ago)")
