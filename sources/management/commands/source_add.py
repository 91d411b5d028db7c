from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from documents.models import Collection
from sources.models import Source


class Command(BaseCommand):
    help = "Add a source: where a collection's documents live (then `manage.py source_sync`)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--kind", choices=Source.Kind.values, default=Source.Kind.FOLDER)
        parser.add_argument(
            "--location", required=True, help="The folder's path, or the repository's URL."
        )
        parser.add_argument("--branch", default="main", help="Git: the branch to follow.")
        parser.add_argument("--collection", required=True, help="The target collection's name.")
        parser.add_argument("--owner", required=True, help="Username the documents are under.")
        parser.add_argument("--include", action="append", default=[], help="Glob; repeatable.")
        parser.add_argument("--exclude", action="append", default=[], help="Glob; repeatable.")

    def handle(
        self, *args, name, kind, location, branch, collection, owner, include, exclude, **options
    ):
        target = Collection.objects.filter(name=collection).first()
        if target is None:
            raise CommandError(f"No collection named {collection!r}.")
        user = User.objects.filter(username=owner).first()
        if user is None:
            raise CommandError(f"No user named {owner!r}.")
        if Source.objects.filter(name=name).exists():
            raise CommandError(f"A source named {name!r} exists.")
        Source.objects.create(
            name=name, kind=kind, location=location, branch=branch, collection=target, owner=user,
            include=include, exclude=exclude,
        )  # fmt: skip
        self.stdout.write(f"source {name!r} added; sync it with `manage.py source_sync {name}`")
