"""Embedding providers: the bundled local model, and an OpenAI-compatible endpoint played by a
small HTTP server in this process."""

import json
from pathlib import Path

import numpy as np
import pytest

from documents.embedding import (
    EmbeddingError,
    EmbeddingUnavailable,
    LocalEmbedder,
    OpenAIEmbedder,
    embedder,
    onnx,
)
from tests.fake_openai import FakeOpenAI


def test_local_model_gives_normalised_vectors_that_rank_by_meaning():
    vectors = embedder().embed(["The cat sat on the mat.", "A kitten rests on a rug.", "GDP fell."])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


TEXTS = [
    "Short.",
    "A much longer sentence, padded against the short one in a batch of its own kind.",
    "GDP fell.",
    "Parents get 20 weeks of fully paid parental leave, to be taken within the first year "
    "after birth or adoption.",
    "reset password",
]


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    """One directory for the variants these tests make (each takes seconds to make)."""
    return tmp_path_factory.mktemp("onnx")


def _local(settings, *, runtime="onnx", quantize="int8", onnx_dir=None, path=None):
    return LocalEmbedder(
        model=settings.EMBEDDING_MODEL,
        path=path or settings.EMBEDDING_MODEL_PATH,
        dimensions=settings.EMBEDDING_DIMENSIONS,
        batch_size=2,
        runtime=runtime,
        quantize=quantize,
        onnx_dir=onnx_dir,
    )


def test_the_configured_local_model_runs_unquantised_in_onnx_runtime(settings):
    """Unquantised ONNX by default (int8 cost retrieval quality on some collections and CPUs:
    docs/benchmarks.md), within both of its bounds."""
    assert (settings.EMBEDDING_RUNTIME, settings.EMBEDDING_QUANTIZE) == ("onnx", "none")
    assert (embedder().runtime, embedder().quantize) == ("onnx", "none")
    assert embedder().check.mean_cosine >= onnx.MIN_MEAN_COSINE["none"]
    assert embedder().check.neighbour_recall >= onnx.MIN_NEIGHBOUR_RECALL["none"]
    # Its threads sleep between queries rather than spin on the database's cores.
    options = embedder().session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_unquantised_onnx_gives_pytorchs_vectors_in_the_texts_order(settings, onnx_dir):
    """GIVEN texts of mixed lengths, run in batches of 2 sorted by length WHEN the model runs
    in ONNX Runtime unquantised THEN each row is the vector PyTorch gives its text, alone or
    in a batch."""
    onnx = _local(settings, quantize="none", onnx_dir=onnx_dir)
    torch = _local(settings, runtime="torch")
    reference = torch.embed(TEXTS)

    assert (onnx.runtime, onnx.quantize) == ("onnx", "none")
    assert (torch.runtime, torch.quantize, torch.session) == ("torch", "none", None)
    assert np.allclose(onnx.embed(TEXTS), reference, atol=1e-5)
    assert np.allclose(onnx.embed(TEXTS[3:4]), reference[3:4], atol=1e-5)


def test_int8_vectors_stay_within_a_cosine_of_pytorchs(settings, onnx_dir):
    int8 = _local(settings, onnx_dir=onnx_dir)
    cosines = (int8.embed(TEXTS) * _local(settings, runtime="torch").embed(TEXTS)).sum(axis=1)

    assert (int8.runtime, int8.quantize) == ("onnx", "int8")
    assert cosines.mean() >= 0.99 and cosines.min() >= 0.97
    assert int8.check.mean_cosine >= 0.99 and int8.check.min_cosine <= int8.check.mean_cosine
    assert onnx.MIN_NEIGHBOUR_RECALL["int8"] <= int8.check.neighbour_recall < 1
    assert "quantised int8" in int8.describe() and "nearest neighbours" in int8.describe()


def test_neighbour_recall_is_the_share_of_nearest_neighbours_kept():
    """GIVEN real passages' vectors WHEN compared with themselves, with a slight noise and
    with vectors of other texts THEN all, most and few of each passage's ten nearest
    neighbours are kept."""
    passages = onnx.check_passages()
    assert len(set(passages)) == onnx.CHECK_PASSAGES == len(passages)
    assert all(25 <= len(passage.split()) <= 250 for passage in passages)
    vectors = embedder().embed(passages[:200])
    noisy = vectors + np.random.default_rng(0).normal(0, 0.01, vectors.shape)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    shuffled = vectors[np.random.default_rng(1).permutation(len(vectors))]

    assert onnx.neighbour_recall(vectors, vectors) == 1.0
    assert 0.5 < onnx.neighbour_recall(vectors, noisy) < 1.0
    assert onnx.neighbour_recall(vectors, shuffled) < 0.2


def test_the_variants_are_made_and_checked_once_per_machine(settings, onnx_dir, monkeypatch):
    """GIVEN the int8 variant made and checked by one embedder WHEN another loads THEN it reads
    the same files: nothing is exported, quantised or checked again (a check rewrites its
    record)."""
    _local(settings, onnx_dir=onnx_dir)
    made = {path.name: path.stat().st_mtime_ns for path in onnx_dir.iterdir()}

    def refused(*args, **kwargs):
        raise AssertionError("made again")

    monkeypatch.setattr(onnx, "_export", refused)
    monkeypatch.setattr(onnx, "_quantize", refused)
    again = _local(settings, onnx_dir=onnx_dir)

    assert again.quantize == "int8"
    assert {path.name: path.stat().st_mtime_ns for path in onnx_dir.iterdir()} == made
    assert {name.rsplit("-", 1)[-1] for name in made} >= {"int8.onnx", "int8.check.json"}


