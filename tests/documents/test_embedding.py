"""Embedding providers: the bundled local model, and an OpenAI-compatible endpoint played by a
small HTTP server in this process."""

import numpy as np
import pytest

from documents.embedding import (
    EmbeddingError,
    EmbeddingUnavailable,
    OpenAIEmbedder,
    embedder,
)
from tests.fake_openai import FakeOpenAI


def test_local_model_gives_normalised_vectors_that_rank_by_meaning():
    vectors = embedder().embed(["The cat sat on the mat.", "A kitten rests on a rug.", "GDP fell."])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_openai_endpoint_is_batched_ordered_by_index_and_normalised(openai_endpoint):
    client = OpenAIEmbedder(
        model="m", base_url=openai_endpoint, api_key="k", dimensions=3, batch_size=2
    )
    vectors = client.embed(["a", "bbb", "cc"])
    assert [len(request["input"]) for request in FakeOpenAI.requests] == [2, 1]
    expected = np.array([[1, 1, 0], [3, 1, 0], [2, 1, 0]], dtype=np.float32)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.allclose(vectors, expected)


def test_openai_server_errors_are_transient_and_refusals_are_not(openai_endpoint):
    client = OpenAIEmbedder(
        model="m", base_url=openai_endpoint, api_key="k", dimensions=3, batch_size=8
    )
    FakeOpenAI.failures = [503]
    with pytest.raises(EmbeddingUnavailable):
        client.embed(["a"])
    FakeOpenAI.failures = [400]
    with pytest.raises(EmbeddingError, match="refused"):
        client.embed(["a"])
    assert client.embed(["a"]).shape == (1, 3)


def test_a_dimension_other_than_configured_is_refused(openai_endpoint):
    client = OpenAIEmbedder(
        model="m", base_url=openai_endpoint, api_key="k", dimensions=384, batch_size=8
    )
    with pytest.raises(EmbeddingError, match=r"shape \(1, 3\).*384"):
        client.embed(["a"])
