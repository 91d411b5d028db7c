"""The database backend for the embedded server (ENGINE "prodrag.embedded_db"): Django's
PostgreSQL backend, connecting where settings.EMBEDDED_DATABASE says the server listens, which
it learns (and the server starts) at this process's first connection, not at import."""

from django.conf import settings
from django.db.backends.postgresql import base
from psycopg.conninfo import conninfo_to_dict


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict:
        params = super().get_connection_params()
        server = conninfo_to_dict(settings.EMBEDDED_DATABASE.uri(params["dbname"]))
        return params | {"host": server["host"], "user": params.get("user") or server["user"]}
