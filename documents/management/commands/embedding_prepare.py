from django.core.management.base import BaseCommand

from documents.embedding import LocalEmbedder, embedder_warm


class Command(BaseCommand):
    help = (
        "Load the local embedding model and embed one text, so that its ONNX variant (made and "
        "checked once per machine, in about a minute) is ready before the first reader or "
        "document waits for it. "
        "`make up` and the Docker build run it; with the `openai` provider it does nothing."
    )
    requires_system_checks = []

    def handle(self, *args, **options):
        provider = embedder_warm()
        if not isinstance(provider, LocalEmbedder):
            self.stdout.write(f"{provider.model} is served by an endpoint: nothing to prepare.")
            return
        self.stdout.write(f"{provider.describe()}.")
