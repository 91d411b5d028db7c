"""A local or mounted folder: every regular file below it, by its path relative to the folder.
Symbolic links are not followed (a link could lead the sync out of the folder it was given).

Its readers (mirror mode) are those the file's owner, group, mode bits and POSIX ACL let read
it, and who may pass through every folder above it up to the source's folder (execute).
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sources.connectors import Connector, ItemUnreadable, Listed, Readers, SourceUnavailable

READ, EXECUTE = 4, 1
# The Linux xattr form of a POSIX ACL: a version, then (tag, permissions, id) entries.
_ACL_XATTR = "system.posix_acl_access"
_ACL_VERSION = 2
_USER_OBJ, _USER, _GROUP_OBJ, _GROUP, _MASK, _OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20


class FolderConnector(Connector):
    def __init__(self, location: str):
        self.root = Path(location)
        self._traversers: dict[Path, Readers] = {}

    def _reachable(self) -> None:
        """SourceUnavailable when the folder itself is gone (an unmounted share)."""
        if not self.root.is_dir():
            raise SourceUnavailable(f"{self.root} is not a readable folder.")

    def listing(self) -> Iterator[Listed]:
        self._reachable()

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

    def readers(self, key: str) -> Readers:
        """SourceUnavailable when the folder itself is gone: that says nothing of who may
        read the file."""
        self._reachable()
        path = self.root / key
        if path.is_symlink() or not path.resolve().is_relative_to(self.root.resolve()):
            raise ItemUnreadable(f"{key} leads out of the folder")
        try:
            readers = posix_readers(path, READ)
            for folder in [path.parent, *path.parent.parents]:
                if folder not in self._traversers:  # each folder read once per connector
                    self._traversers[folder] = posix_readers(folder, EXECUTE)
                readers &= self._traversers[folder]
                if folder == self.root:
                    break
        except OSError as exc:
            raise ItemUnreadable(f"cannot read the permissions of {key}: {exc.strerror}") from exc
        return readers


def posix_readers(path: Path, bit: int) -> Readers:
    """Who the owner, group, mode bits and access ACL of `path` give `bit` (READ, EXECUTE)."""
    stat = path.stat()
    mode = stat.st_mode
    # (tag, id, bits): the mode bits are the ACL's minimal entries; the extended ACL, if any,
    # adds named users and groups and a mask (which the group bits of the mode then show).
    entries = [
        (_USER_OBJ, stat.st_uid, (mode >> 6) & 7),
        (_GROUP_OBJ, stat.st_gid, (mode >> 3) & 7),
        (_OTHER, None, mode & 7),
    ]
    mask = 7
    try:
        raw = os.getxattr(path, _ACL_XATTR, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.ENODATA, errno.ENOTSUP):
            raise
        raw = b""
    if raw:
        (version,) = struct.unpack_from("<I", raw)
        if version != _ACL_VERSION:
            raise OSError(errno.EINVAL, f"unknown ACL version {version}")
        entries = []
        for tag, bits, owner in struct.iter_unpack("<HHI", raw[4:]):
            if tag == _MASK:
                mask = bits
            elif tag in (_USER_OBJ, _GROUP_OBJ):
                entries.append((tag, stat.st_uid if tag == _USER_OBJ else stat.st_gid, bits))
            else:
                entries.append((tag, owner if tag in (_USER, _GROUP) else None, bits))
    allowed_users, denied_users, allowed_groups, denied_groups = set(), set(), set(), set()
    everyone = False
    for tag, owner, bits in entries:
        if tag in (_USER, _GROUP, _GROUP_OBJ):
            bits &= mask  # the mask caps every entry but the owner's and others'
        if tag in (_USER_OBJ, _USER):
            (allowed_users if bits & bit else denied_users).add(_user_name(owner))
        elif tag in (_GROUP_OBJ, _GROUP):
            (allowed_groups if bits & bit else denied_groups).add(_group_name(owner))
        elif tag == _OTHER:
            everyone = bool(bits & bit)
    # POSIX checks the owner and named users first: a user denied there is denied even if a
    # group of theirs (or everyone) is allowed, which sets of principals cannot say, so the
    # groups and everyone are left out. Likewise a group denied rules out everyone.
    return Readers(
        users=frozenset(allowed_users),
        groups=frozenset(allowed_groups if not denied_users else ()),
        everyone=everyone and not denied_users and not denied_groups,
    )


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid:{uid}"  # an id with no name here maps to no one


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return f"gid:{gid}"
