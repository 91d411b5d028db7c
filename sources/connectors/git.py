"""One branch of a git repository (git://, http(s)://, ssh:// or a local path), fetched into
a bare mirror of the source's own with dulwich (pure Python: no git binary needed). An item
is a regular file of the branch's head commit; its marker is its blob id, so a file is
fetched again only when its content changed, and a rename with the same content keeps its
document. Symbolic links and submodules are not items. Once synced, the branch is followed by
diffs: a sync reads only the files changed since the last synced commit (a removed one is
deleted), never the whole tree again."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dulwich import porcelain
from dulwich.errors import GitProtocolError, HangupException, NotGitRepository
from dulwich.repo import Repo

from sources.connectors import Changes, Connector, ItemUnreadable, Listed, SourceUnavailable
from sources.credentials import Credentials


class GitConnector(Connector):
    def __init__(self, location: str, branch: str, mirror: Path, credentials: Credentials):
        self.location, self.branch, self.mirror = location, branch or "main", mirror
        self.credentials = credentials
        self.revision = ""
        self._blobs: dict[str, bytes] = {}

    def _fetch(self) -> Repo:
        """Fetch the branch into the mirror; the mirror's repository, its head recorded in
        `revision`."""
        ref = f"refs/heads/{self.branch}".encode()
        try:
            repo = self._repo()
            with open(os.devnull, "wb") as quiet:
                fetched = porcelain.fetch(
                    repo,
                    self.location,
                    errstream=quiet,
                    username=self.credentials.username or None,
                    password=self.credentials.secret or None,
                )
            if ref not in fetched.refs:
                repo.close()
                raise SourceUnavailable(f"{self.location} has no branch {self.branch!r}")
            repo.refs[ref] = fetched.refs[ref]  # the mirror keeps what was synced
        except SourceUnavailable:
            raise
        except (GitProtocolError, HangupException, NotGitRepository, OSError, KeyError) as exc:
            raise SourceUnavailable(f"cannot fetch {self.location}: {exc}") from exc
        self.revision = fetched.refs[ref].decode()
        return repo

    def listing(self) -> Iterator[Listed]:
        with self._fetch() as repo:
            entries = list(repo.object_store.iter_tree_contents(repo[self.revision.encode()].tree))
        self._blobs = {}
        for entry in entries:
            if stat.S_ISREG(entry.mode):
                key = entry.path.decode("utf-8", "replace")
                self._blobs[key] = entry.sha
                yield Listed(key=key, marker=entry.sha.decode())

    def changes(self, checkpoint: dict) -> Changes | None:
        """The files the branch changed since the checkpoint's commit (a diff of the two
        trees: added or edited files listed, removed ones named), or None when there is no
        such commit in the mirror."""
        since = checkpoint.get("revision", "").encode()
        with self._fetch() as repo:
            if not since or since not in repo.object_store:
                return None
            diff = list(repo.object_store.tree_changes(
                repo[since].tree, repo[self.revision.encode()].tree
            ))  # fmt: skip
        changed, removed = [], []
        for (old_path, new_path), (old_mode, new_mode), (_, new_sha) in diff:
            if (
                old_path is not None
                and stat.S_ISREG(old_mode or 0)
                and (new_path != old_path or not stat.S_ISREG(new_mode or 0))
            ):
                removed.append(old_path.decode("utf-8", "replace"))
            if new_path is not None and stat.S_ISREG(new_mode or 0):
                key = new_path.decode("utf-8", "replace")
                self._blobs[key] = new_sha
                changed.append(Listed(key=key, marker=new_sha.decode()))
        return Changes(changed=changed, removed=removed)

    @contextmanager
    def open(self, key: str):
        if key not in self._blobs:
            raise ItemUnreadable(f"{key} is not in commit {self.revision[:12]}")
        with Repo(str(self.mirror)) as repo:
            data = repo[self._blobs[key]].data
        yield io.BytesIO(data)

    def _repo(self) -> Repo:
        if (self.mirror / "HEAD").exists():
            return Repo(str(self.mirror))
        self.mirror.mkdir(parents=True, exist_ok=True)
        return Repo.init_bare(str(self.mirror))

    def origin(self, item: Listed) -> str:
        return f"commit {self.revision}"

    def checkpoint(self) -> dict:
        return {"revision": self.revision}
