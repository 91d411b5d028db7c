"""Real servers for the remote source tests, each started on a loopback port for one test:
a WebDAV server (wsgidav, from PyPI, serving a folder with basic authentication), an S3
server (moto's server mode: a protocol emulator of S3, the one S3 server that installs here)
and an SMB server (Debian's samba, which `make test` installs)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import boto3

from tests.processes import free_port, port_wait

BIN = Path(sys.executable).parent
USER, PASSWORD = "reader", "dav-s3cret"
SMBD = shutil.which("smbd") or "/usr/sbin/smbd"
SMBPASSWD = shutil.which("smbpasswd") or "/usr/bin/smbpasswd"
SHARESEC = shutil.which("sharesec") or "/usr/bin/sharesec"


class Server:
    """A server process on a loopback port: `start`, `stop`."""

    what = "server"

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        # A session of its own: smbd signals its whole process group when it stops.
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        port_wait(self.port, self.what, self.process)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class WebDav(Server):
    """wsgidav serving `root` at /, to USER with PASSWORD only. Items are changed in the
    folder it serves (as other clients' writes would)."""

    what = "wsgidav"

    def __init__(self, root: Path):
        super().__init__()
        self.root = root
        self.url = f"http://127.0.0.1:{self.port}/"

    def command(self) -> list[str]:
        config = self.root.parent / "wsgidav.json"
        config.write_text(json.dumps({
            "host": "127.0.0.1", "port": self.port, "provider_mapping": {"/": str(self.root)},
            "http_authenticator": {"accept_basic": True, "accept_digest": False,
                                   "default_to_digest": False},
            "simple_dc": {"user_mapping": {"*": {USER: {"password": PASSWORD}}}},
            "verbose": 0, "logging": {"enable": False},
        }))  # fmt: skip
        return [str(BIN / "wsgidav"), "--config", str(config)]

    def put(self, key: str, text: str) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def delete(self, key: str) -> None:
        (self.root / key).unlink()


class S3(Server):
    """moto's S3 emulator with one bucket, `docs`."""

    what = "moto_server"

    def __init__(self):
        super().__init__()
        self.url = f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)]

    def start(self) -> None:
        super().start()
        self.client = boto3.client(
            "s3", endpoint_url=self.url, region_name="us-east-1",
            aws_access_key_id=USER, aws_secret_access_key=PASSWORD,
        )  # fmt: skip
        self.client.create_bucket(Bucket="docs")

    def put(self, key: str, text: str) -> None:
        self.client.put_object(Bucket="docs", Key=key, Body=text.encode())

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket="docs", Key=key)


class Samba(Server):
    """Debian's smbd serving `root` as the share `docs` on a loopback port, with everything
    it keeps (its account database, locks, logs, share permissions) in a folder of its own.
    Its accounts, both with PASSWORD: the machine's user `daemon` (every Debian system has
    it) and `root`, the server's administrator (Samba shows share permissions to it alone).
    The files' NT ACLs are Samba's from their POSIX owner, group and mode: the owner's
    account SID, the Unix group's SID (S-1-22-2-gid) and Everyone."""

    what = "smbd"

    def __init__(self, root: Path):
        super().__init__()
        self.root, self.state = root, root.parent / "samba"
        self.url = f"smb://127.0.0.1:{self.port}/docs"

    def command(self) -> list[str]:
        for folder in ("private", "lock", "state", "cache", "run", "ncalrpc"):
            (self.state / folder).mkdir(parents=True, exist_ok=True)
        config = self.state / "smb.conf"
        config.write_text(f"""[global]
  server role = standalone server
  smb ports = {self.port}
  bind interfaces only = yes
  interfaces = 127.0.0.1
  disable netbios = yes
  private dir = {self.state}/private
  lock directory = {self.state}/lock
  state directory = {self.state}/state
  cache directory = {self.state}/cache
  pid directory = {self.state}/run
  ncalrpc dir = {self.state}/ncalrpc
  log file = {self.state}/log.%m
  passdb backend = tdbsam:{self.state}/private/passdb.tdb
  load printers = no
  printcap name = /dev/null
  map to guest = never
[docs]
  path = {self.root}
  read only = yes
""")
        for account in ("daemon", "root"):
            subprocess.run(
                [SMBPASSWD, "-c", str(config), "-a", "-s", account],
                input=f"{PASSWORD}\n{PASSWORD}\n", text=True, check=True, capture_output=True,
            )  # fmt: skip
        return [SMBD, "-F", "--no-process-group", "-s", str(config)]

    def share_permissions(self, *aces: str) -> None:
        """Replace the share's permissions with these ACEs (sharesec's SID:ALLOWED/0/READ)."""
        subprocess.run(
            [SHARESEC, "-s", str(self.state / "smb.conf"), "docs", "--replace", ",".join(aces)],
            check=True, capture_output=True,
        )  # fmt: skip
