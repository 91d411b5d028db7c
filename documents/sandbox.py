"""The parser process: parsing under time and memory limits, away from the worker.

A file that makes a parser hang, balloon or crash must fail alone and leave the Celery worker
running. So each worker process keeps one long-lived child, `python -m documents.sandbox`,
started on first use (importing docling takes seconds, so not once per file), whose address
space is capped with RLIMIT_AS. The worker sends it one file at a time and waits at most
PRODRAG_PARSE_TIMEOUT seconds; on a timeout it kills the child, on a crash it notices the
closed pipe, and either way the next file gets a fresh child.

Frames, both ways: one JSON header line, then exactly `size` bytes of payload.
  request:  {"name", "format", "limits", "layout_models", "size"} + the file's bytes
  reply:    {"ok": true, "metadata", "size"} + DoclingDocument JSON
            {"ok": false, "error"}
"""

from __future__ import annotations

import json
import os
import resource
import select
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import IO

from docling_core.types.doc import DoclingDocument

from documents.parsing import Limits, Parsed, ParseError

_PROJECT_ROOT = Path(__file__).resolve().parent.parent
# A child is replaced after this many files, so slow leaks in parser libraries stay bounded.
_FILES_PER_CHILD = 500


class ParserSandbox:
    """One parser child, restarted as needed. Not thread-safe: one per worker process."""

    def __init__(self, *, timeout: float, memory_mb: int) -> None:
        self.timeout = timeout
        self.memory_mb = memory_mb
        self._child: subprocess.Popen | None = None
        self._served = 0

    def parse(
        self, *, data: bytes, name: str, fmt: str, limits: Limits, layout_models: str | None
    ) -> Parsed:
        """Raises ParseError for a file that cannot be parsed (including one that hangs or
        kills its parser); the sandbox stays usable for the next file."""
        child = self._ready_child()
        header = {
            "name": name,
            "format": fmt,
            "limits": asdict(limits),
            "layout_models": layout_models,
            "size": len(data),
        }
        try:
            child.stdin.write(json.dumps(header).encode() + b"\n" + data)
            child.stdin.flush()
        except BrokenPipeError:
            raise self._died() from None
        deadline = time.monotonic() + self.timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.close()
                raise ParseError(
                    f"Parsing took longer than {self.timeout:g} s (PRODRAG_PARSE_TIMEOUT) and "
                    "was stopped."
                )
            readable, _, _ = select.select([child.stdout], [], [], remaining)
            if readable:
                break
        line = child.stdout.readline()
        if not line:
            raise self._died()
        reply = json.loads(line)
        if not reply["ok"]:
            if reply.get("fatal"):
                self.close()
            raise ParseError(reply["error"])
        payload = _read_exactly(child.stdout, reply["size"])
        self._served += 1
        if self._served >= _FILES_PER_CHILD:
            self.close()
        return Parsed(DoclingDocument.model_validate_json(payload), reply["metadata"])

    def _ready_child(self) -> subprocess.Popen:
        if self._child is not None and self._child.poll() is None:
            return self._child
        memory = self.memory_mb * 1024 * 1024

        def limit_memory() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

        self._child = subprocess.Popen(
            [sys.executable, "-m", "documents.sandbox"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=_PROJECT_ROOT,
            # Set between fork and exec: applies to the child only, from its first import on.
            preexec_fn=limit_memory,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        self._served = 0
        return self._child

    def _died(self) -> ParseError:
        child = self._child
        self._child = None
        code = child.wait() if child is not None else None
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return ParseError(
            f"The parser crashed on this file ({how}): the file is malformed, or parsing it "
            f"needs more than {self.memory_mb} MiB (PRODRAG_PARSE_MEMORY_MB)."
        )

    def close(self) -> None:
        if self._child is not None:
            self._child.kill()
            self._child.wait()
            self._child = None


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise ParseError("The parser process stopped in the middle of its answer.")
    return data


def _serve() -> None:
    """The child's loop: answer requests until stdin closes."""
    from documents.parsing import parse

    # Parser libraries may print; only our frames may reach the parent's pipe.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    requests = sys.stdin.buffer
    while line := requests.readline():
        header = json.loads(line)
        data = _read_exactly(requests, header["size"])
        fatal = False
        try:
            parsed = parse(
                data=data,
                name=header["name"],
                fmt=header["format"],
                limits=Limits(**header["limits"]),
                layout_models=header["layout_models"],
            )
        except ParseError as exc:
            reply, payload = {"ok": False, "error": str(exc)}, b""
        except MemoryError:
            fatal = True
            reply, payload = (
                {
                    "ok": False,
                    "fatal": True,
                    "error": "Parsing needs more memory than PRODRAG_PARSE_MEMORY_MB allows.",
                },
                b"",
            )
        except Exception as exc:  # any parser failure is this file's failure
            reply, payload = {"ok": False, "error": f"The parser failed: {exc!r}"[:2000]}, b""
        else:
            payload = parsed.document.model_dump_json().encode()
            reply = {"ok": True, "metadata": parsed.metadata, "size": len(payload)}
        replies.write(json.dumps(reply).encode() + b"\n" + payload)
        replies.flush()
        if fatal:
            return


if __name__ == "__main__":
    _serve()
