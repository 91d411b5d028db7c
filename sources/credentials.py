"""A source's credentials (a user name and a secret: a password, a token, an access key's
secret): stored encrypted with a key derived from PRODRAG_SECRET_KEY (Fernet: AES with an
HMAC), shown nowhere, logged never. A secret may instead name an environment variable of the
worker (`env:NAME`), read when the source is synced, so that it never enters the database.

Changing PRODRAG_SECRET_KEY makes stored secrets unreadable: the source's next sync fails,
saying to enter them again."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

from sources.connectors import SourceUnavailable

ENVIRONMENT = "env:"


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    secret: str = ""

    def __repr__(self) -> str:  # never the secret, in a log or a traceback
        return f"Credentials(username={self.username!r}, secret={'***' if self.secret else ''})"


NONE = Credentials()


def _fernet() -> Fernet:
    key = hashlib.sha256(b"prodrag source credentials\0" + str(settings.SECRET_KEY).encode())
    return Fernet(base64.urlsafe_b64encode(key.digest()))


def credentials_seal(credentials: Credentials) -> str:
    """What the database keeps: empty for no credentials."""
    if not credentials.username and not credentials.secret:
        return ""
    plain = json.dumps({"username": credentials.username, "secret": credentials.secret})
    return _fernet().encrypt(plain.encode()).decode()


def credentials_open(sealed: str) -> Credentials:
    """The credentials to connect with, the environment's secret read where one is named;
    SourceUnavailable (the sync fails, deleting nothing) when they cannot be read."""
    if not sealed:
        return NONE
    try:
        values = json.loads(_fernet().decrypt(sealed.encode()))
    except InvalidToken:
        raise SourceUnavailable(
            "the source's stored credentials cannot be decrypted (PRODRAG_SECRET_KEY changed?): "
            "enter them again"
        ) from None
    secret = values["secret"]
    if secret.startswith(ENVIRONMENT):
        name = secret.removeprefix(ENVIRONMENT)
        if name not in os.environ:
            raise SourceUnavailable(f"the environment variable {name} (its secret) is not set")
        secret = os.environ[name]
    return Credentials(username=values["username"], secret=secret)


def credentials_changed(
    sealed: str, *, username: str | None = None, secret: str | None = None
) -> Credentials | None:
    """What to store when a user name or a secret is given (the other stays as stored in
    `sealed`); None when neither is (the stored credentials stay)."""
    if username is None and secret is None:
        return None
    stored = credentials_open(sealed) if sealed else NONE
    return Credentials(
        username=stored.username if username is None else username,
        secret=stored.secret if secret is None else secret,
    )


def credentials_username(sealed: str) -> str:
    """The user name alone (shown in the admin and the API; the secret never is)."""
    try:
        return credentials_open(sealed).username if sealed else ""
    except SourceUnavailable:
        return ""
