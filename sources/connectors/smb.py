"""An SMB/CIFS share (Windows file servers, Samba, NAS boxes), read with pysmb over direct TCP
(port 445 unless the location names another): every file below smb://server[:port]/share/folder,
its marker its size and last write time.

Its readers (mirror mode) come from each file's NT ACL (the DACL of its security
descriptor): the SIDs its allow entries give read access, which map to prodrag users and
groups through the directory (a directory identity or group whose stable id is that SID);
Everyone, Authenticated Users and the share's Users stand for every staff member. A deny
entry for reading keeps the allowed users it does not name and drops the groups (whose
members are not known here); a DACL that is absent (a file open to all, in Windows' rules)
or cannot be read grants nothing. Windows' traverse-checking bypass, on by default, makes
the folders' ACLs irrelevant to reading a file: they are not read.

The share's own permissions are a second gate (on Windows and Samba alike): a file's readers
are those its ACL and the share's let read (Readers' `&`). They are read once a pass, with
impacket's srvsvc client (NetrShareGetInfo, level 502), which servers answer only to
their administrators: an account that is not one reads no share permissions, and its
files then grant nothing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import unquote, urlsplit

from impacket.dcerpc.v5 import srvs, transport
from impacket.dcerpc.v5.rpcrt import DCERPCException
from impacket.smbconnection import SessionError
from smb import security_descriptors as sd
from smb.base import NotConnectedError, NotReadyError, SMBTimeout
from smb.smb_structs import OperationFailure, ProtocolError
from smb.SMBConnection import SMBConnection

from sources.connectors import (
    Connector,
    ItemUnreadable,
    Listed,
    Readers,
    SourceUnavailable,
    spooled,
)
from sources.credentials import Credentials

_READ = 0x00000001 | 0x80000000 | 0x10000000  # FILE_READ_DATA, GENERIC_READ, GENERIC_ALL
_EVERYONE = {sd.SID_EVERYONE, sd.SID_AUTHENTICATED_USERS, sd.SID_BUILTIN_USERS}
_FAILURES = (OperationFailure, ProtocolError, NotConnectedError, NotReadyError, SMBTimeout,
             OSError)  # fmt: skip
_TIMEOUT = 30


class SmbConnector(Connector):
    def __init__(self, location: str, credentials: Credentials):
        parts = urlsplit(location)
        self.host, self.port = parts.hostname, parts.port or 445
        share, _, folder = unquote(parts.path).strip("/").partition("/")
        self.share, self.folder = share, folder.strip("/")
        self.location = location
        self.credentials = credentials
        self._connection: SMBConnection | None = None
        self._share: Readers | str | None = None  # str: why they cannot be read

    def _account(self) -> tuple[str, str]:
        """The account's user name and domain (user@domain or DOMAIN\\user)."""
        user, _, domain = self.credentials.username.partition("@")
        if "\\" in user:
            domain, user = user.split("\\", 1)
        return user, domain

    def _connect(self) -> SMBConnection:
        if self._connection is None:
            user, domain = self._account()
            connection = SMBConnection(
                user, self.credentials.secret, "prodrag", self.host, domain=domain,
                use_ntlm_v2=True, is_direct_tcp=True,
            )  # fmt: skip
            try:
                connected = connection.connect(self.host, self.port, timeout=_TIMEOUT)
            except (OSError, *_FAILURES) as exc:
                reason = f"cannot connect to {self.location}: {_reason(exc)}"
                raise SourceUnavailable(reason) from exc
            if not connected:
                raise SourceUnavailable(f"{self.host} refused the source's credentials")
            self._connection = connection
        return self._connection

    def _path(self, key: str) -> str:
        return "/".join(part for part in (self.folder, key) if part)

    def listing(self) -> Iterator[Listed]:
        connection = self._connect()
        folders = [""]
        while folders:
            folder = folders.pop()
            try:
                entries = connection.listPath(self.share, self._path(folder) or "/",
                                              timeout=_TIMEOUT)  # fmt: skip
            except _FAILURES as exc:
                reason = f"cannot list {self.location}/{folder}: {_reason(exc)}"
                raise SourceUnavailable(reason) from exc
            for entry in sorted(entries, key=lambda entry: entry.filename):
                if entry.filename in (".", ".."):
                    continue
                key = f"{folder}/{entry.filename}" if folder else entry.filename
                if entry.isDirectory:
                    folders.append(key)
                elif not entry.file_attributes & 0x400:  # a reparse point (a link) is not an item
                    yield Listed(key=key, marker=f"{entry.file_size}:{entry.last_write_time}")

    @contextmanager
    def open(self, key: str):
        connection = self._connect()
        with spooled() as buffer:
            try:
                connection.retrieveFile(self.share, self._path(key), buffer, timeout=_TIMEOUT)
            except _FAILURES as exc:
                raise ItemUnreadable(f"cannot read {key}: {_reason(exc)}") from exc
            buffer.seek(0)
            yield buffer

    def readers(self, key: str) -> Readers:
        """ItemUnreadable when the server refuses the file's (or the share's) ACL;
        SourceUnavailable when it cannot be asked."""
        connection = self._connect()
        try:
            security = connection.getSecurity(self.share, self._path(key), timeout=_TIMEOUT)
        except OperationFailure as exc:
            raise ItemUnreadable(f"cannot read the ACL of {key}: {_reason(exc)}") from exc
        except _FAILURES as exc:
            raise SourceUnavailable(f"cannot ask {self.location} for ACLs: {_reason(exc)}") from exc
        return _dacl_readers(security, key) & self._share_readers()

    def _share_readers(self) -> Readers:
        """Whom the share's permissions let read (asked once per connector, so once a pass);
        ItemUnreadable when they cannot be read."""
        if self._share is None:
            self._share = self._share_read()
        if isinstance(self._share, str):
            raise ItemUnreadable(self._share)
        return self._share

    def _share_read(self) -> Readers | str:
        """The share's readers, or why the server does not tell them."""
        user, domain = self._account()
        pipe = transport.SMBTransport(
            self.host, self.port, r"\srvsvc", username=user, password=self.credentials.secret,
            domain=domain,
        )  # fmt: skip
        pipe.set_connect_timeout(_TIMEOUT)
        rpc = pipe.get_dce_rpc()
        try:
            rpc.connect()
            try:
                rpc.bind(srvs.MSRPC_UUID_SRVS)
                info = srvs.hNetrShareGetInfo(rpc, f"{self.share}\x00", 502)
            finally:
                rpc.disconnect()
        except DCERPCException as exc:  # the server answered: not to this account
            return f"cannot read the permissions of the share {self.share}: {exc}"
        except (SessionError, OSError) as exc:
            raise SourceUnavailable(f"cannot ask {self.host} for share permissions: {exc}") from exc
        raw = b"".join(info["InfoStruct"]["ShareInfo502"]["shi502_security_descriptor"] or [])
        if not raw:
            return (
                f"{self.host} does not show the permissions of the share {self.share} to "
                f"{self.credentials.username}: the account must be an administrator of it"
            )
        try:
            return _dacl_readers(sd.SecurityDescriptor.from_bytes(raw), f"the share {self.share}")
        except ItemUnreadable as exc:
            return str(exc)


def _reason(exc: Exception) -> str:
    """The failure's message, without the SMB messages pysmb's OperationFailure dumps."""
    return exc.message if isinstance(exc, OperationFailure) else str(exc)


def _dacl_readers(security: sd.SecurityDescriptor, what: str) -> Readers:
    """Whom a security descriptor's DACL lets read; ItemUnreadable when it has none."""
    if security.dacl is None:
        raise ItemUnreadable(f"{what} has no DACL")
    allowed, denied = set(), set()
    for ace in security.dacl.aces:
        if ace.isInheritOnly or not ace.mask & _READ:
            continue
        if ace.type == sd.ACE_TYPE_ACCESS_ALLOWED:
            allowed.add(str(ace.sid))
        elif ace.type == sd.ACE_TYPE_ACCESS_DENIED:
            denied.add(str(ace.sid))
    everyone = bool(allowed & _EVERYONE) and not denied
    named = allowed - _EVERYONE - denied
    # A SID is a user or a group, which only the directory knows: offered as both.
    return Readers(
        users=frozenset(named),
        groups=frozenset(named if not denied else ()),
        everyone=everyone,
    )
