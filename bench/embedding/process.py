"""What bench.embedding runs in each of its single-threaded processes (a module of its own:
a process started by spawning imports its target by name)."""

from __future__ import annotations

import time
from pathlib import Path


def local_embedder(runtime: str, quantize: str, directory: Path, batch: int):
    from django.conf import settings

    from documents.embedding import LocalEmbedder

    return LocalEmbedder(
        model=settings.EMBEDDING_MODEL,
        path=settings.EMBEDDING_MODEL_PATH,
        dimensions=settings.EMBEDDING_DIMENSIONS,
        batch_size=batch,
        runtime=runtime,
        quantize=quantize,
        onnx_dir=directory,
    )


def timed_in_one_thread(quantize: str, directory: str, batch: int, texts, start, out) -> None:
    """Embed `texts` with one thread once every process is ready (`start`, a barrier), and put
    the seconds it took on `out`."""
    import django

    django.setup()
    import torch

    torch.set_num_threads(1)
    made = local_embedder("onnx", quantize, Path(directory), batch)
    made.embed(texts[:16])
    start.wait()
    began = time.perf_counter()
    made.embed(texts)
    out.put(time.perf_counter() - began)
