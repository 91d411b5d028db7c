"""Embedding providers: the bundled local model, and an OpenAI-compatible endpoint played by a
small HTTP server in this process."""

import numpy as np
import pytest

from documents.embedding import (
    EmbeddingError,
    EmbeddingUnavailable,
    LocalEmbedder,
    OpenAIEmbedder,
    embedder,
)
from tests.fake_openai import FakeOpenAI


def test_local_model_gives_normalised_vectors_that_rank_by_meaning():
    vectors = embedder().embed(["The cat sat on the mat.", "A kitten rests on a rug.", "GDP fell."])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def _local(settings, onnx_dir=None, batch_size=2):
    return LocalEmbedder(
        model=settings.EMBEDDING_MODEL,
        path=settings.EMBEDDING_MODEL_PATH,
        dimensions=settings.EMBEDDING_DIMENSIONS,
        batch_size=batch_size,
        onnx_dir=onnx_dir,
    )


def test_the_configured_local_model_runs_in_onnx_runtime(settings):
    assert settings.EMBEDDING_RUNTIME == "onnx"
    assert embedder().runtime == "onnx"
    # Its threads sleep between queries rather than spin on the database's cores.
    options = embedder().session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_a_query_runs_in_onnx_runtime_with_pytorchs_vector_and_the_export_is_made_once(
    settings, tmp_path, monkeypatch
):
    """GIVEN one text at a time WHEN the model runs in ONNX Runtime THEN each vector is the one
    PyTorch gives in a batch; a second embedder reads the same file."""
    texts = ["Short.", "A much longer sentence, padded against the short one.", "GDP fell."]
    onnx = _local(settings, onnx_dir=tmp_path)
    assert not list(tmp_path.glob("*.onnx"))  # made for the first single text, not before
    torch = _local(settings)
    batch = torch.embed(texts)
    # A single text must take the ONNX path: PyTorch is not there to answer it.
    monkeypatch.setattr(onnx.transformer, "encode", None)

    assert (onnx.runtime, torch.runtime) == ("onnx", "torch")
    exported = list(tmp_path.glob("*.onnx"))
    assert np.allclose([onnx.embed([text])[0] for text in texts], batch, atol=1e-5)
    assert len(exported) == 1
    modified = exported[0].stat().st_mtime_ns
    assert _local(settings, onnx_dir=tmp_path).runtime == "onnx"
    assert list(tmp_path.glob("*.onnx")) == exported
    assert exported[0].stat().st_mtime_ns == modified


def test_batches_run_in_pytorch(settings, tmp_path, monkeypatch):
    onnx = _local(settings, onnx_dir=tmp_path)

    def refused(texts):
        raise AssertionError("a batch went to ONNX Runtime")

    monkeypatch.setattr(onnx, "_onnx_embed", refused)

    assert onnx.runtime == "onnx"
    assert onnx.embed(["one", "two"]).shape == (2, 384)


def test_a_model_that_cannot_be_exported_is_run_by_pytorch(settings, tmp_path, caplog):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")

    local = _local(settings, onnx_dir=blocked / "models")

    assert local.runtime == "torch"
    assert local.embed(["Still embedded."]).shape == (1, 384)
    assert "not in ONNX Runtime; PyTorch embeds" in caplog.text


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
