from pathlib import Path

from django.core.management.base import CommandError

from documents.management.commands._load import LoadCommand
from documents.services.loading import LoadReport, beir_corpus_load


class Command(LoadCommand):
    help = "Load a BEIR-format corpus (corpus.jsonl) as one document per row, for evaluation."

    def add_arguments(self, parser):
        parser.add_argument("directory", type=Path, help="Holds corpus.jsonl.")
        super().add_arguments(parser)

    def handle(self, *args, directory, sync, **options):
        corpus = directory / "corpus.jsonl"
        if not corpus.is_file():
            raise CommandError(f"{corpus} does not exist.")
        collection = self.collection(options)
        report = LoadReport(queue=not sync)
        beir_corpus_load(
            collection=collection, owner=collection.owner, corpus=corpus, report=report
        )
        self.process(report, sync=sync)
        self.summary(report, sync=sync)
