"""Encoding BERT-style sentence models on packed tokens: no padding anywhere.

sentence-transformers pads every text of a call to the call's longest and runs every layer on the
padding. Here the real tokens of all texts of a call are packed into one matrix for the linear
layers, layer norms and activations (nearly all of the work), and attention runs on texts of one
length at a time, which need neither padding nor a mask. Each real token gets the same arithmetic
as in the library, so the vectors agree with its ``encode()`` to float rounding; ``packed_encoder``
checks that on the loaded model and returns None for any model it does not reproduce (other
architectures, other pooling), which then runs through the library as before.

Measured for MiniLM on 2 cores (questions from the dev datasets): a lone question 4.4 ms instead of
6.4 (the library's per-call work goes too); 32 questions 1.3 ms each instead of 1.9.

Texts are tokenized by the model's own Rust tokenizer, called directly with the library's settings
(truncation to the model's length, padding to the longest): the library's general preprocessing
(modalities, prompts, chat templates) cost ~95 µs per call and ~80 µs per question of a batch,
against ~22 and ~35. The load-time check compares the tokens with the library's on a few texts
(long ones truncated) and keeps the library's preprocessing if they differ.

A model folder this service saved carries CHECK_FILE (``write_check``): the library's tokenizer
settings and its vectors of the check texts. ``packed_from_folder`` then builds the packed encoder
from the folder's safetensors weights, config and tokenizer.json alone, and keeps it only if it
reproduces those vectors: a serving process needs neither sentence-transformers nor transformers
(~3 s of imports at start-up).

Imported by ``qa_service.model.embedder`` only; torch, safetensors and tokenizers are imported inside
functions, as there.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

# Most tokens per packed call. With attention in one padded block per call, 64 questions cost ~1.9
# ms each against ~1.35 for 32; with attention in runs of 8, limits of 512, 1024 and 2048 tokens
# measured within noise of each other. With attention on equal-length runs, a micro-batch of 32 dev
# questions and their sentences (~570 tokens, two calls at 512) encodes 3.5-4% faster in one call:
# 1024 won all ten paired rounds against 512 (1.89 vs 1.96, 2.11 vs 2.19 ms per question); 2048 is
# no faster than 1024.
PACKED_MAX_TOKENS = 1024
# Most texts per attention call. Attention runs on consecutive texts of one length (texts come
# longest first). Earlier it ran on runs of 8 texts padded to the longest, with a mask: torch's CPU
# attention took ~200 µs for 8 short questions with a mask against ~55 without, plus two copies in
# and out of the padded block; equal-length runs made a batch of 32 dev questions 7-9% faster to
# encode (1.86 -> 1.69-1.74 ms each, three A/B runs; 8, 16 or 32 at most: within noise).
ATTENTION_BLOCK = 16
# Texts the load-time check compares, of different lengths so that packing is exercised.
_CHECK_TEXTS = (
    "back pain",
    "How long does a muscle spasm in the lower back usually last?",
    "Is it safe to use heat, ice or both on a back spasm, and when should I see a doctor instead of treating it?",
)
_CHECK_TOLERANCE = 1e-5  # largest difference to the library's vectors, per component
# More texts for the tokenizer check: truncation, accents and symbols, surrounding spaces.
_TOKENIZER_CHECK_TEXTS = (
    *_CHECK_TEXTS,
    " ".join(["my lower back has been stiff and sore after lifting boxes"] * 40),
    "¿Qué tal? naïve café — 3½ mg, 20°C, 😀 emoji",
    "  spaces around  ",
)
# Written beside a model saved by this service (an index build's fine-tuned copy): the library's own
# tokenizer settings and its vectors of the check texts, so that the model can later be loaded and
# checked without the library (``packed_from_folder``).
CHECK_FILE = "qa_packed_check.json"
CHECK_FORMAT = 1


class UnsupportedModel(ValueError):
    """The model is not a mean-pooled BERT-style encoder this module can run packed."""


@dataclass(frozen=True)
class _Layer:
    query: Any
    key: Any
    value: Any
    attention_out: Any
    attention_norm: Any
    intermediate: Any
    activation: Any
    out: Any
    out_norm: Any


class PackedEncoder:
    """Mean-pooled, normalised sentence vectors of a BERT-style sentence model, computed packed."""

    tokenize: Callable[[list[str]], dict[str, Any]]  # texts -> the model's features (padded tensors)

    def __init__(
        self,
        *,
        embeddings: Callable[..., Any],
        layers: list[_Layer],
        heads: int,
        scale: float,
        tokenize: Callable[[list[str]], dict[str, Any]],
    ) -> None:
        """``embeddings(input_ids=..., token_type_ids=...)`` gives the tokens' input vectors;
        ``layers`` the encoder layers' parts (callables on packed token rows)."""
        self._embeddings = embeddings
        self._layers = layers
        self._heads = heads
        self._scale = scale
        self.tokenize = tokenize

    @property
    def dimension(self) -> int:
        """The vectors' size: the encoder's hidden size (mean pooling keeps it)."""
        return int(self._layers[-1].out_norm.weight.shape[0])

    @classmethod
    def of_model(cls, model: Any) -> PackedEncoder:
        """The packed encoder of a loaded ``SentenceTransformer`` made of a Transformer (BERT-style
        encoder), mean Pooling and optionally Normalize, sharing its modules; anything else raises
        UnsupportedModel."""
        modules = list(model)
        names = [type(module).__name__ for module in modules]
        if names not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
            raise UnsupportedModel(f"modules {names}")
        pooling = modules[1].get_config_dict()
        # sentence-transformers 3+ says "pooling_mode"; older versions one flag per mode
        flags = [key for key, on in pooling.items() if key.startswith("pooling_mode_") and on]
        mode = pooling.get("pooling_mode") or flags
        if mode not in ("mean", ["pooling_mode_mean_tokens"]) or not pooling.get("include_prompt", True):
            raise UnsupportedModel(f"pooling {pooling}")
        encoder = modules[0].auto_model
        _check_config(encoder.config.to_dict())
        try:
            layers = [
                _Layer(
                    query=layer.attention.self.query,
                    key=layer.attention.self.key,
                    value=layer.attention.self.value,
                    attention_out=layer.attention.output.dense,
                    attention_norm=layer.attention.output.LayerNorm,
                    intermediate=layer.intermediate.dense,
                    activation=layer.intermediate.intermediate_act_fn,
                    out=layer.output.dense,
                    out_norm=layer.output.LayerNorm,
                )
                for layer in encoder.encoder.layer
            ]
            scale = float(encoder.encoder.layer[0].attention.self.scaling)
            embeddings = encoder.embeddings
        except AttributeError as exc:
            raise UnsupportedModel(f"not a BERT-style encoder: {exc}") from exc
        return cls(
            embeddings=embeddings,
            layers=layers,
            heads=int(encoder.config.num_attention_heads),
            scale=scale,
            tokenize=model.preprocess,
        )

    def encode(self, features: dict[str, Any]) -> Any:
        """Unit vectors (a float32 tensor, one row per text) for tokenizer output ``features``
        (``input_ids``, ``attention_mask``, optionally ``token_type_ids``; padded at the end; texts
        longest first, as ``token_groups`` orders them, so that texts of one length share attention
        calls)."""
        import torch
        import torch.nn.functional as functional

        with torch.inference_mode():
            ids, mask = features["input_ids"], features["attention_mask"]
            texts, width = ids.shape
            lengths = mask.sum(dim=1)
            kwargs = {"token_type_ids": features["token_type_ids"]} if "token_type_ids" in features else {}
            hidden = self._embeddings(input_ids=ids, **kwargs)
            size = hidden.shape[-1]
            hidden = hidden.reshape(texts * width, size)
            if bool((lengths < width).any()):
                hidden = hidden.index_select(0, mask.reshape(-1).nonzero().squeeze(1))
            blocks = _attention_blocks(lengths.tolist())
            for layer in self._layers:
                projected = torch.cat([layer.query(hidden), layer.key(hidden), layer.value(hidden)], dim=1)
                contexts = [block.attend(projected, self._heads, self._scale) for block in blocks]
                context = contexts[0] if len(contexts) == 1 else torch.cat(contexts)
                attended = layer.attention_norm(layer.attention_out(context) + hidden)
                hidden = layer.out_norm(layer.out(layer.activation(layer.intermediate(attended))) + attended)
            owner = torch.arange(texts).repeat_interleave(lengths)
            pooled = hidden.new_zeros(texts, size).index_add_(0, owner, hidden) / lengths[:, None].to(hidden.dtype)
            return functional.normalize(pooled, dim=-1)


