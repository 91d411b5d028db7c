"""A tiny run of the directory benchmark (bench/directory), so that it keeps working; its
figures are never timed here (docs/benchmarks.md has the real run's)."""

import subprocess
import sys

from django.conf import settings


def test_the_directory_benchmark_runs_at_a_tiny_size(tmp_path):
    pgdata = tmp_path / "pgdata"
    run = subprocess.run(
        [sys.executable, "-m", "bench.directory", "--users", "40", "--groups", "10",
         "--interval", "0.5"],
        cwd=settings.BASE_DIR,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PRODRAG_PGDATA": str(pgdata),
             "HF_HUB_OFFLINE": "1", "PRODRAG_LOG_LEVEL": "warning"},
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    try:
        assert run.returncode == 0, run.stderr[-3000:]
        lines = run.stdout.splitlines()
        assert any(line.startswith("first sync:") and "users created 40" in line for line in lines)
        assert any(line.startswith("revocation through SCIM:") for line in lines)
        assert any(line.startswith("revocation through LDAP") for line in lines)
    finally:
        subprocess.run(
            [sys.executable, "-m", "prodrag.embedded_db", "stop", "--pgdata", str(pgdata)],
            cwd=settings.BASE_DIR, capture_output=True, timeout=120,
        )  # fmt: skip
