"""Clients for the API tests, and a reader of server-sent events."""

import json
import re

from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from accounts.services import token_create


def api_client(user=None, *, scope="read", token=None):
    """A DRF test client: with `user`, authenticated by a new API token of that scope (or by
    the given raw `token`); with neither, anonymous."""
    client = APIClient()
    if user is not None:
        token = token_create(user=user, scope=scope)[1]
    if token is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def sse(response) -> list[tuple[str, dict]]:
    body = b"".join(response.streaming_content).decode()
    return [
        (re.search(r"^event: (.+)$", block, re.M).group(1),
         json.loads(re.search(r"^data: (.+)$", block, re.M).group(1)))
        for block in body.strip().split("\n\n")
    ]  # fmt: skip


def upload(client, collection, name="new.md", text="# New\n\nA new policy.", **fields):
    """POST a file to /api/v1/documents/ with the given form fields."""
    file = SimpleUploadedFile(name, text.encode())
    return client.post("/api/v1/documents/", {"file": file, "collection": collection.pk, **fields})
