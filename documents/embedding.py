"""Embedding providers: a local sentence-transformers model or an OpenAI-compatible endpoint.

Both return L2-normalised float32 rows, so cosine distance in pgvector is a dot product, and
both are batched (PRODRAG_EMBEDDING_BATCH_SIZE texts per call).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from django.conf import settings

log = logging.getLogger("prodrag.embedding")


class EmbeddingError(Exception):
    """The embedding provider rejected the input or answered nonsense; retrying will not help."""


class EmbeddingUnavailable(Exception):
    """The embedding endpoint is down, slow or rate-limiting; a later try may succeed."""


class Embedder(Protocol):
    model: str
    dimensions: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One normalised row per text, shape (len(texts), dimensions)."""


def _normalised(vectors: np.ndarray, *, model: str, dimensions: int) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[1] != dimensions:
        raise EmbeddingError(
            f"{model} returned vectors of shape {vectors.shape}; PRODRAG_EMBEDDING_DIMENSIONS "
            f"is {dimensions}."
        )
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


class LocalEmbedder:
    """A sentence-transformers model read from a local directory (never downloaded). A single
    text (a query) runs in ONNX Runtime when `onnx_dir` is given and the model's pooling is
    the mean of its token vectors; batches, and every text of other models, in PyTorch.

    Why: a query is embedded while its reader waits, and for one short text PyTorch spends
    most of its time dispatching operators: all-MiniLM-L6-v2 took 12.7 ms a query (p50) in
    PyTorch and 4.7 ms in ONNX Runtime on a 2-core machine, with vectors equal to a cosine of
    0.9999999. On ingestion's batches of 64 PyTorch is the faster, by 11% (docs/benchmarks.md).
    """

    def __init__(
        self,
        *,
        model: str,
        path: Path,
        dimensions: int,
        batch_size: int,
        onnx_dir: Path | None = None,
    ) -> None:
        from sentence_transformers import SentenceTransformer

        self.model = model
        self.dimensions = dimensions
        self.batch_size = batch_size
        self.transformer = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        actual = self.transformer.get_embedding_dimension()
        if actual != dimensions:
            raise EmbeddingError(
                f"{model} makes {actual}-dimensional vectors; PRODRAG_EMBEDDING_DIMENSIONS is "
                f"{dimensions}."
            )
        self.path = path
        self.onnx_dir = onnx_dir if onnx_dir and _mean_pooled(self.transformer) else None

    @functools.cached_property
    def session(self):
        """The ONNX Runtime session, made at the first single text (a worker process, which
        embeds batches, never holds one: about 150 MB less); None: PyTorch embeds."""
        if self.onnx_dir is None:
            return None
        try:
            return _onnx_session(self.transformer, path=self.path, directory=self.onnx_dir)
        except Exception:  # the exporter fails in many ways; PyTorch still embeds
            log.warning("%s: not in ONNX Runtime; PyTorch embeds", self.model, exc_info=True)
            return None

    @property
    def runtime(self) -> str:
        return "torch" if self.session is None else "onnx"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        if len(texts) == 1 and self.session is not None:
            vectors = self._onnx_embed(texts)
        else:
            vectors = self.transformer.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return _normalised(vectors, model=self.model, dimensions=self.dimensions)

    def _onnx_embed(self, texts: Sequence[str]) -> np.ndarray:
        tokens = self.transformer.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.transformer.max_seq_length,
            return_tensors="np",
        )
        wanted = {entry.name for entry in self.session.get_inputs()}
        feed = {name: values.astype(np.int64) for name, values in tokens.items() if name in wanted}
        hidden = self.session.run(None, feed)[0]
        mask = tokens["attention_mask"][..., None].astype(np.float32)
        return (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)


def _mean_pooled(transformer) -> bool:
    """Whether the model is a transformer, mean pooling and at most a normalisation: what the
    ONNX path reproduces."""
    names = [type(module).__name__ for module in transformer]
    if names[:2] != ["Transformer", "Pooling"] or names[2:] not in ([], ["Normalize"]):
        return False
    return transformer[1].get_config_dict().get("pooling_mode") == "mean"


