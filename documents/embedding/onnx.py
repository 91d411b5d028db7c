"""A local sentence-transformers model in ONNX Runtime, made once per machine and checked
against PyTorch before it serves.

The files, in PRODRAG_EMBEDDING_ONNX_DIR, named after the model directory and a digest of
its files and of the tools' versions (a changed model or tool makes new ones):
- `<name>-<digest>.onnx`, the `none` variant: the transformer exported by torch's TorchScript
  exporter with eager attention, then fused by ONNX Runtime's transformer optimiser (attention,
  layer norms, GELU). The dynamo exporter's graph is one the optimiser cannot fuse: it ran
  all-MiniLM-L6-v2 no faster than PyTorch.
- `<name>-<digest>-int8.onnx`, the `int8` variant: that graph with its weights quantised to
  int8, per output channel, and its activations quantised as they come
  (`onnxruntime.quantization.quantize_dynamic`). Quantising the dynamo graph instead gave
  vectors at a mean cosine of 0.94 to PyTorch's; this one's are at 0.99 and above.
- `<name>-<digest>-<variant>.check.json`: how close the variant's vectors came to PyTorch's
  on this CPU (int8 kernels differ with the instruction set: VNNI or not): each vector's
  cosine to PyTorch's on CALIBRATION, and, since a cosine of 0.99 to itself can still move a
  passage among its neighbours, how many of each passage's ten nearest neighbours by
  PyTorch's vectors it keeps among its ten nearest by the variant's, over real passages
  (the docstrings of Python's standard library, which every installation holds; nothing
  else uses them).

A variant that falls short of either bound (MIN_MEAN_COSINE, MIN_NEIGHBOUR_RECALL) is
refused: the caller falls back to the next one, then to PyTorch.
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import hashlib
import io
import json
import logging
import os
import platform
import sysconfig
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

# Bumped when the recipe below changes, so that files made by an older one are not read.
RECIPE = 2
VARIANTS = ("none", "int8")
# How close a variant's vectors must come to PyTorch's, on average over CALIBRATION, to serve.
# int8: the bound at which search may compare its vectors with PyTorch's (docs/benchmarks.md).
MIN_MEAN_COSINE = {"none": 0.9999, "int8": 0.99}
# How many of a passage's ten nearest neighbours (by PyTorch's vectors, among the check's
# passages) a variant must keep, on average. int8 kept 0.913 on a CPU where it cost no
# retrieval quality on four collections (docs/benchmarks.md, bench.collections).
MIN_NEIGHBOUR_RECALL = {"none": 0.99, "int8": 0.90}
NEIGHBOURS = 10
CHECK_PASSAGES = 300

# Texts of the kinds a collection holds and a reader asks, short and long (the longest past
# 256 tokens, the bundled model's limit), in several languages: what a variant is checked on.
CALIBRATION = (
    "How many days of annual leave do part-time staff get?",
    "reset password",
    "Laptop disks are encrypted. A lost or stolen laptop is reported to security within one hour.",
    "Die Kündigungsfrist beträgt drei Monate zum Quartalsende.",
    "Le remboursement des frais de déplacement est effectué dans un délai de trente jours.",
    "def chunks_split(document, max_tokens=256):\n    return [c for c in document if c.strip()]",
    "| Region | Q1 revenue | Q2 revenue |\n| EMEA | 4.2M | 4.9M |\n| APAC | 3.1M | 2.8M |",
    "Error 0x80070005: access denied while writing C:\\ProgramData\\agent\\config.json",
    "Which antibiotics are effective against methicillin-resistant Staphylococcus aureus?",
    "The mitochondrial permeability transition pore opens under calcium overload, collapsing "
    "the membrane potential and releasing cytochrome c into the cytosol.",
    "SELECT count(*) FROM orders WHERE created_at > now() - interval '7 days';",
    "Q3 board minutes: the committee approved the revised travel policy and deferred the "
    "office move to next spring, pending the landlord's answer on the lease break clause.",
    " ".join(
        [
            "Onboarding checklist for new engineers: request hardware through the service desk, "
            "enable two-factor authentication on every account, read the security handbook, "
            "join the on-call rotation after the sixth week, and pair with a mentor on the "
            "first three production changes. Expenses above 500 euros need a manager's "
            "approval in the finance tool before the purchase is made."
        ]
        * 4
    ),
)


class VariantRefused(Exception):
    """A variant was made but its vectors are too far from PyTorch's to serve."""


@dataclass(frozen=True)
class Check:
    """How close a variant's vectors came to PyTorch's on which CPU: their cosines on
    CALIBRATION, and the share of the check passages' nearest neighbours they keep."""

    cpu: str
    mean_cosine: float
    min_cosine: float
    neighbour_recall: float


