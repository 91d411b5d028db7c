from django.core.management.base import BaseCommand

from documents.embedding import LocalEmbedder, embedder_warm


class Command(BaseCommand):
    help = (
        "Load the local embedding model and embed one text, so that its ONNX export (once per "
        "machine, a few seconds) is made now rather than while the first reader waits. "
        "`make up` and the Docker build run it; with the `openai` provider it does nothing."
    )
    requires_system_checks = []

    def handle(self, *args, **options):
        provider = embedder_warm()
        if not isinstance(provider, LocalEmbedder):
            self.stdout.write(f"{provider.model} is served by an endpoint: nothing to prepare.")
            return
        self.stdout.write(f"{provider.model}: queries run in {provider.runtime}.")
