import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from accounts.models import User
from documents.models import Collection
from retrieval.evaluation import EvaluationError, collection_evaluate
from retrieval.selectors import MODES, SearchError


class Command(BaseCommand):
    help = (
        "Score retrieval on a BEIR-format dataset (queries.jsonl, qrels/test.tsv) against a "
        "collection loaded with import_beir: nDCG@10, recall@100, MRR@10 and latency."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", type=Path)
        parser.add_argument("--collection", required=True)
        parser.add_argument("--mode", choices=MODES, default="hybrid")
        parser.add_argument("--k", type=int, default=100, help="Documents ranked per query.")
        parser.add_argument("--limit", type=int, help="Only the first N judged queries.")
        parser.add_argument(
            "--share",
            type=float,
            help="Vector share of hybrid fusion for this run, 0 to 1 (default: the "
            "collection's, set by hand or calibrated).",
        )
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="Print one JSON object."
        )

    def handle(self, *args, directory, collection, mode, k, limit, share, as_json, **options):
        if share is not None and not 0 <= share <= 1:
            raise CommandError(f"--share must be between 0 and 1, got {share}.")
        try:
            target = Collection.objects.get(name=collection)
        except Collection.DoesNotExist:
            raise CommandError(f"No collection named {collection!r}.") from None
        user = User.objects.filter(is_superuser=True, is_active=True).order_by("pk").first()
        if user is None:
            raise CommandError("Evaluation runs as a superuser; create one first.")
        with tqdm(desc=mode, unit="query", file=self.stderr, disable=None) as bar:
            try:
                result = collection_evaluate(
                    user=user,
                    directory=directory,
                    collection=target,
                    mode=mode,
                    k=k,
                    limit=limit,
                    share=share,
                    progress=lambda done: bar.update(1),
                )
            except (EvaluationError, SearchError) as exc:
                raise CommandError(str(exc)) from exc
        if as_json:
            self.stdout.write(json.dumps(result.as_json()))
            return
        self.stdout.write(
            f"{result.dataset} ({result.queries} queries), mode {result.mode}:\n"
            f"  nDCG@10    {result.ndcg_at_10:.4f}\n"
            f"  recall@100 {result.recall_at_100:.4f}\n"
            f"  MRR@10     {result.mrr_at_10:.4f}\n"
            f"  latency    p50 {result.latency_p50_ms:.1f} ms, p95 {result.latency_p95_ms:.1f} ms"
        )
        if result.fusion:
            fusion = result.fusion
            share = fusion["dense_share"]
            share = "per query" if share is None else f"{share:.2f}"
            self.stdout.write(
                f"  fusion     {fusion['method']}, vector share {share} ({fusion['source']}); "
                f"calibrated share {fusion['calibrated_share']}"
            )
            if used := fusion["shares_used"]:
                self.stdout.write(
                    f"  shares used by the queries' best passages: median {used['p50']}, "
                    f"10th to 90th percentile {used['p10']} to {used['p90']}"
                )