def cpu_features() -> str:
    """The instruction set features the int8 kernels choose by, as "x86_64 avx2 avx512
    vnni" (VNNI: int8 dot products in one instruction, in AVX-512 or AVX form)."""
    flags: set[str] = set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                flags = set(line.split(":", 1)[1].split())
                break
    found = [
        name
        for name, present in (
            ("avx2", "avx2" in flags),
            ("avx512", "avx512f" in flags),
            ("vnni", bool({"avx512_vnni", "avx_vnni"} & flags)),
            ("neon-dot", "asimddp" in flags),
        )
        if present
    ]
    return " ".join([platform.machine(), *found])


def session_make(transformer, *, path: Path, directory: Path, quantize: str, threads: int):
    """An ONNX Runtime session running the model's transformer as the `quantize` variant, made
    into `directory` unless a process did so before, and its Check. Raises VariantRefused if
    its vectors are too far from PyTorch's, and whatever the exporter, optimiser or runtime
    raise if it cannot be made."""
    import onnxruntime

    base = f"{path.name}-{_digest(path)}"
    exported = _file_make(directory / f"{base}.onnx", lambda out: _export(transformer, out))
    target = exported
    if quantize == "int8":
        target = _file_make(directory / f"{base}-int8.onnx", lambda out: _quantize(exported, out))
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only
    # The process's share of the CPUs, as torch has it (a worker process gets its share through
    # OMP_NUM_THREADS, prodrag/celery.py); ONNX Runtime would take every core.
    options.intra_op_num_threads = threads
    # Its threads would otherwise keep spinning after each query, on the cores PostgreSQL
    # needs next for the search: at 1M passages (bench.search's 1% reader), the search after
    # an embedding took 1 to 2 ms longer (p50), and the embedding's own p95 was 14 ms
    # against 8 without spinning.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(str(target), options, providers=["CPUExecutionProvider"])
    check = _check(transformer, session, directory / f"{base}-{quantize}.check.json")
    if (
        check.mean_cosine < MIN_MEAN_COSINE[quantize]
        or check.neighbour_recall < MIN_NEIGHBOUR_RECALL[quantize]
    ):
        raise VariantRefused(
            f"its vectors are at a mean cosine of {check.mean_cosine:.4f} to PyTorch's (minimum "
            f"{check.min_cosine:.4f}) and keep {check.neighbour_recall:.3f} of the passages' "
            f"{NEIGHBOURS} nearest neighbours on this CPU ({check.cpu}); {quantize} needs "
            f"{MIN_MEAN_COSINE[quantize]} and {MIN_NEIGHBOUR_RECALL[quantize]}"
        )
    return session, check


