from django.conf import settings

from documents.management.commands._load import LoadCommand
from documents.samples import SAMPLE_COLLECTION, sample_corpus_write
from documents.services.loading import LoadReport, files_load


class Command(LoadCommand):
    help = (
        "Write the sample corpus (a made-up company handbook in every supported format) to "
        "var/sample and load it into a collection open to all staff."
    )

    default_collection = SAMPLE_COLLECTION

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(open_to_staff=True)

    def handle(self, *args, sync, **options):
        collection = self.collection(options)
        files = sample_corpus_write(directory=settings.VAR_DIR / "sample")
        report = LoadReport(queue=not sync)
        files_load(collection=collection, owner=collection.owner, files=files, report=report)
        self.process(report, sync=sync)
        self.summary(report, sync=sync)
