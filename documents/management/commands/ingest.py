from pathlib import Path

from tqdm import tqdm

from documents.management.commands._load import LoadCommand
from documents.services.loading import LoadReport, files_collect, files_load


class Command(LoadCommand):
    help = "Load files (or the supported files of directories) into a collection."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--recursive", action="store_true", help="Descend into subdirectories.")
        super().add_arguments(parser)

    def handle(self, *args, paths, recursive, sync, **options):
        collection = self.collection(options)
        files, skipped = files_collect(paths=paths, recursive=recursive)
        report = LoadReport(skipped=skipped, queue=not sync)
        files_load(
            collection=collection,
            owner=collection.owner,
            files=tqdm(files, desc="uploading", unit="file", file=self.stderr),
            report=report,
        )
        self.process(report, sync=sync)
        self.summary(report, sync=sync)