def mean_token_vectors(
    session, tokenizer, texts: Sequence[str], *, max_length: int, batch_size: int
) -> np.ndarray:
    """The mean of each text's token vectors (not normalised), in the texts' order. The texts
    run in batches of similar token length, each padded only to its own longest text (of 512
    SciFact passages in batches of 64, 3% of the tokens run were padding against 7% in their
    own order: bench.embedding)."""
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)
    ids, types = encoded["input_ids"], encoded.get("token_type_ids")
    wanted = {entry.name for entry in session.get_inputs()}
    pad = tokenizer.pad_token_id or 0
    order = sorted(range(len(texts)), key=lambda index: len(ids[index]))
    result = np.zeros((len(texts), 0), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        length = max(len(ids[index]) for index in batch)
        input_ids = np.full((len(batch), length), pad, dtype=np.int64)
        mask = np.zeros((len(batch), length), dtype=np.int64)
        for row, index in enumerate(batch):
            input_ids[row, : len(ids[index])] = ids[index]
            mask[row, : len(ids[index])] = 1
        feed = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in wanted:
            feed["token_type_ids"] = np.zeros_like(input_ids)
            for row, index in enumerate(batch):
                if types is not None:
                    feed["token_type_ids"][row, : len(types[index])] = types[index]
        hidden = session.run(None, {name: feed[name] for name in wanted})[0]
        weights = mask[..., None].astype(np.float32)
        means = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        if not result.shape[1]:
            result = np.zeros((len(texts), means.shape[1]), dtype=np.float32)
        result[batch] = means
    return result


def _check(transformer, session, record: Path) -> Check:
    """The variant's Check, measured now unless `record` holds one from this CPU. Where the
    model directory cannot be written to (a read-only image started on another CPU than it
    was built on), the record is kept in the temporary directory instead, so that the
    measurement (about 10 s) is not repeated by every process."""
    cpu = cpu_features()
    reads, kept = [record], record
    if not os.access(record.parent, os.W_OK):
        kept = checks_fallback_dir() / record.name
        reads.append(kept)
    for path in reads:
        with contextlib.suppress(OSError, ValueError, TypeError):
            check = Check(**json.loads(path.read_text()))
            if check.cpu == cpu:
                return check
    texts = [*CALIBRATION, *check_passages()]
    reference = transformer.encode(
        texts, normalize_embeddings=True, convert_to_numpy=True, batch_size=16
    )
    vectors = mean_token_vectors(
        session,
        transformer.tokenizer,
        texts,
        max_length=transformer.max_seq_length,
        batch_size=16,
    )
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    cosines = (vectors[: len(CALIBRATION)] * reference[: len(CALIBRATION)]).sum(axis=1)
    passages = slice(len(CALIBRATION), None)
    check = Check(
        cpu=cpu,
        mean_cosine=round(float(cosines.mean()), 5),
        min_cosine=round(float(cosines.min()), 5),
        neighbour_recall=round(neighbour_recall(reference[passages], vectors[passages]), 4),
    )
    # Processes starting together may each measure; each writes its own file and renames it
    # into place. Where it cannot be written, each start measures again.
    with contextlib.suppress(OSError):
        kept.parent.mkdir(parents=True, exist_ok=True)
        partial = kept.with_name(f"{kept.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps(asdict(check)))
        partial.replace(kept)
    return check


def checks_fallback_dir() -> Path:
    """Where checks are recorded when the model directory is read-only."""
    return Path(tempfile.gettempdir()) / "prodrag-embedding-checks"


def neighbour_recall(reference: np.ndarray, vectors: np.ndarray) -> float:
    """Of each row's NEIGHBOURS nearest other rows by `reference`, the share that are also
    among its NEIGHBOURS nearest by `vectors` (both normalised), averaged over the rows."""

    def nearest(matrix: np.ndarray) -> np.ndarray:
        similarity = matrix @ matrix.T
        np.fill_diagonal(similarity, -np.inf)
        return np.argpartition(-similarity, NEIGHBOURS, axis=1)[:, :NEIGHBOURS]

    kept = [
        len(set(expected) & set(found)) / NEIGHBOURS
        for expected, found in zip(nearest(reference), nearest(vectors), strict=True)
    ]
    return float(np.mean(kept))


def check_passages() -> list[str]:
    """CHECK_PASSAGES docstrings of Python's standard library of 25 to 250 words, spread over
    its modules in a fixed order: real prose about many subjects, on every installation."""
    found: dict[str, None] = {}
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        try:
            tree = ast.parse(path.read_text(errors="replace"))
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef):
                text = " ".join((ast.get_docstring(node) or "").split())
                if 25 <= len(text.split()) <= 250:
                    found[text] = None
    texts = list(found)
    if len(texts) < CHECK_PASSAGES:
        raise VariantRefused(f"the standard library holds {len(texts)} docstrings to check on")
    return texts[:: len(texts) // CHECK_PASSAGES][:CHECK_PASSAGES]


def _digest(path: Path) -> str:
    """Of the model directory's files (names, sizes, times) and of the versions of what makes
    and runs the graph."""
    import onnxruntime
    import torch

    listing = sorted(
        (str(item.relative_to(path)), item.stat().st_size, item.stat().st_mtime_ns)
        for item in path.rglob("*")
        if item.is_file()
    )
    tools = (RECIPE, torch.__version__, onnxruntime.__version__)
    return hashlib.sha256(repr((listing, tools)).encode()).hexdigest()[:16]


def _file_make(target: Path, make: Callable[[Path], None]) -> Path:
    """`target`, made by `make(path)` into a temporary file then renamed (no process ever
    reads half a file), unless a process made it before. Processes starting together make it
    once: the first takes a lock, the others wait for it and read its file."""
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with (target.parent / f"{target.name}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not target.exists():
                partial = target.with_name(target.name + ".partial")
                make(partial)
                partial.replace(target)
    return target


@contextlib.contextmanager
def _quiet():
    """The exporter, optimiser and quantiser report every step on stdout and in warnings, and
    advise on the root logger; nothing there is for the user."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def _export(transformer, target: Path) -> None:
    """The transformer's token vectors as a fused ONNX graph, batch and length dynamic."""
    import torch
    from onnxruntime.transformers import optimizer

    encoder = transformer[0].auto_model.eval().requires_grad_(False)
    # The optimiser recognises attention written out as matrix products, not PyTorch's fused
    # scaled_dot_product_attention.
    encoder.config._attn_implementation = "eager"
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
    plain = target.with_name(target.name + ".plain")
    dynamic = {name: {0: "batch", 1: "length"} for name in [*names, "token_vectors"]}
    with _quiet():
        torch.onnx.export(
            TokenVectors(),
            inputs,
            str(plain),
            input_names=names,
            output_names=["token_vectors"],
            dynamic_axes=dynamic,
            opset_version=17,
            dynamo=False,
        )
        config = encoder.config
        fused = optimizer.optimize_model(
            str(plain),
            model_type="bert",
            num_heads=getattr(config, "num_attention_heads", 0),
            hidden_size=getattr(config, "hidden_size", 0),
        )
        fused.save_model_to_file(str(target), use_external_data_format=False)
    plain.unlink()


def _quantize(source: Path, target: Path) -> None:
    """The graph with int8 weights (per output channel) and dynamically quantised inputs."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet():
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            # The fused graph leaves some tensors' types to be inferred; they are all float.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
