import json

from django.core.management.base import CommandError
from django.utils.dateparse import parse_datetime

from accounts.management.audited import AuditedCommand
from accounts.models import User
from documents.models import Collection
from retrieval.selectors import MODES, SearchError
from retrieval.services import search_perform
from retrieval.types import Filters


class Command(AuditedCommand):
    help = "Search as a user: the passages that user may read, best first, with citations."

    def add_arguments(self, parser):
        parser.add_argument("query")
        parser.add_argument("--user", required=True, help="Search as this username.")
        parser.add_argument("--mode", choices=MODES, default="hybrid")
        parser.add_argument("--k", type=int, default=5)
        parser.add_argument("--collection", action="append", default=[], help="Repeatable.")
        parser.add_argument("--content-type", action="append", default=[], dest="content_types")
        parser.add_argument("--language", action="append", default=[], dest="languages")
        parser.add_argument("--created-after", help="ISO 8601 date or time (upload time).")
        parser.add_argument("--created-before", help="ISO 8601 date or time (upload time).")
        parser.add_argument("--metadata", help='JSON the metadata must contain: {"team": "hr"}')
        parser.add_argument("--per-document", action="store_true", help="Best passage only.")
        parser.add_argument("--expand", action="store_true", help="Also search rephrasings.")

    def handle(self, *args, query, user, collection, **options):
        try:
            reader = User.objects.get(username=user)
        except User.DoesNotExist:
            raise CommandError(f"No user named {user!r}.") from None
        names = dict(Collection.objects.filter(name__in=collection).values_list("name", "pk"))
        unknown = sorted(set(collection) - set(names))
        if unknown:
            raise CommandError(f"No collection named {unknown[0]!r}.")
        try:
            filters = Filters(
                collections=tuple(names.values()),
                content_types=tuple(options["content_types"]),
                languages=tuple(options["languages"]),
                created_after=_when(options["created_after"]),
                created_before=_when(options["created_before"]),
                metadata=json.loads(options["metadata"] or "{}"),
            )
            result = search_perform(
                user=reader,
                query=query,
                k=options["k"],
                mode=options["mode"],
                filters=filters,
                collapse=options["per_document"],
                expand=options["expand"],
            )
        except (SearchError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        for warning in result.warnings:
            self.stdout.write(self.style.WARNING(warning))
        for expansion in result.expansions:
            self.stdout.write(f"also searched: {expansion}")
        if not result.passages:
            self.stdout.write(f"Nothing that {user} may read matches.")
        for number, passage in enumerate(result.passages, start=1):
            where = " > ".join(passage.heading_path) or passage.title
            pages = f", p. {passage.page_start}" if passage.page_start else ""
            self.stdout.write(
                f"[{number}] {passage.title} (v{passage.version}{pages}; {where}) "
                f"score {passage.score:.4f}\n    {passage.text[:300]}"
            )
        self.stdout.write(f"({result.seconds * 1000:.0f} ms, mode {result.mode})")


def _when(value: str | None):
    if value is None:
        return None
    parsed = parse_datetime(value) or parse_datetime(f"{value}T00:00:00+00:00")
    if parsed is None:
        raise ValueError(f"Not an ISO 8601 date or time: {value!r}.")
    return parsed
