"""Tiny runs of the directory, sources and collections benchmarks (bench/directory,
bench/sources, bench/collections), so that they keep working; their figures are never timed
or judged here (docs/benchmarks.md has the real runs')."""

import subprocess
import sys

from django.conf import settings


def bench_run(tmp_path, *arguments: str) -> list[str]:
    """The benchmark's printed lines, run on a database of its own (stopped afterwards)."""
    pgdata = tmp_path / "pgdata"
    run = subprocess.run(
        [sys.executable, "-m", *arguments],
        cwd=settings.BASE_DIR,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PRODRAG_PGDATA": str(pgdata),
             "HF_HUB_OFFLINE": "1", "PRODRAG_LOG_LEVEL": "warning"},
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    try:
        assert run.returncode == 0, run.stderr[-3000:]
        return run.stdout.splitlines()
    finally:
        subprocess.run(
            [sys.executable, "-m", "prodrag.embedded_db", "stop", "--pgdata", str(pgdata)],
            cwd=settings.BASE_DIR, capture_output=True, timeout=120,
        )  # fmt: skip


def test_the_directory_benchmark_runs_at_a_tiny_size(tmp_path):
    lines = bench_run(tmp_path, "bench.directory", "--users", "40", "--groups", "10",
                      "--interval", "0.5")  # fmt: skip
    assert any(line.startswith("first sync:") and "users created 40" in line for line in lines)
    assert any(line.startswith("revocation through SCIM:") for line in lines)
    assert any(line.startswith("revocation through LDAP") for line in lines)


def test_the_sources_benchmark_runs_at_a_tiny_size(tmp_path):
    lines = bench_run(tmp_path, "bench.sources", "--files", "30", "--interval", "0.5")
    # An unchanged folder is listed (30 unchanged), git diffs (nothing to look at), then lists
    # the whole branch; nothing is parsed either way.
    for start, says in (
        ("folder re-sync, nothing changed:", "unchanged 30, versions made 0"),
        ("git re-sync, nothing changed:", "unchanged 0, versions made 0"),
        ("git re-sync listing the whole branch", "unchanged 30, versions made 0"),
    ):
        line = next((line for line in lines if line.startswith(start)), "")
        assert says in line, (start, lines)
    for kind in ("folder", "git"):
        assert any(line.startswith(f"{kind} one file edited to searchable:") for line in lines)
    assert any(line.startswith("mirror revocation") for line in lines), lines


def test_the_collections_benchmark_runs_at_a_tiny_size(tmp_path):
    """Its smallest collection (the PostgreSQL manual, fetched from Debian), 60 documents."""
    lines = bench_run(tmp_path, "bench.collections", "--only", "postgres-lead", "--variant",
                      "none", "--into", str(tmp_path / "collections"), "--documents", "60",
                      "--queries", "10")  # fmt: skip
    (row,) = [line.split() for line in lines if line.startswith("postgres-lead      none")]
    dense, fulltext, hybrid = (float(figure) for figure in row[2:5])
    assert all(0 < figure <= 1 for figure in (dense, fulltext, hybrid))
    queries = (tmp_path / "collections/postgres-lead/queries.jsonl").read_text().splitlines()
    assert len(queries) == 10
