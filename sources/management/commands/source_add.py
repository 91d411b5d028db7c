import os

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from documents.models import Collection
from sources.credentials import Credentials
from sources.models import Source
from sources.services import source_save


class Command(BaseCommand):
    help = "Add a source: where a collection's documents live (then `manage.py source_sync`)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--kind", choices=Source.Kind.values, default=Source.Kind.FOLDER)
        parser.add_argument(
            "--location", required=True, help="Where its items are (see Source.location)."
        )
        parser.add_argument("--branch", default="main", help="Git: the branch to follow.")
        parser.add_argument("--collection", required=True, help="The target collection's name.")
        parser.add_argument("--owner", required=True, help="Username the documents are under.")
        parser.add_argument("--endpoint", default="", help="S3: the service's URL.")
        parser.add_argument(
            "--host", dest="hosts", action="append", default=[],
            help="Website: a further host the crawl may follow; repeatable.",
        )  # fmt: skip
        parser.add_argument(
            "--permissions", choices=Source.PermissionMode.values,
            default=Source.PermissionMode.COLLECTION,
            help="mirror: each document's readers come from the source's ACLs.",
        )  # fmt: skip
        parser.add_argument(
            "--username", default="",
            help="The source's user name (its secret from the environment variable "
            "PRODRAG_SOURCE_SECRET, or env:NAME there to read NAME at each sync).",
        )  # fmt: skip
        parser.add_argument("--include", action="append", default=[], help="Glob; repeatable.")
        parser.add_argument("--exclude", action="append", default=[], help="Glob; repeatable.")

    def handle(
        self, *args, name, kind, location, branch, endpoint, hosts, permissions, username,
        collection, owner, include, exclude, **options,
    ):  # fmt: skip
        target = Collection.objects.filter(name=collection).first()
        if target is None:
            raise CommandError(f"No collection named {collection!r}.")
        user = User.objects.filter(username=owner).first()
        if user is None:
            raise CommandError(f"No user named {owner!r}.")
        if Source.objects.filter(name=name).exists():
            raise CommandError(f"A source named {name!r} exists.")
        source = Source(
            name=name, kind=kind, location=location, branch=branch, endpoint=endpoint,
            hosts=hosts, collection=target, owner=user, include=include, exclude=exclude,
            permission_mode=permissions,
        )  # fmt: skip
        secret = os.environ.get("PRODRAG_SOURCE_SECRET", "")
        try:
            source_save(
                source=source,
                credentials=Credentials(username=username, secret=secret),
                folders_checked=False,
            )
        except ValidationError as exc:
            reasons = (f"{field}: {' '.join(why)}" for field, why in exc.message_dict.items())
            raise CommandError("; ".join(reasons)) from exc
        self.stdout.write(f"source {name!r} added; sync it with `manage.py source_sync {name}`")
