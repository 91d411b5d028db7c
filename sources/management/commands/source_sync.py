from django.core.management.base import BaseCommand, CommandError

from sources.models import Source, SourceRun
from sources.services import source_sync


class Command(BaseCommand):
    help = "Sync a source now: its new, edited, moved and deleted items reach its collection."

    def add_arguments(self, parser):
        parser.add_argument("name", help="The source's name.")
        parser.add_argument(
            "--allow-deletions",
            action="store_true",
            help="Delete what is gone even beyond the source's max deletion share.",
        )

    def handle(self, *args, name: str, allow_deletions: bool, **options):
        source = Source.objects.filter(name=name).first()
        if source is None:
            raise CommandError(f"No source named {name!r}.")
        run = source_sync(source=source, allow_deletions=allow_deletions)
        if run is None:
            raise CommandError(f"A sync of {name!r} is running; try again when it ends.")
        self.stdout.write(
            f"{run.seen} items: {run.added} added, {run.changed} changed, {run.unchanged} "
            f"unchanged, {run.deleted} deleted, {run.failed} failed"
        )
        for key, reason in run.errors:
            self.stdout.write(f"  failed: {key}: {reason}")
        if run.outcome in (SourceRun.Outcome.FAILED, SourceRun.Outcome.HELD):
            raise CommandError(run.error)
