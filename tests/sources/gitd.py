"""A real git server for the git source tests: `git daemon` (part of git) serving one bare
repository on a loopback port, and a working clone the tests commit and push from."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.processes import free_port, port_wait

GIT = shutil.which("git") or "/usr/bin/git"
_AUTHOR = ["-c", "user.name=Docs Writer", "-c", "user.email=docs@example.org"]


class GitDaemon:
    def __init__(self, root: Path):
        self.base = root / "served"
        self.work = root / "work"
        self.port = free_port()
        self.url = f"git://127.0.0.1:{self.port}/repo.git"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.base.mkdir(parents=True)
        self._git("init", "--quiet", "--bare", "-b", "main", str(self.base / "repo.git"))
        self._git("init", "--quiet", "-b", "main", str(self.work))
        self._git("-C", str(self.work), "remote", "add", "origin", str(self.base / "repo.git"))
        self.process = subprocess.Popen(
            [GIT, "daemon", "--reuseaddr", f"--base-path={self.base}", "--export-all",
             f"--port={self.port}", "--listen=127.0.0.1", str(self.base)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        port_wait(self.port, "git daemon", self.process)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def commit(self, files: dict[str, str | None], message: str, *, branch: str = "main") -> str:
        """Write (or, for None, remove) files, commit and push; returns the commit id."""
        for name, text in files.items():
            path = self.work / name
            if text is None:
                path.unlink()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
        self._git("-C", str(self.work), "add", "--all")
        self._git("-C", str(self.work), *_AUTHOR, "commit", "--quiet", "-m", message)
        self._git("-C", str(self.work), "push", "--quiet", "origin", f"HEAD:{branch}")
        return self._git("-C", str(self.work), "rev-parse", "HEAD").strip()

    def rename(self, old: str, new: str) -> None:
        (self.work / new).parent.mkdir(parents=True, exist_ok=True)
        self._git("-C", str(self.work), "mv", old, new)

    @staticmethod
    def _git(*args: str) -> str:
        return subprocess.run(
            [GIT, *args], check=True, capture_output=True, text=True, timeout=60
        ).stdout
