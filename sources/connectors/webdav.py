"""A WebDAV folder (Nextcloud, ownCloud, SharePoint, Apache mod_dav, any DAV store), read
with webdav4: PROPFIND walks the folders (one level per request), an item's marker is its
ETag (its size and modification time where the server gives none), and only items whose
marker changed are fetched."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from webdav4.client import Client, HTTPError

from sources.connectors import Connector, ItemUnreadable, Listed, SourceUnavailable, spooled
from sources.credentials import Credentials

_TIMEOUT = httpx.Timeout(30.0)


class WebDavConnector(Connector):
    def __init__(self, location: str, credentials: Credentials):
        auth = (credentials.username, credentials.secret) if credentials.username else None
        self.location = location.rstrip("/") + "/"
        self.client = Client(self.location, auth=auth, timeout=_TIMEOUT, retry=False)

    def listing(self) -> Iterator[Listed]:
        folders = [""]
        while folders:
            folder = folders.pop()
            try:
                entries = self.client.ls(folder, detail=True)
            except (HTTPError, httpx.HTTPError, OSError) as exc:
                raise SourceUnavailable(f"cannot list {self.location}{folder}: {exc}") from exc
            for entry in sorted(entries, key=lambda entry: entry["name"]):
                key = entry["name"].strip("/")
                if entry["type"] == "directory":
                    folders.append(key)
                    continue
                marker = entry.get("etag") or f"{entry['content_length']}:{entry['modified']}"
                yield Listed(key=key, marker=marker)

    @contextmanager
    def open(self, key: str):
        with spooled() as buffer:
            try:
                self.client.download_fileobj(key, buffer)
            except (HTTPError, httpx.HTTPError, OSError) as exc:
                raise ItemUnreadable(f"cannot read {key}: {exc}") from exc
            buffer.seek(0)
            yield buffer
