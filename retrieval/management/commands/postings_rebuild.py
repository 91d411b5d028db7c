from django.conf import settings
from django.core.management.base import BaseCommand

from retrieval.services import postings_rebuild


class Command(BaseCommand):
    help = (
        "Recompute full text's impact-ordered postings with the configured BM25 parameters "
        "(PRODRAG_BM25_K1, PRODRAG_BM25_B) and the current average passage length. Needed "
        "after changing either parameter: until then full text scores every matching passage."
    )

    def handle(self, *args, **options):
        written = postings_rebuild(k1=settings.BM25_K1, b=settings.BM25_B)
        self.stdout.write(
            f"{written:,} postings rebuilt (k1 {settings.BM25_K1}, b {settings.BM25_B})."
        )
