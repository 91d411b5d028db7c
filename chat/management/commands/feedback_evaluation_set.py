from django.core.management.base import BaseCommand, CommandError

from chat.services import feedback_evaluation_set_register
from documents.models import Collection
from retrieval.evaluation import EvaluationError


class Command(BaseCommand):
    help = (
        "Register the answers' thumbs up/down as an evaluation set NAME (replacing its "
        "judgements if it exists): questions as queries, the documents each rated answer cited "
        "as judged (relevant if helpful). Run it with `evaluate --set NAME`, or give it a "
        "schedule in the admin."
    )

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument(
            "--collection", help="Judge only this collection's documents, and search it."
        )

    def handle(self, *args, name: str, collection: str | None, **options):
        target = None
        if collection:
            target = Collection.objects.filter(name=collection).first()
            if target is None:
                raise CommandError(f"No collection named {collection!r}.")
        try:
            evaluation_set = feedback_evaluation_set_register(name=name, collection=target)
        except EvaluationError as exc:
            raise CommandError(
                f"{exc} (only answers rated helpful judge a document relevant)"
            ) from exc
        judged = sum(len(docs) for docs in evaluation_set.qrels.values())
        self.stdout.write(
            f"{evaluation_set.name}: {len(evaluation_set.queries)} queries, {judged} judged "
            f"documents; run it with: manage.py evaluate --set {evaluation_set.name!r}"
        )
