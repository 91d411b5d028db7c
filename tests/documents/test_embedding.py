"""Embedding providers: the bundled local model, and an OpenAI-compatible endpoint played by a
small HTTP server in this process."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from documents.embedding import (
    EmbeddingError,
    EmbeddingUnavailable,
    OpenAIEmbedder,
    embedder,
)


def test_local_model_gives_normalised_vectors_that_rank_by_meaning():
    vectors = embedder().embed(["The cat sat on the mat.", "A kitten rests on a rug.", "GDP fell."])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


class FakeOpenAI(BaseHTTPRequestHandler):
    """POST /v1/embeddings: a 3-dimensional vector per input, unnormalised, in reverse order
    (the protocol carries an index per item); scripted failures first."""

    failures: list[int] = []
    requests: list[dict] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        if self.failures:
            status = self.failures.pop(0)
            self._reply(status, {"error": {"message": "scripted", "type": "server_error"}})
            return
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

    def _reply(self, status, payload):
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args):
        pass


@pytest.fixture
def endpoint():
    FakeOpenAI.failures, FakeOpenAI.requests = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()


def test_openai_endpoint_is_batched_ordered_by_index_and_normalised(endpoint):
    client = OpenAIEmbedder(model="m", base_url=endpoint, api_key="k", dimensions=3, batch_size=2)
    vectors = client.embed(["a", "bbb", "cc"])
    assert [len(request["input"]) for request in FakeOpenAI.requests] == [2, 1]
    expected = np.array([[1, 1, 0], [3, 1, 0], [2, 1, 0]], dtype=np.float32)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.allclose(vectors, expected)


def test_openai_server_errors_are_transient_and_refusals_are_not(endpoint):
    client = OpenAIEmbedder(model="m", base_url=endpoint, api_key="k", dimensions=3, batch_size=8)
    FakeOpenAI.failures = [503]
    with pytest.raises(EmbeddingUnavailable):
        client.embed(["a"])
    FakeOpenAI.failures = [400]
    with pytest.raises(EmbeddingError, match="refused"):
        client.embed(["a"])
    assert client.embed(["a"]).shape == (1, 3)


def test_a_dimension_other_than_configured_is_refused(endpoint):
    client = OpenAIEmbedder(model="m", base_url=endpoint, api_key="k", dimensions=384, batch_size=8)
    with pytest.raises(EmbeddingError, match=r"shape \(1, 3\).*384"):
        client.embed(["a"])
