"""Starts and stops the test OpenID provider (this package) for a test, and changes what it
says of a person."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings

from tests.processes import free_port, test_database_url

CLIENT_ID = "prodrag"
CLIENT_SECRET = "prodrag-client-secret"


class Provider:
    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}/o"
        self.people_file = root / "people.json"
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.process: subprocess.Popen | None = None
        self.database = ""

    def start(self, people: dict, redirect_uris: list[str]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        key_file = self.root / "key.pem"
        key_file.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        clients = [
            {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": redirect_uris,
            },
            {"client_id": "another-app", "client_secret": "x" * 20, "redirect_uris": redirect_uris},
        ]
        self.people_file.write_text(json.dumps({"people": people, "clients": clients}))
        env = {
            **os.environ,
            "PROVIDER_DATABASE_URL": self._database_create(),
            "PROVIDER_KEY_FILE": str(key_file),
            "PROVIDER_ISSUER": self.issuer,
            "PROVIDER_PEOPLE": str(self.people_file),
            "PROVIDER_PORT": str(self.port),
        }
        env.pop("DJANGO_SETTINGS_MODULE", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.accounts.provider"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(self.root / "provider.log", "wb"),  # noqa: SIM115
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.root / "provider.log").read_text())
            try:
                requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=2)
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("the OpenID provider did not start within 60 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        if self.database:
            with psycopg.connect(test_database_url(), autocommit=True) as server:
                server.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            self.database = ""

    def _database_create(self) -> str:
        """A database of its own on the test server, as the URL the provider connects to."""
        self.database = f"oidc_provider_{self.port}"
        with psycopg.connect(test_database_url(), autocommit=True) as server:
            server.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            server.execute(f'CREATE DATABASE "{self.database}"')
        url = urlsplit(test_database_url())
        return urlunsplit(url._replace(path=f"/{self.database}"))

    def groups_set(self, username: str, groups) -> None:
        """What the provider's groups claim says of this person from now on."""
        directory = json.loads(self.people_file.read_text())
        directory["people"][username]["groups"] = groups
        self.people_file.write_text(json.dumps(directory))

    def settings(self, settings) -> None:
        """Point prodrag at this provider."""
        settings.OIDC_ISSUER = self.issuer
        settings.OIDC_RP_CLIENT_ID = CLIENT_ID
        settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
