from django.conf import settings
from django.core.management.base import CommandError

from accounts.management.audited import AuditedCommand
from documents.models import Collection
from documents.selectors import documents_embedding_stale
from documents.services.index import embedding_index_ensure
from documents.services.queue import documents_reprocess


class Command(AuditedCommand):
    help = (
        "Re-embed, with the configured embedding model and quantisation, a collection's "
        "documents whose passages were embedded by another model or quantisation."
    )

    def add_arguments(self, parser):
        parser.add_argument("--collection", required=True)

    def handle(self, *args, collection, **options):
        found = Collection.objects.filter(name=collection).first()
        if found is None:
            raise CommandError(f"No collection named {collection!r}.")
        model, dimensions = settings.EMBEDDING_MODEL, settings.EMBEDDING_DIMENSIONS
        if embedding_index_ensure(model_name=model, dimensions=dimensions):
            self.stdout.write(f"Built the HNSW index for {model} ({dimensions} dimensions).")
        count = documents_reprocess(
            documents=documents_embedding_stale(collection=found),
            queue=settings.MAINTENANCE_QUEUE,
        )
        self.stdout.write(f"{count} document(s) of {collection!r} queued for re-embedding.")