def _check_config(config: dict[str, Any]) -> None:
    if config.get("is_decoder") or config.get("position_embedding_type", "absolute") != "absolute":
        raise UnsupportedModel("decoder or relative positions")


class _Linear:
    """``torch.nn.Linear``'s arithmetic on given weights (no module, no initialisation)."""

    def __init__(self, weight: Any, bias: Any) -> None:
        self.weight, self.bias = weight, bias

    def __call__(self, rows: Any) -> Any:
        import torch.nn.functional as functional

        return functional.linear(rows, self.weight, self.bias)


class _LayerNorm:
    """``torch.nn.LayerNorm``'s arithmetic on given weights."""

    def __init__(self, weight: Any, bias: Any, eps: float) -> None:
        self.weight, self.bias, self.eps = weight, bias, eps

    def __call__(self, rows: Any) -> Any:
        import torch.nn.functional as functional

        return functional.layer_norm(rows, (self.weight.shape[0],), self.weight, self.bias, self.eps)


class _Embeddings:
    """transformers' ``BertEmbeddings`` (absolute positions, inference): word + token type, then +
    position, then layer norm, in the library's order."""

    def __init__(self, word: Any, position: Any, token_type: Any, norm: _LayerNorm) -> None:
        self.word, self.position, self.token_type, self.norm = word, position, token_type, norm

    def __call__(self, *, input_ids: Any, token_type_ids: Any = None) -> Any:
        import torch
        import torch.nn.functional as functional

        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        embedded = functional.embedding(input_ids, self.word) + functional.embedding(token_type_ids, self.token_type)
        embedded = embedded + self.position[: input_ids.shape[1]]
        return self.norm(embedded)