def _onnx_session(transformer, *, path: Path, directory: Path):
    """An ONNX Runtime session over the model's transformer, exported to `directory` unless a
    process did so before. The file's name carries a digest of the model directory's files
    (names, sizes, times) and of the PyTorch version, so a changed model is exported anew.
    Processes starting together export once: the first takes a lock, the others wait for
    it and read its file."""
    import fcntl
    import hashlib

    import onnxruntime
    import torch

    listing = sorted(
        (str(item.relative_to(path)), item.stat().st_size, item.stat().st_mtime_ns)
        for item in path.rglob("*")
        if item.is_file()
    )
    digest = hashlib.sha256(repr((listing, torch.__version__)).encode()).hexdigest()[:16]
    target = directory / f"{path.name}-{digest}.onnx"
    if not target.exists():
        directory.mkdir(parents=True, exist_ok=True)
        with (directory / f"{target.name}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not target.exists():
                _onnx_export(transformer, target)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only
    # The process's share of the CPUs, as torch has it (a worker process gets its share
    # through OMP_NUM_THREADS, prodrag/celery.py); ONNX Runtime would take every core.
    options.intra_op_num_threads = torch.get_num_threads()
    # Its threads would otherwise keep spinning after each query, on the cores PostgreSQL
    # needs next for the search: at 1M passages (bench.search's 1% reader), the search after
    # an embedding took 1 to 2 ms longer (p50), and the embedding's own p95 was 14 ms
    # against 8 without spinning.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(target), options, providers=["CPUExecutionProvider"])


def _onnx_export(transformer, target: Path) -> None:
    """The transformer's token vectors as an ONNX graph with batch and length dynamic, written
    to a temporary file and then renamed, so no process ever reads half a file."""
    import contextlib
    import io
    import warnings

    import torch

    encoder = transformer[0].auto_model.eval()
    names = [
        name
        for name in ("input_ids", "attention_mask", "token_type_ids")
        if name in transformer.tokenizer.model_input_names
    ]

    class TokenVectors(torch.nn.Module):
        def forward(self, input_ids, attention_mask, token_type_ids=None):
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            return encoder(
                input_ids=input_ids, attention_mask=attention_mask, **extra
            ).last_hidden_state

    sample = transformer.tokenizer(["an example", "a longer example text"], padding=True)
    inputs = tuple(torch.tensor(sample[name]) for name in names)
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length")
    partial = target.with_suffix(".partial")
    # The exporter reports every step on stdout and warns of what it skips (torchvision's
    # operators, for one); nothing there is for the user.
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                TokenVectors(),
                inputs,
                str(partial),
                input_names=names,
                output_names=["token_vectors"],
                dynamic_shapes={name: {0: batch, 1: length} for name in names},
                dynamo=True,
                external_data=False,  # one file (90 MB here), renamed into place whole
            )
    finally:
        exporter_log.setLevel(level)
    partial.replace(target)


class OpenAIEmbedder:
    """Any endpoint speaking OpenAI's `/embeddings` (OpenAI, Azure, vLLM, Ollama, TEI)."""

    def __init__(
        self, *, model: str, base_url: str, api_key: str | None, dimensions: int, batch_size: int
    ) -> None:
        import openai

        self.model = model
        self.dimensions = dimensions
        self.batch_size = batch_size
        # Retries are the ingestion task's (with backoff across minutes), not the client's.
        self.client = openai.OpenAI(
            base_url=base_url, api_key=api_key or "unused", timeout=60, max_retries=0
        )

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import openai

        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            try:
                response = self.client.embeddings.create(model=self.model, input=batch)
            except (
                openai.APIConnectionError,
                openai.APITimeoutError,
                openai.RateLimitError,
                openai.InternalServerError,
            ) as exc:
                raise EmbeddingUnavailable(f"embedding endpoint: {exc}") from exc
            except openai.APIError as exc:
                raise EmbeddingError(f"embedding endpoint refused the input: {exc}") from exc
            data = sorted(response.data, key=lambda item: item.index)
            if len(data) != len(batch):
                raise EmbeddingError(
                    f"embedding endpoint returned {len(data)} vectors for {len(batch)} texts"
                )
            rows.extend(item.embedding for item in data)
        if not rows:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        return _normalised(np.array(rows), model=self.model, dimensions=self.dimensions)


@functools.cache
def embedder() -> Embedder:
    """The configured provider, built once per process (loading a model takes seconds)."""
    if settings.EMBEDDING_PROVIDER == "openai":
        return OpenAIEmbedder(
            model=settings.EMBEDDING_MODEL,
            base_url=settings.EMBEDDING_API_BASE,
            api_key=settings.EMBEDDING_API_KEY,
            dimensions=settings.EMBEDDING_DIMENSIONS,
            batch_size=settings.EMBEDDING_BATCH_SIZE,
        )
    return LocalEmbedder(
        model=settings.EMBEDDING_MODEL,
        path=settings.EMBEDDING_MODEL_PATH,
        dimensions=settings.EMBEDDING_DIMENSIONS,
        batch_size=settings.EMBEDDING_BATCH_SIZE,
        onnx_dir=settings.EMBEDDING_ONNX_DIR if settings.EMBEDDING_RUNTIME == "onnx" else None,
    )


def embedder_warm() -> Embedder:
    """The configured provider, and a local model run once on a text: its weights, tokenizer
    and query session (the ONNX export the first time on a machine) are then ready before a
    reader waits for them. An endpoint is not called."""
    provider = embedder()
    if isinstance(provider, LocalEmbedder):
        provider.embed(["A first query."])
    return provider
