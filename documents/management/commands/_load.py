"""What `ingest` and `import_beir` share: where to load, how to process, how to report."""

from django.conf import settings
from django.core.management.base import CommandError
from tqdm import tqdm

from accounts.management.audited import AuditedCommand
from documents.selectors import load_failures
from documents.services.ingestion import documents_ingest
from documents.services.loading import LoadReport, collection_for_loading
from documents.services.uploads import UploadOutcome


class LoadCommand(AuditedCommand):
    default_collection: str | None = None

    def add_arguments(self, parser):
        parser.add_argument(
            "--collection",
            required=self.default_collection is None,
            default=self.default_collection,
            help="Collection name (created if new).",
        )
        parser.add_argument("--owner", help="Owner of a new collection (default: first superuser).")
        parser.add_argument("--grant-group", help="Group that may read the collection's documents.")
        parser.add_argument(
            "--open-to-staff",
            action="store_true",
            help="Let every active signed-in user read the collection's documents.",
        )
        parser.add_argument(
            "--sync",
            action="store_true",
            help="Process here and now instead of queueing for the worker; the summary then "
            "includes processing failures.",
        )

    def collection(self, options):
        try:
            collection, created = collection_for_loading(
                name=options["collection"],
                owner_username=options["owner"],
                grant_group=options["grant_group"],
                open_to_staff=options["open_to_staff"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if created:
            self.stdout.write(f"Created collection {collection.name!r} (owner {collection.owner}).")
        return collection

    def process(self, report: LoadReport, *, sync: bool) -> None:
        ids = report.document_ids
        if not sync:
            report.queue_rest()
            return
        size = settings.INGEST_BATCH_SIZE
        with tqdm(total=len(ids), desc="processing", unit="doc", file=self.stderr) as bar:
            for start in range(0, len(ids), size):
                documents_ingest(document_ids=ids[start : start + size])
                bar.update(len(ids[start : start + size]))
        report.failed += load_failures(document_ids=ids)

    def summary(self, report: LoadReport, *, sync: bool) -> None:
        counts = ", ".join(
            f"{report.outcomes.get(outcome, 0)} {outcome.label.lower()}"
            for outcome in UploadOutcome
        )
        self.stdout.write(
            f"Summary: {counts}, {len(report.failed)} failed, {len(report.skipped)} skipped."
        )
        if report.document_ids and not sync:
            self.stdout.write(
                f"{len(report.document_ids)} document(s) queued; the worker processes them "
                "(status in the admin)."
            )
        for source, reason in report.failed:
            self.stdout.write(self.style.ERROR(f"  failed  {source}: {reason}"))
        for source, reason in report.skipped:
            self.stdout.write(self.style.WARNING(f"  skipped {source}: {reason}"))
