"""Connectors: one module per kind of source, each behind the same small protocol, so that
the sync (sources.services) knows nothing of folders, repositories or sites.

A connector lists the source's items with a marker each (what changes when the item's
content may have changed: size and modification time, an ETag, a blob id), and opens one
item's bytes. `listing` raises SourceUnavailable when the source cannot be read as a whole
(then the sync deletes nothing); `open` raises ItemUnreadable for one item (it fails alone).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import BinaryIO, Protocol


class SourceUnavailable(Exception):
    """The source cannot be listed; the message says why."""


class ItemUnreadable(Exception):
    """One item cannot be read; the message says why."""


@dataclass(frozen=True)
class Listed:
    key: str  # the item's path in the source, "/"-separated
    marker: str


class Connector(Protocol):
    # What the last listing was taken at (a commit), recorded on the items fetched from it.
    revision: str

    def listing(self) -> Iterator[Listed]: ...

    def open(self, key: str) -> AbstractContextManager[BinaryIO]: ...


def wanted(key: str, include: list[str], exclude: list[str]) -> bool:
    """Does an item's key pass the source's include and exclude glob patterns?"""
    if include and not any(fnmatchcase(key, pattern) for pattern in include):
        return False
    return not any(fnmatchcase(key, pattern) for pattern in exclude)
