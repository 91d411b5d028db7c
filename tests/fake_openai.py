"""A small HTTP server speaking the OpenAI protocol, in the test process: the one external
service the tests stand in for.

POST .../embeddings: a 3-dimensional vector per input, unnormalised, in reverse order (the
protocol carries an index per item). POST .../chat/completions: the next scripted reply,
as one JSON answer or, when the request asks for `stream`, as server-sent events of a few
characters each. Scripted HTTP failures (status codes in `failures`; a 429 carries
`Retry-After: 0`) come first, for either route. A reply may also be one of:
- `Slow(seconds, text)`: the answer after a delay (a client timeout shorter than that fails);
- `MALFORMED`: a 200 whose body is not the protocol's JSON;
- `Broken(text)`: a stream that sends `text`, then an event that is not JSON, and closes.
"""

import contextlib
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MALFORMED = object()


@dataclass
class Slow:
    seconds: float
    text: str


@dataclass
class Broken:
    text: str


class FakeOpenAI(BaseHTTPRequestHandler):
    failures: list[int] = []
    requests: list[dict] = []
    replies: list = []
    stream_pause = 0.0  # seconds between streamed pieces, so that a reader sees them arrive
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        if self.failures:
            status = self.failures.pop(0)
            headers = {"Retry-After": "0"} if status == 429 else {}
            self._reply(status, {"error": {"message": "scripted", "type": "error"}}, headers)
        elif self.path.endswith("/embeddings"):
            self._embeddings(body)
        else:
            self._chat(body)

    def _embeddings(self, body):
        data = [
            {"object": "embedding", "index": i, "embedding": [len(text), 1.0, 0.0]}
            for i, text in enumerate(body["input"])
        ]
        self._reply(
            200,
            {
                "object": "list",
                "data": data[::-1],
                "model": body["model"],
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            },
        )

    def _chat(self, body):
        reply = self.replies.pop(0) if self.replies else ""
        if isinstance(reply, Slow):
            time.sleep(reply.seconds)
            reply = reply.text
        if reply is MALFORMED:
            self._raw(200, b"<html>upstream proxy error</html>", "application/json")
        elif body.get("stream"):
            self._stream(body, reply)
        else:
            self._reply(
                200,
                {
                    "id": "chatcmpl-test",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": reply},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                },
            )

    def _stream(self, body, reply):
        text = reply.text if isinstance(reply, Broken) else reply
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        for start in range(0, len(text), 5):
            event = {
                "id": "chatcmpl-test",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "delta": {"content": text[start : start + 5]},
                        "finish_reason": None,
                    }
                ],
            }
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()
            time.sleep(self.stream_pause)
        if isinstance(reply, Broken):
            self.wfile.write(b'data: {"choices": [{"index": 0, "delta\n\n')
            self.close_connection = True
            return
        self.wfile.write(b"data: [DONE]\n\n")
        self.close_connection = True

    def _reply(self, status, payload, headers=None):
        self._raw(status, json.dumps(payload).encode(), "application/json", headers)

    def _raw(self, status, raw, content_type, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)

    def handle(self):
        # A client that gave up waiting (its timeout) has closed the connection by the time a
        # slow reply is written: there is no one left to answer.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            super().handle()

    def log_message(self, *args):
        pass


def fake_openai_serve():
    """Start a server with an empty script; returns (base URL, server)."""
    FakeOpenAI.failures, FakeOpenAI.requests, FakeOpenAI.replies = [], [], []
    FakeOpenAI.stream_pause = 0.0
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}/v1", server