def _activation(name: object) -> Callable[[Any], Any]:
    import torch.nn.functional as functional

    if name != "gelu":  # transformers' "gelu" is torch's exact (erf) GELU; others are not needed yet
        raise UnsupportedModel(f"activation {name!r}")
    return functional.gelu


def _from_weights(config: dict[str, Any], weights: dict[str, Any]) -> tuple[_Embeddings, list[_Layer], int, float]:
    """The parts of a BERT encoder from its config and safetensors weights (names as transformers
    saves a ``BertModel``; a ``bert.`` prefix is allowed)."""
    _check_config(config)
    eps = float(config["layer_norm_eps"])
    heads = int(config["num_attention_heads"])
    size = int(config["hidden_size"])
    activation = _activation(config.get("hidden_act"))

    def weight(name: str) -> Any:
        found = weights.get(name, weights.get(f"bert.{name}"))
        if found is None:
            raise UnsupportedModel(f"no weight {name!r}")
        return found

    def linear(prefix: str) -> _Linear:
        return _Linear(weight(f"{prefix}.weight"), weight(f"{prefix}.bias"))

    def norm(prefix: str) -> _LayerNorm:
        return _LayerNorm(weight(f"{prefix}.weight"), weight(f"{prefix}.bias"), eps)

    embeddings = _Embeddings(
        weight("embeddings.word_embeddings.weight"),
        weight("embeddings.position_embeddings.weight"),
        weight("embeddings.token_type_embeddings.weight"),
        norm("embeddings.LayerNorm"),
    )
    layers = []
    for number in range(int(config["num_hidden_layers"])):
        prefix = f"encoder.layer.{number}"
        layers.append(
            _Layer(
                query=linear(f"{prefix}.attention.self.query"),
                key=linear(f"{prefix}.attention.self.key"),
                value=linear(f"{prefix}.attention.self.value"),
                attention_out=linear(f"{prefix}.attention.output.dense"),
                attention_norm=norm(f"{prefix}.attention.output.LayerNorm"),
                intermediate=linear(f"{prefix}.intermediate.dense"),
                activation=activation,
                out=linear(f"{prefix}.output.dense"),
                out_norm=norm(f"{prefix}.output.LayerNorm"),
            )
        )
    return embeddings, layers, heads, float((size // heads) ** -0.5)


class _Block:
    """Consecutive texts of one length, whose attention is computed together."""

    def __init__(self, texts: int, width: int, first_row: int) -> None:
        self.texts, self.width = texts, width
        self.rows = slice(first_row, first_row + texts * width)

    def attend(self, projected: Any, heads: int, scale: float) -> Any:
        """Attention's output for this block's tokens, packed; ``projected`` holds every token's
        query, key and value side by side."""
        import torch.nn.functional as functional

        rows = projected[self.rows]
        query, key, value = rows.view(self.texts, self.width, 3, heads, -1).permute(2, 0, 3, 1, 4)
        context = functional.scaled_dot_product_attention(query, key, value, scale=scale)
        return context.transpose(1, 2).reshape(self.texts * self.width, -1)


def _attention_blocks(lengths: Sequence[int]) -> list[_Block]:
    """Runs of consecutive texts of one length, at most ATTENTION_BLOCK each."""
    blocks, row, start = [], 0, 0
    while start < len(lengths):
        end = start + 1
        while end < len(lengths) and end - start < ATTENTION_BLOCK and lengths[end] == lengths[start]:
            end += 1
        blocks.append(_Block(end - start, lengths[start], row))
        row += (end - start) * lengths[start]
        start = end
    return blocks


def token_groups(lengths: Sequence[int], max_texts: int, max_tokens: int = PACKED_MAX_TOKENS) -> list[list[int]]:
    """Positions of texts to encode together packed: longest first (texts of similar length share
    a call, so attention's padded block stays small), at most ``max_texts`` texts and, unless one
    text alone exceeds it, ``max_tokens`` tokens per call."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    groups: list[list[int]] = []
    tokens = 0
    for position in order:
        if groups and len(groups[-1]) < max_texts and tokens + lengths[position] <= max_tokens:
            groups[-1].append(position)
            tokens += lengths[position]
        else:
            groups.append([position])
            tokens = lengths[position]
    return groups


def packed_encoder(model: Any) -> PackedEncoder | None:
    """A packed encoder for ``model`` (on the CPU) if it reproduces the library's vectors on a few
    texts (float32 model), else None (logged) and the caller keeps using the library."""
    try:
        if str(model.device) != "cpu":
            raise UnsupportedModel(f"measured on the CPU only, the model is on {model.device}")
        if getattr(model.tokenizer, "padding_side", "right") != "right":
            raise UnsupportedModel("the tokenizer pads on the left")
        encoder = PackedEncoder.of_model(model)
    except UnsupportedModel as exc:
        logger.info("encoding through sentence-transformers (no packed encoder: %s)", exc)
        return None
    texts = list(_CHECK_TEXTS)
    expected = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    actual = encoder.encode(model.preprocess(texts)).numpy()
    difference = float(np.abs(expected - actual).max())
    if difference > _CHECK_TOLERANCE:
        logger.warning("encoding through sentence-transformers: packed vectors differ by %.2g", difference)
        return None
    logger.info("encoding packed (no padding; within %.1g of the library)", difference)
    encoder.tokenize = direct_tokenizer(model) or model.preprocess
    return encoder


def direct_tokenizer(model: Any) -> Callable[[list[str]], dict[str, Any]] | None:
    """The model's Rust tokenizer called directly, if it gives the library's features on the check
    texts, else None (logged)."""
    import torch

    try:
        # an own copy: the library reconfigures its tokenizer's truncation and padding on every call
        tokenize = _rust_tokenizer(copy.deepcopy(model.tokenizer.backend_tokenizer), _tokenizer_settings(model))
    except (AttributeError, TypeError, ValueError, RuntimeError) as exc:
        logger.info("tokenizing through sentence-transformers (no direct tokenizer: %s)", exc)
        return None
    texts = list(_TOKENIZER_CHECK_TEXTS)
    expected, actual = model.preprocess(texts), tokenize(texts)
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        if key in expected and not torch.equal(expected[key], actual[key]):
            logger.warning("tokenizing through sentence-transformers: direct %s differ", key)
            return None
    return tokenize


def _tokenizer_settings(model: Any) -> dict[str, Any]:
    """What the library tokenizes with: its truncation length and padding token."""
    settings = model.tokenizer
    return {
        "max_seq_length": int(model.max_seq_length),
        "pad_id": int(settings.pad_token_id),
        "pad_type_id": int(settings.pad_token_type_id),
        "pad_token": str(settings.pad_token),
    }


def _rust_tokenizer(backend: Any, settings: dict[str, Any]) -> Callable[[list[str]], dict[str, Any]]:
    """``backend`` (a ``tokenizers.Tokenizer``, reconfigured here) as a function from texts to the
    library's features: truncated to the model's length, padded on the right to the longest."""
    import torch

    backend.enable_truncation(max_length=int(settings["max_seq_length"]), strategy="longest_first")
    backend.enable_padding(
        direction="right",
        pad_id=int(settings["pad_id"]),
        pad_type_id=int(settings["pad_type_id"]),
        pad_token=str(settings["pad_token"]),
    )

    def tokenize(texts: list[str]) -> dict[str, Any]:
        encoded = backend.encode_batch(texts)
        return {
            "input_ids": torch.from_numpy(np.array([e.ids for e in encoded], dtype=np.int64)),
            "token_type_ids": torch.from_numpy(np.array([e.type_ids for e in encoded], dtype=np.int64)),
            "attention_mask": torch.from_numpy(np.array([e.attention_mask for e in encoded], dtype=np.int64)),
        }

    return tokenize


def write_check(model: Any, folder: Path) -> None:
    """Write CHECK_FILE into ``folder``, where ``model`` (a SentenceTransformer the packed encoder
    runs) was just saved: its tokenizer settings and the library's vectors of the check texts."""
    texts = list(_TOKENIZER_CHECK_TEXTS)
    vectors = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    record = {"format": CHECK_FORMAT, **_tokenizer_settings(model), "texts": texts, "vectors": vectors.tolist()}
    (folder / CHECK_FILE).write_text(json.dumps(record), encoding="utf-8")


def packed_from_folder(folder: Path) -> PackedEncoder | None:
    """A packed encoder loaded from a model folder saved by this service, without sentence-transformers
    or transformers (torch, tokenizers and safetensors only: ~3 s less to start), if it reproduces the
    vectors CHECK_FILE recorded from the library; else None (logged) and the caller loads the library."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    from tokenizers import Tokenizer

    try:
        record = json.loads((folder / CHECK_FILE).read_text(encoding="utf-8"))
        if record.get("format") != CHECK_FORMAT:
            raise UnsupportedModel(f"{CHECK_FILE} format {record.get('format')!r}")
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        embeddings, layers, heads, scale = _from_weights(config, load_file(folder / "model.safetensors"))
        tokenize = _rust_tokenizer(Tokenizer.from_file(str(folder / "tokenizer.json")), record)
        encoder = PackedEncoder(embeddings=embeddings, layers=layers, heads=heads, scale=scale, tokenize=tokenize)
        texts, expected = list(record["texts"]), np.asarray(record["vectors"], dtype=np.float32)
        actual = encoder.encode(tokenize(texts)).numpy()
    except FileNotFoundError as exc:
        logger.info("loading the model through sentence-transformers (%s is missing)", Path(exc.filename or "").name)
        return None
    except (
        OSError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        RuntimeError,
        SafetensorError,
        UnsupportedModel,
    ) as exc:
        logger.info("loading the model through sentence-transformers (cannot run %s directly: %s)", folder, exc)
        return None
    difference = float(np.abs(expected - actual).max()) if actual.shape == expected.shape else float("inf")
    if difference > _CHECK_TOLERANCE:
        logger.warning("loading the model through sentence-transformers: direct vectors differ by %.2g", difference)
        return None
    logger.info("model loaded directly (packed; within %.1g of the library's recorded vectors)", difference)
    return encoder
