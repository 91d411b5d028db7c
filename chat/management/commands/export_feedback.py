from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from chat.services import feedback_export


class Command(BaseCommand):
    help = (
        "Write the answers' thumbs up/down as a BEIR-format evaluation set in DIR "
        "(queries.jsonl, corpus.jsonl, qrels/test.tsv): questions as queries, the passages "
        "each rated answer cited as judged documents (1 helpful, 0 not)."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", type=Path)

    def handle(self, *args, directory: Path, **options):
        if directory.exists() and not directory.is_dir():
            raise CommandError(f"{directory} exists and is not a directory.")
        queries, judgements = feedback_export(directory=directory)
        self.stdout.write(
            f"{queries} queries, {judgements} judged passages written to {directory}."
        )
