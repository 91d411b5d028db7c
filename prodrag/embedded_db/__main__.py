"""`python -m prodrag.embedded_db start|stop|status`: the embedded server, and its local
standbys (PRODRAG_REPLICAS), from the shell (`make up` starts them, `make down` stops them)."""

import argparse
import subprocess
import sys
from pathlib import Path

import prodrag.embedded_db
from prodrag.embedded_db import (
    embedded_server_pid,
    embedded_server_stop,
    embedded_server_uri,
    embedded_standby_pgdata,
    embedded_standby_uri,
    embedded_standbys,
)


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

    dbname = config["PRODRAG_DB_NAME"]
    if args.action == "start":
        uri = embedded_server_uri(pgdata=pgdata, dbname=dbname)
        print(f"embedded PostgreSQL running (pid {embedded_server_pid(pgdata=pgdata)}): {uri}")
        for number in range(1, config["PRODRAG_REPLICAS"] + 1):
            standby = embedded_standby_pgdata(pgdata, number)
            uri = embedded_standby_uri(pgdata=standby, primary=pgdata, dbname=dbname)
            print(f"standby {number} streaming (pid {embedded_server_pid(pgdata=standby)}): {uri}")
    elif args.action == "stop":
        # Standbys first: a standby whose primary is gone keeps retrying to connect.
        for server in [*embedded_standbys(pgdata), pgdata]:
            try:
                stopped = embedded_server_stop(pgdata=server)
            except subprocess.CalledProcessError as exc:
                print(f"could not stop the server in {server}: {exc}", file=sys.stderr)
                return 1
            what = "embedded PostgreSQL" if server == pgdata else f"standby {server.name}"
            print(f"{what} stopped" if stopped else f"{what} was not running")
    else:
        pid = embedded_server_pid(pgdata=pgdata)
        print(f"embedded PostgreSQL running (pid {pid})" if pid else "embedded PostgreSQL stopped")
        return 0 if pid else 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
