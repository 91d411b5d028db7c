"""`python -m prodrag.embedded_db start|stop|status`: the embedded server from the shell
(`make down` stops it)."""

import argparse
import subprocess
import sys
from pathlib import Path

import prodrag.embedded_db
from prodrag.embedded_db import embedded_server_pid, embedded_server_stop, embedded_server_uri


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m prodrag.embedded_db", description=prodrag.embedded_db.__doc__
    )
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--pgdata", type=Path, help="data directory (default: PRODRAG_PGDATA)")
    args = parser.parse_args(argv)

    from core.config import BASE_DIR, Config

    config = Config()
    pgdata = args.pgdata or Path(config["PRODRAG_PGDATA"])
    if not pgdata.is_absolute():
        pgdata = BASE_DIR / pgdata

    if args.action == "start":
        uri = embedded_server_uri(pgdata=pgdata, dbname=config["PRODRAG_DB_NAME"])
        print(f"embedded PostgreSQL running (pid {embedded_server_pid(pgdata=pgdata)}): {uri}")
    elif args.action == "stop":
        try:
            stopped = embedded_server_stop(pgdata=pgdata)
        except subprocess.CalledProcessError as exc:
            print(f"could not stop the server in {pgdata}: {exc}", file=sys.stderr)
            return 1
        print("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")
    else:
        pid = embedded_server_pid(pgdata=pgdata)
        print(f"embedded PostgreSQL running (pid {pid})" if pid else "embedded PostgreSQL stopped")
        return 0 if pid else 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
