"""A small HTTP server speaking the OpenAI protocol, in the test process: the one external
service the tests stand in for.

POST .../embeddings: a 3-dimensional vector per input, unnormalised, in reverse order (the
protocol carries an index per item). POST .../chat/completions: the next scripted reply.
Scripted HTTP failures (status codes in `failures`) come first, for either route.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOpenAI(BaseHTTPRequestHandler):
    failures: list[int] = []
    requests: list[dict] = []
    replies: list[str] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        if self.failures:
            status = self.failures.pop(0)
            self._reply(status, {"error": {"message": "scripted", "type": "server_error"}})
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
        content = self.replies.pop(0) if self.replies else ""
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
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            },
        )

    def _reply(self, status, payload):
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args):
        pass


def fake_openai_serve():
    """Start a server with an empty script; returns (base URL, server)."""
    FakeOpenAI.failures, FakeOpenAI.requests, FakeOpenAI.replies = [], [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}/v1", server
