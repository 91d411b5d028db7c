"""Run the test OpenID provider: migrate its database, create its people and the clients
of the people file, serve on PROVIDER_PORT until killed."""

import json
import os
from pathlib import Path

os.environ["DJANGO_SETTINGS_MODULE"] = "tests.accounts.provider.settings"

import django

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.servers.basehttp import run  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from oauth2_provider.models import Application  # noqa: E402

directory = json.loads(Path(os.environ["PROVIDER_PEOPLE"]).read_text())
call_command("migrate", verbosity=0, interactive=False)
for username, person in directory["people"].items():
    User.objects.create_user(username=username, password=person["password"])
for client in directory["clients"]:
    Application.objects.create(
        client_id=client["client_id"],
        client_secret=client["client_secret"],
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=" ".join(client["redirect_uris"]),
        algorithm=Application.RS256_ALGORITHM,
        skip_authorization=True,
        name=client["client_id"],
    )
run("127.0.0.1", int(os.environ["PROVIDER_PORT"]), get_wsgi_application(), threading=True)
