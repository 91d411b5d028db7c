import json
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from documents.models import Collection
from retrieval.evaluation import EvaluationError, beir_queries_read, judgements_evaluate
from retrieval.evaluation_runs import (
    collection_settled,
    evaluation_set_from_beir,
    evaluation_set_sample,
    evaluation_store,
    evaluator,
)
from retrieval.models import EvaluationRun, EvaluationSet
from retrieval.selectors import MODES, SearchError
from retrieval.types import HYBRID

# Seconds between checks of --wait.
WAIT_STEP = 2


class Command(BaseCommand):
    help = (
        "Score retrieval on judged queries: a BEIR-format dataset (queries.jsonl, "
        "qrels/test.tsv) against a collection, or a registered evaluation set (--set). Prints "
        "nDCG@10, recall@100, MRR@10 and latency, and stores the run, which the admin's "
        "Quality page charts (a dataset is registered as a set named after its folder)."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", type=Path, nargs="?")
        parser.add_argument("--collection", help="With a directory: the collection it searches.")
        parser.add_argument(
            "--set",
            dest="set_name",
            help="With a directory: register it under this name (default: the folder's); "
            "alone: run this registered set.",
        )
        parser.add_argument(
            "--mode",
            choices=MODES,
            action="append",
            help="Repeatable (default: hybrid for a directory, the set's modes for --set).",
        )
        parser.add_argument(
            "--sample",
            action="store_true",
            help="Register and run the sample corpus's questions (after manage.py load_sample).",
        )
        parser.add_argument("--k", type=int, default=100, help="Documents ranked per query.")
        parser.add_argument("--limit", type=int, help="Only the first N judged queries.")
        parser.add_argument(
            "--share",
            type=float,
            help="Vector share of hybrid fusion for this run, 0 to 1 (default: the "
            "collection's, set by hand or calibrated).",
        )
        parser.add_argument(
            "--no-store",
            action="store_true",
            help="Print only. Runs with --k, --limit or --share are never stored: they "
            "would not compare with the others.",
        )
        parser.add_argument(
            "--wait",
            type=float,
            default=0,
            metavar="SECONDS",
            help="First wait up to this long for the collection's documents to be ingested.",
        )
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="Print one JSON object per mode."
        )

    def handle(self, *args, directory, collection, set_name, mode, k, limit, share, **options):
        if options["sample"]:
            try:
                set_name = evaluation_set_sample().name
            except EvaluationError as exc:
                raise CommandError(str(exc)) from exc
        if share is not None and not 0 <= share <= 1:
            raise CommandError(f"--share must be between 0 and 1, got {share}.")
        store = not options["no_store"] and k == 100 and limit is None and share is None
        try:
            evaluation_set, queries, qrels, target = self._judgements(
                directory, collection, set_name, store=store
            )
            user = evaluator()
            self._wait(target, options["wait"])
            modes = mode or (evaluation_set.modes if evaluation_set and not directory else None)
            for each in modes or [HYBRID]:
                with tqdm(desc=each, unit="query", file=self.stderr, disable=None) as bar:
                    result = judgements_evaluate(
                        user=user,
                        name=evaluation_set.name if evaluation_set else directory.resolve().name,
                        queries=queries,
                        qrels=qrels,
                        collection=target,
                        mode=each,
                        k=k,
                        limit=limit,
                        share=share,
                        progress=lambda done: bar.update(1),
                    )
                run = None
                if store:
                    run = evaluation_store(
                        evaluation_set=evaluation_set,
                        evaluation=result,
                        trigger=EvaluationRun.Trigger.COMMAND,
                    )
                self._print(result, run, as_json=options["as_json"])
        except (EvaluationError, SearchError) as exc:
            raise CommandError(str(exc)) from exc

    def _judgements(self, directory, collection, set_name, *, store):
        """(the set, its queries, its judgements, the collection searched)."""
        if directory is None:
            if not set_name:
                raise CommandError("Give a dataset directory and --collection, or --set NAME.")
            evaluation_set = (
                EvaluationSet.objects.select_related("collection").filter(name=set_name).first()
            )
            if evaluation_set is None:
                raise CommandError(f"No evaluation set named {set_name!r}.")
            return (
                evaluation_set,
                evaluation_set.queries,
                evaluation_set.qrels,
                evaluation_set.collection,
            )
        if not collection:
            raise CommandError("A dataset directory needs --collection.")
        try:
            target = Collection.objects.get(name=collection)
        except Collection.DoesNotExist:
            raise CommandError(f"No collection named {collection!r}.") from None
        if not store:
            queries, qrels = beir_queries_read(directory)
            return None, queries, qrels, target
        evaluation_set = evaluation_set_from_beir(
            directory=directory, collection=target, name=set_name
        )
        return evaluation_set, evaluation_set.queries, evaluation_set.qrels, target

    def _wait(self, collection, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not collection_settled(collection):
            if time.monotonic() >= deadline:
                if seconds:
                    raise CommandError(
                        f"Documents still being ingested after {seconds:g} s; not evaluated."
                    )
                self.stderr.write("Note: some documents are still being ingested.")
                return
            time.sleep(WAIT_STEP)

    def _print(self, result, run, *, as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps(result.as_json() | {"run": run and run.pk}))
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
        if run is None:
            self.stdout.write("  (not stored)")
        elif run.regressed_from is not None:
            self.stdout.write(
                f"  stored as run {run.pk}: REGRESSION, nDCG@10 was {run.regressed_from:.4f} "
                "in the previous run"
            )
        else:
            self.stdout.write(f"  stored as run {run.pk}")
