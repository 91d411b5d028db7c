"""Connectors: one module per kind of source, each behind the same small protocol, so that
the sync (sources.services) knows nothing of folders, repositories or sites.

A connector lists the source's items with a marker each (what changes when the item's
content may have changed: size and modification time, an ETag, a blob id), and opens one
item's bytes. `listing` raises SourceUnavailable when the source cannot be read as a whole
(then the sync deletes nothing); `open` raises ItemUnreadable for one item (it fails alone).

A connector whose source keeps permissions per item (file shares) also reads who may read an
item (`readers`), for sources in mirror mode; ItemUnreadable there means the ACL cannot be
read, which grants nothing.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import PurePosixPath
from typing import BinaryIO


class SourceUnavailable(Exception):
    """The source cannot be listed; the message says why."""


class ItemUnreadable(Exception):
    """One item cannot be read; the message says why."""


@dataclass(frozen=True)
class Listed:
    key: str  # the item's path in the source, "/"-separated
    marker: str


@dataclass(frozen=True)
class Changes:
    """What changed since a checkpoint, for connectors that can tell (a git diff): items
    added or edited, and the keys of items removed. The rest stayed as they were."""

    changed: list[Listed]
    removed: list[str]


@dataclass(frozen=True)
class Readers:
    """Who the source lets read an item, in the source's own names: user names (or e-mail
    addresses, or SIDs), group names (or SIDs), and whether everyone with an account there
    may. Never more than the source allows: where its rules cannot be expressed as such sets
    (a user denied while a group they may be in is allowed), the sets leave out what is in
    doubt."""

    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    everyone: bool = False

    def __and__(self, other: Readers) -> Readers:
        """Those who pass both (a file's readers and its folder's traversers). A user allowed
        in one and a group in the other is left out: their membership is not known here."""
        return Readers(
            users=(self.users & other.users)
            | (self.users if other.everyone else frozenset())
            | (other.users if self.everyone else frozenset()),
            groups=(self.groups & other.groups)
            | (self.groups if other.everyone else frozenset())
            | (other.groups if self.everyone else frozenset()),
            everyone=self.everyone and other.everyone,
        )

    def as_json(self) -> dict:
        return {"users": sorted(self.users), "groups": sorted(self.groups),
                "everyone": self.everyone}  # fmt: skip


NOBODY = Readers()


class Connector:
    """What every connector is: `listing`, `open`, and these defaults."""

    # What the last listing was taken at (a commit), recorded on the items fetched from it.
    revision = ""

    def listing(self) -> Iterator[Listed]:
        raise NotImplementedError

    def open(self, key: str) -> AbstractContextManager[BinaryIO]:
        raise NotImplementedError

    def changes(self, checkpoint: dict) -> Changes | None:
        """What changed since the checkpoint, or None: list everything (`listing`)."""
        return None

    def readers(self, key: str) -> Readers:
        """Who the source lets read the item (mirror mode); ItemUnreadable grants nothing."""
        raise ItemUnreadable("this kind of source keeps no permissions per item")

    def checkpoint(self) -> dict:
        """What the next sync starts from (kept on the source after a sync that ends done)."""
        return {}

    def origin(self, item: Listed) -> str:
        """Where the source had the item's bytes, kept on the version they make: its marker
        (an ETag, size and modification time...)."""
        return f"marker {item.marker}"

    def file_name(self, key: str) -> str:
        """The item's file name, by which ingestion knows its type (asked after `open`)."""
        return PurePosixPath(key).name


def wanted(key: str, include: list[str], exclude: list[str]) -> bool:
    """Does an item's key pass the source's include and exclude glob patterns?"""
    if include and not any(fnmatchcase(key, pattern) for pattern in include):
        return False
    return not any(fnmatchcase(key, pattern) for pattern in exclude)


def spooled() -> tempfile.SpooledTemporaryFile:
    """Where a remote item's bytes are fetched to before parsing: memory up to 8 MB, then a
    temporary file."""
    return tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
