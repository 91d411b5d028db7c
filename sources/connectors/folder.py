"""A local or mounted folder: every regular file below it, by its path relative to the folder.
Symbolic links are not followed (a link could lead the sync out of the folder it was given)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sources.connectors import ItemUnreadable, Listed, SourceUnavailable


class FolderConnector:
    revision = ""

    def __init__(self, location: str):
        self.root = Path(location)

    def listing(self) -> Iterator[Listed]:
        if not self.root.is_dir():
            raise SourceUnavailable(f"{self.root} is not a readable folder.")

        def refuse(error: OSError) -> None:
            raise SourceUnavailable(f"cannot list {error.filename}: {error.strerror}")

        for directory, folders, files in os.walk(self.root, onerror=refuse):
            folders.sort()
            for name in sorted(files):
                path = Path(directory) / name
                try:
                    stat = path.lstat()
                except OSError as exc:
                    raise SourceUnavailable(f"cannot read {path}: {exc.strerror}") from exc
                if not path.is_symlink() and path.is_file():
                    key = path.relative_to(self.root).as_posix()
                    yield Listed(key=key, marker=f"{stat.st_size}:{stat.st_mtime_ns}")

    @contextmanager
    def open(self, key: str):
        path = self.root / key
        if path.is_symlink() or not path.resolve().is_relative_to(self.root.resolve()):
            raise ItemUnreadable(f"{key} leads out of the folder")
        try:
            handle = path.open("rb")
        except OSError as exc:
            raise ItemUnreadable(f"cannot read {key}: {exc.strerror}") from exc
        with handle:
            yield handle
