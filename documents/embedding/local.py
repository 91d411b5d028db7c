"""A sentence-transformers model read from a local directory (never downloaded)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from documents.embedding import onnx
from documents.embedding.base import EmbeddingError, normalised

log = logging.getLogger("prodrag.embedding")


class LocalEmbedder:
    """With runtime `onnx` (and a model whose pooling is the mean of its token vectors, which
    is what the ONNX path reproduces), every text runs in ONNX Runtime: the `int8` variant
    with quantize `int8`, else the `none` one (documents/embedding/onnx.py). A variant that
    cannot be made, or whose vectors stray from PyTorch's, is passed over with a warning for
    the next: `none`, then PyTorch. `runtime` and `quantize` say what embeds.

    Why, in figures: docs/benchmarks.md (bench.embedding, bench.ingest).
    """

    def __init__(
        self,
        *,
        model: str,
        path: Path,
        dimensions: int,
        batch_size: int,
        runtime: str = "torch",
        quantize: str = "none",
        onnx_dir: Path | None = None,
    ) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        self.model = model
        self.dimensions = dimensions
        self.batch_size = batch_size
        self.path = path
        self.transformer = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        actual = self.transformer.get_embedding_dimension()
        if actual != dimensions:
            raise EmbeddingError(
                f"{model} makes {actual}-dimensional vectors; PRODRAG_EMBEDDING_DIMENSIONS is "
                f"{dimensions}."
            )
        self.session, self.check, self.quantize = None, None, "none"
        if runtime == "onnx" and onnx_dir is not None:
            self._onnx_load(onnx_dir, quantize=quantize, threads=torch.get_num_threads())
        log.info("%s", self.describe())

    @property
    def runtime(self) -> str:
        return "torch" if self.session is None else "onnx"

    def describe(self) -> str:
        """What embeds, for logs and `embedding_prepare`."""
        if self.check is None:
            return f"{self.model} runs in PyTorch"
        return (
            f"{self.model} runs in ONNX Runtime, {_variant(self.quantize)}: vectors at a mean "
            f"cosine of {self.check.mean_cosine:.4f} to PyTorch's (minimum "
            f"{self.check.min_cosine:.4f}), keeping {self.check.neighbour_recall:.3f} of real "
            f"passages' {onnx.NEIGHBOURS} nearest neighbours, on this CPU ({self.check.cpu})"
        )

    def _onnx_load(self, directory: Path, *, quantize: str, threads: int) -> None:
        if not _mean_pooled(self.transformer):
            log.warning(
                "%s: its pooling is not the mean of its token vectors, which is all that the "
                "ONNX path reproduces; PyTorch embeds",
                self.model,
            )
            return
        for variant in dict.fromkeys([quantize, "none"]):
            try:
                self.session, self.check = onnx.session_make(
                    self.transformer,
                    path=self.path,
                    directory=directory,
                    quantize=variant,
                    threads=threads,
                )
            except onnx.VariantRefused as exc:
                log.warning("%s: the %s ONNX variant is not used: %s", self.model, variant, exc)
            except Exception:  # the exporter, optimiser and quantiser fail in many ways
                log.warning(
                    "%s: the %s ONNX variant could not be made", self.model, variant, exc_info=True
                )
            else:
                self.quantize = variant
                return
        log.warning("%s: not in ONNX Runtime; PyTorch embeds", self.model)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        if self.session is not None:
            vectors = onnx.mean_token_vectors(
                self.session,
                self.transformer.tokenizer,
                texts,
                max_length=self.transformer.max_seq_length,
                batch_size=self.batch_size,
            )
        else:
            vectors = self.transformer.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return normalised(vectors, model=self.model, dimensions=self.dimensions)


def _variant(quantize: str) -> str:
    return "unquantised" if quantize == "none" else f"quantised {quantize}"


def _mean_pooled(transformer) -> bool:
    """Whether the model is a transformer, mean pooling and at most a normalisation: what the
    ONNX path reproduces."""
    names = [type(module).__name__ for module in transformer]
    if names[:2] != ["Transformer", "Pooling"] or names[2:] not in ([], ["Normalize"]):
        return False
    return transformer[1].get_config_dict().get("pooling_mode") == "mean"
