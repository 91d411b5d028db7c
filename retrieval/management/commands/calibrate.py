from django.core.management.base import BaseCommand, CommandError

from documents.models import Collection
from retrieval.calibration import collection_calibrate, collections_stale


class Command(BaseCommand):
    help = (
        "Calibrate hybrid search on collections, without labels: measure which share of the "
        "vector ranking finds pseudo-queries' source documents best, and store it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--collection", action="append", default=[], help="Repeatable.")
        parser.add_argument(
            "--stale", action="store_true", help="Only collections new or changed since."
        )

    def handle(self, *args, collection, stale, **options):
        if collection:
            chosen = list(Collection.objects.filter(name__in=collection))
            unknown = sorted(set(collection) - {c.name for c in chosen})
            if unknown:
                raise CommandError(f"No collection named {unknown[0]!r}.")
        else:
            chosen = collections_stale() if stale else list(Collection.objects.all())
        for target in chosen:
            calibration = collection_calibrate(target)
            if calibration is None:
                self.stdout.write(
                    f"{target.name}: too few documents of several passages to calibrate; unchanged."
                )
                continue
            shares = "  ".join(f"{share} {mrr:.3f}" for share, mrr in calibration.mrr.items())
            self.stdout.write(
                f"{target.name}: vector share {calibration.dense_weight:.1f} "
                f"({calibration.pseudo_queries} pseudo-queries; MRR@10 by share: {shares}; "
                f"the default fusion, without a share: {calibration.default_mrr:.3f})"
            )
            if target.fusion_dense_weight is not None:
                self.stdout.write(
                    f"  (search uses the share set by hand: {target.fusion_dense_weight})"
                )
