"""The database backend for the embedded server (ENGINE "prodrag.embedded_db"): Django's
PostgreSQL backend, connecting where the database's EMBEDDED_SERVER (an EmbeddedServer, or an
EmbeddedStandby for a replica) says it listens, which it learns (and the server starts) at
this process's first connection, not at import."""

from django.db.backends.postgresql import base
from psycopg.conninfo import conninfo_to_dict


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict:
        params = super().get_connection_params()
        server = conninfo_to_dict(self.settings_dict["EMBEDDED_SERVER"].uri(params["dbname"]))
        return params | {"host": server["host"], "user": params.get("user") or server["user"]}
