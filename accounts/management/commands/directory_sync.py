from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.directory_sync import directory_sync
from accounts.ldap import DirectoryUnavailable
from accounts.models import DirectorySync


class Command(BaseCommand):
    help = (
        "Mirror the LDAP / Active Directory users and groups now (the worker does it every "
        "PRODRAG_LDAP_SYNC_SECONDS)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--allow-removals",
            action="store_true",
            help="Apply the run even if it removes more than PRODRAG_LDAP_MAX_REMOVAL_SHARE.",
        )

    def handle(self, *args, allow_removals: bool, **options):
        if not settings.LDAP["url"]:
            raise CommandError("No directory is configured (PRODRAG_LDAP_URL).")
        try:
            run = directory_sync(allow_removals=allow_removals)
        except DirectoryUnavailable as exc:
            raise CommandError(f"The directory did not answer; nothing changed: {exc}") from exc
        if run.outcome == DirectorySync.Outcome.HELD:
            raise CommandError(run.error)
        self.stdout.write(
            f"{run.users_seen} users and {run.groups_seen} groups read; users: "
            f"{run.users_created} created, {run.users_updated} updated, {run.users_deactivated} "
            f"deactivated, {run.users_reactivated} reactivated; {run.groups_created} groups "
            f"created; memberships: {run.memberships_added} added, {run.memberships_removed} "
            f"removed"
            + (
                f"; skipped (local accounts of that name): {', '.join(run.conflicts)}"
                if run.conflicts
                else ""
            )
        )