def test_a_check_that_cannot_be_recorded_still_lets_the_variant_serve(
    settings, onnx_dir, monkeypatch
):
    """GIVEN the int8 variant checked on another CPU, in a directory this process cannot write
    to (a read-only image) WHEN the embedder loads THEN it checks the variant again on this CPU
    and serves it."""
    _local(settings, onnx_dir=onnx_dir)
    record = next(onnx_dir.glob("*-int8.check.json"))
    record.write_text(json.dumps(json.loads(record.read_text()) | {"cpu": "another CPU"}))

    def read_only(self, *args, **kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(Path, "write_text", read_only)
    local = _local(settings, onnx_dir=onnx_dir)
    monkeypatch.undo()

    assert local.quantize == "int8"
    assert local.check.cpu == onnx.cpu_features() != "another CPU"
    assert json.loads(record.read_text())["cpu"] == "another CPU"


def test_a_read_only_model_directory_keeps_its_checks_in_the_temporary_one(
    settings, onnx_dir, tmp_path, monkeypatch
):
    """GIVEN the variant checked on another CPU, in a directory no process may write to WHEN
    the embedder loads twice THEN the first measures and records in the temporary directory,
    and the second reads it there without measuring again."""
    _local(settings, quantize="none", onnx_dir=onnx_dir)
    record = next(onnx_dir.glob("*-none.check.json"))
    record.write_text(json.dumps(json.loads(record.read_text()) | {"cpu": "another CPU"}))
    monkeypatch.setattr(onnx.os, "access", lambda path, mode: False)
    monkeypatch.setattr(onnx, "checks_fallback_dir", lambda: tmp_path / "checks")

    first = _local(settings, quantize="none", onnx_dir=onnx_dir)

    def measured(*args, **kwargs):
        raise AssertionError("measured again")

    monkeypatch.setattr(onnx, "check_passages", measured)
    second = _local(settings, quantize="none", onnx_dir=onnx_dir)

    assert first.check == second.check and first.check.cpu == onnx.cpu_features()
    assert (tmp_path / "checks" / record.name).exists()
    assert json.loads(record.read_text())["cpu"] == "another CPU"


def test_the_torch_runtime_makes_no_onnx_file(settings, tmp_path):
    local = _local(settings, runtime="torch", onnx_dir=tmp_path)

    assert (local.runtime, local.quantize) == ("torch", "none")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("bound", ["MIN_MEAN_COSINE", "MIN_NEIGHBOUR_RECALL"])
def test_int8_vectors_too_far_from_pytorchs_fall_back_to_unquantised(
    settings, onnx_dir, monkeypatch, caplog, bound
):
    """GIVEN a CPU on which the int8 variant's vectors stray, or move passages among their
    neighbours (played by a bar it cannot meet) WHEN the embedder loads THEN it runs
    unquantised, and says why."""
    monkeypatch.setitem(getattr(onnx, bound), "int8", 1.01)

    local = _local(settings, onnx_dir=onnx_dir)

    assert (local.runtime, local.quantize) == ("onnx", "none")
    assert "the int8 ONNX variant is not used: its vectors are at a mean cosine" in caplog.text
    assert "of the passages' 10 nearest neighbours" in caplog.text
    reference = _local(settings, runtime="torch").embed(TEXTS)
    assert np.allclose(local.embed(TEXTS), reference, atol=1e-5)


def test_a_quantiser_failure_falls_back_to_unquantised(settings, tmp_path, monkeypatch, caplog):
    def unsupported(source, target):
        raise RuntimeError("no int8 kernel for this operator")

    monkeypatch.setattr(onnx, "_quantize", unsupported)

    local = _local(settings, onnx_dir=tmp_path)

    assert (local.runtime, local.quantize) == ("onnx", "none")
    assert "the int8 ONNX variant could not be made" in caplog.text
    assert "no int8 kernel" in caplog.text


def test_a_model_that_cannot_be_exported_is_run_by_pytorch(settings, tmp_path, caplog):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")

    local = _local(settings, onnx_dir=blocked / "models")

    assert (local.runtime, local.quantize) == ("torch", "none")
    assert local.embed(["Still embedded."]).shape == (1, 384)
    assert "not in ONNX Runtime; PyTorch embeds" in caplog.text


def test_a_model_pooling_otherwise_is_run_by_pytorch(settings, tmp_path, caplog):
    """GIVEN a model that pools by its first token, which the ONNX path does not reproduce
    WHEN it loads with the onnx runtime THEN PyTorch embeds, with a warning, and no file is
    made."""
    model = tmp_path / "cls-model"
    for item in settings.EMBEDDING_MODEL_PATH.rglob("*"):
        if item.is_file():
            (model / item.relative_to(settings.EMBEDDING_MODEL_PATH)).parent.mkdir(
                parents=True, exist_ok=True
            )
            (model / item.relative_to(settings.EMBEDDING_MODEL_PATH)).symlink_to(item)
    pooling = model / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text()) | {
        "pooling_mode_cls_token": True,
        "pooling_mode_mean_tokens": False,
    }
    pooling.unlink()
    pooling.write_text(json.dumps(config))

    local = _local(settings, onnx_dir=tmp_path / "models", path=model)

    assert (local.runtime, local.quantize) == ("torch", "none")
    assert "its pooling is not the mean of its token vectors" in caplog.text
    assert not (tmp_path / "models").exists()
    assert local.embed(["Still embedded."]).shape == (1, 384)


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
