"""Retrieval quality on collections of other kinds than SciFact (bench/collections/build.py
says how each is made from Debian packages), by mode and by embedding variant.

    .venv/bin/python -m bench.collections [--only NAME ...] [--variant int8 --variant none]
        [--together] [--shares] [--into DIR] [--documents N] [--queries N]

For each collection and embedding variant (`int8`: ONNX Runtime with 8-bit weights; `none`:
ONNX Runtime in 32-bit floats, at a cosine of 0.9999 to PyTorch), a database of its own
under DIR/pgdata/ (DIR defaults to var/bench-collections, which also keeps the packages and
the collections) is migrated, the collection loaded and ingested there (`import_beir --sync`,
the first time only), and its queries scored by `manage.py evaluate`'s code (the collection
as filter): nDCG@10 of dense, full text and the default hybrid mode, each query's documents
ranked by their best passage. With --together, every collection is also loaded into one
database per variant and scored there, to show that the others beside it change nothing
(full text's statistics are per collection). With --shares, hybrid is also scored at each
fixed vector share, 0 to 1: what a share chosen on labels could give. Then the table: each
mode, the default's distance to the better single branch, what each variant costs dense
against 32-bit floats, and full text together with the others."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from bench.beir import ROOT, django_setup
from bench.collections.build import BUILDERS, CORPUS_SIZE, QUERIES, collection_build

HERE = ROOT / "var" / "bench-collections"
MODES = ("dense", "fulltext", "hybrid")


def score(names: list[str], into: Path, shares: bool) -> dict[str, dict[str, float]]:
    """nDCG@10 by mode of each collection (in BEIR format under `into`), loaded (once) under
    its name into the database this process was set up with; with `shares`, also hybrid's at
    each fixed vector share (keys "0.0" to "1.0")."""
    from django.core.management import call_command

    from accounts.models import User
    from documents.models import Collection
    from retrieval.calibration import SHARES
    from retrieval.evaluation import collection_evaluate

    call_command("migrate", verbosity=0)
    user, _ = User.objects.get_or_create(
        username="bench", defaults={"is_superuser": True, "is_staff": True}
    )
    for name in names:
        if not Collection.objects.filter(name=name).exists():
            call_command("import_beir", str(into / name), collection=name, sync=True,
                         owner="bench")  # fmt: skip

    def ndcg(name: str, mode: str, share: float | None = None) -> float:
        collection = Collection.objects.get(name=name)
        result = collection_evaluate(
            user=user, directory=into / name, collection=collection, mode=mode, share=share
        )
        return round(result.ndcg_at_10, 4)

    return {
        name: {mode: ndcg(name, mode) for mode in MODES}
        | ({f"{share:.1f}": ndcg(name, "hybrid", share) for share in SHARES} if shares else {})
        for name in names
    }


def scored(names: list[str], variant: str, database: str, into: Path, shares: bool) -> dict:
    """`score` in a child process on the database `database` under `into`/pgdata, embedding
    with `variant`; the database is stopped after."""
    pgdata = into / "pgdata" / database
    environment = os.environ | {
        "PRODRAG_PGDATA": str(pgdata),
        "PRODRAG_EMBEDDING_RUNTIME": "onnx",
        "PRODRAG_EMBEDDING_QUANTIZE": variant,
        "PRODRAG_MEDIA_ROOT": str(into / "media" / database),
    }
    try:
        child = subprocess.run(
            [sys.executable, "-m", "bench.collections", "--score", ",".join(names), "--into",
             str(into), *(["--shares"] if shares else [])],
            env=environment, cwd=ROOT, capture_output=True, text=True,
        )  # fmt: skip
    finally:
        subprocess.run(
            [sys.executable, "-m", "prodrag.embedded_db", "stop", "--pgdata", str(pgdata)],
            cwd=ROOT, capture_output=True,
        )  # fmt: skip
    if child.returncode:
        sys.exit(f"scoring {names} ({variant}) failed:\n{child.stderr[-3000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", action="append", choices=sorted(BUILDERS))
    parser.add_argument("--variant", action="append", choices=("int8", "none"))
    parser.add_argument("--into", type=Path, default=HERE)
    parser.add_argument("--documents", type=int, default=CORPUS_SIZE)
    parser.add_argument("--queries", type=int, default=QUERIES)
    parser.add_argument("--together", action="store_true")
    parser.add_argument("--shares", action="store_true")
    parser.add_argument("--score", help=argparse.SUPPRESS)  # collections, in a child
    args = parser.parse_args()
    into = args.into.resolve()
    if args.score:
        django_setup(Path(os.environ["PRODRAG_PGDATA"]))
        print(json.dumps(score(args.score.split(","), into, args.shares)), flush=True)
        return
    variants = args.variant or ["int8", "none"]
    names = args.only or list(BUILDERS)
    rows, together = {}, {}
    for name in names:
        collection_build(name, into, documents=args.documents, queries_kept=args.queries)
        for variant in variants:
            database = f"{name}-{variant}"
            rows[name, variant] = scored([name], variant, database, into, args.shares)[name]
            print(name, variant, rows[name, variant], flush=True)
    if args.together:
        for variant in variants:
            for name, row in scored(names, variant, f"together-{variant}", into, False).items():
                together[name, variant] = row
                print(name, variant, "together", row, flush=True)
    _report(rows, together)


def _report(rows: dict, together: dict) -> None:
    print(f"\n{'collection':<18} {'variant':<7} {'dense':>7} {'fulltext':>8} {'hybrid':>7} "
          f"{'hybrid - better':>15} {'dense - none':>12} {'fulltext together':>17}")  # fmt: skip
    for (name, variant), row in rows.items():
        better = max(row["dense"], row["fulltext"])
        full = rows.get((name, "none"), {}).get("dense")
        cost = f"{row['dense'] - full:+.4f}" if full is not None else "-"
        beside = together.get((name, variant), {}).get("fulltext")
        beside = f"{beside:.4f}" if beside is not None else "-"
        print(f"{name:<18} {variant:<7} {row['dense']:>7.4f} {row['fulltext']:>8.4f} "
              f"{row['hybrid']:>7.4f} {row['hybrid'] - better:>+15.4f} {cost:>12} "
              f"{beside:>17}")  # fmt: skip
    for (name, variant), row in rows.items():
        fixed = {key: value for key, value in row.items() if key not in MODES}
        if fixed:
            best = max(fixed, key=fixed.get)
            print(
                f"{name} {variant}: hybrid at each fixed vector share "
                + " ".join(f"{key} {value:.4f}" for key, value in fixed.items())
                + f"; best {best} ({fixed[best]:.4f}), the default {row['hybrid']:.4f}"
            )


if __name__ == "__main__":
    main()
