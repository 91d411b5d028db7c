from django.conf import settings
from django.core.management.base import CommandError

from accounts.management.audited import AuditedCommand
from documents.models import Collection, Document
from documents.services.queue import documents_reprocess


class Command(AuditedCommand):
    help = (
        "Process a collection's documents again (after a change of chunking or parser), or with "
        "--failed only its failed ones."
    )

    def add_arguments(self, parser):
        parser.add_argument("--collection", required=True)
        parser.add_argument("--failed", action="store_true", help="Only failed documents.")

    def handle(self, *args, collection, failed, **options):
        if not Collection.objects.filter(name=collection).exists():
            raise CommandError(f"No collection named {collection!r}.")
        documents = Document.objects.filter(collection__name=collection)
        if failed:
            documents = documents.filter(status=Document.Status.FAILED)
        # A whole collection is maintenance; a retry of its failures is ingestion's.
        queue = settings.INGESTION_QUEUE if failed else settings.MAINTENANCE_QUEUE
        count = documents_reprocess(documents=documents, queue=queue)
        self.stdout.write(f"{count} document(s) of {collection!r} queued for processing.")
