"""The search's text side: a description -> one unit vector in CLIP's joint space, without LAVIDA.

    query = ClipQuery.load("demo")          # a preset, a shipped model or a model folder
    q = query.embed("a person climbing a fence")
    q.vector    -> float32 [P], L2-normalised (compare with the clip embeddings by cosine / dot)
    q.n_tokens  -> the description's CLIP tokens; q.truncated: it was longer than the text tower's
                   context (77 tokens with CLIP's tokenizer) and only its start was embedded

Only the CLIP text tower and the retrieval part (`text_projection`) are loaded — megabytes, not the
7B MLLM — with the weights the scan's detector uses for the same model: a folder's own tensors
(read by key from its safetensors), a small folder's CLIP base, or a preset's random weights from
the same build (small presets only: a 7B preset of random weights is refused).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from torch import nn

from lavida_core.checkpoint import (
    WEIGHTS_FILE,
    base_checkpoint,
    build_clip_text,
    build_empty_parts,
    build_lavida,
    build_retrieval,
    check_keys,
    parameter_count,
)
from lavida_core.config import PRESETS, LavidaConfig, preset
from lavida_core.errors import CheckpointError, InputError
from lavida_core.model_folders import SHIPPED_MODELS, model_folder, read_meta
from lavida_core.modeling.text_encoder import TextEncoder
from lavida_core.tokenizer import CLIP_MAX_LENGTH, load_clip_tokenizer

MAX_PRESET_PARAMETERS = 500_000_000  # a preset is built whole for its random text side; tiny is ~1 M


@dataclass(frozen=True)
class QueryEmbedding:
    vector: np.ndarray  # float32 [P]
    n_tokens: int
    truncated: bool


class _TextSide(nn.Module):
    """The two parts under the names LavidaModel gives them (so a folder's keys load as they are)."""

    def __init__(self, text_encoder: TextEncoder, retrieval: nn.Module) -> None:
        super().__init__()
        self.text_encoder = text_encoder
        self.retrieval = retrieval


class ClipQuery:
    def __init__(self, parts: _TextSide, tokenizer, *, model_name: str) -> None:
        self.parts = parts.eval()
        self.tokenizer = tokenizer
        self.model_name = model_name

    @property
    def dim(self) -> int:
        return self.parts.retrieval.dim

    @classmethod
    def load(cls, model: str, *, base_paths: dict[str, str] | None = None) -> ClipQuery:
        if model in PRESETS:  # random weights: the detector's, from the same build (small presets only)
            config = _with_retrieval(preset(model), model)
            if parameter_count(config) > MAX_PRESET_PARAMETERS:
                raise InputError(
                    f"the {model!r} preset has random weights, so its clip embeddings find nothing; search an OUT "
                    "scanned with a model folder (real CLIP weights), or re-score every video with --exhaustive"
                )
            loaded = build_lavida(config)
            return cls(_TextSide(loaded.model.text_encoder, loaded.model.retrieval), loaded.clip_tokenizer, model_name=model)
        folder = model_folder(model)
        if folder is None:
            named = ", ".join(sorted([*PRESETS, *SHIPPED_MODELS]))
            raise InputError(f"--model {model!r} is neither a preset or shipped model ({named}) nor a model folder")
        meta = read_meta(folder)
        config = _with_retrieval(LavidaConfig.from_dict(meta["config"]), model)
        if "base" in meta:  # a small folder: the CLIP parts are its CLIP base's
            clip_dir = base_checkpoint(folder, meta["base"], {k: Path(v) for k, v in (base_paths or {}).items()}).clip_dir
            tokenizer = load_clip_tokenizer(clip_dir)
            text = TextEncoder(build_clip_text(config, tokenizer, clip_dir, dtype=torch.float32))
            parts = _TextSide(text, build_retrieval(config.retrieval, text.dim, clip_dir, dtype=torch.float32))
            return cls(parts, tokenizer, model_name=str(model))
        tokenizer = load_clip_tokenizer(None)
        parts = _TextSide(*build_empty_parts(config, tokenizer))
        _load_parts(parts, folder / WEIGHTS_FILE)
        return cls(parts, tokenizer, model_name=str(model))

    @torch.inference_mode()
    def embed(self, text: str) -> QueryEmbedding:
        text = text.strip()
        if not text:
            raise InputError('give a description to search for, e.g. "a person climbing a fence"')
        n_tokens = len(self.tokenizer(text)["input_ids"])
        batch = self.tokenizer([text], truncation=True, max_length=CLIP_MAX_LENGTH, return_tensors="pt")
        pooled = self.parts.text_encoder(batch["input_ids"], batch["attention_mask"])
        vector = self.parts.retrieval.embed_texts(pooled.float())[0]
        return QueryEmbedding(vector=vector.numpy().astype(np.float32), n_tokens=n_tokens, truncated=n_tokens > CLIP_MAX_LENGTH)


def _with_retrieval(config: LavidaConfig, model: str) -> LavidaConfig:
    if config.retrieval is None:
        raise InputError(
            f"model {model!r} has no CLIP image tower, so its scans have no clip embeddings to search: "
            "search with --exhaustive, or scan with a model that has one (the presets and `demo` do)"
        )
    return config


def _load_parts(parts: _TextSide, path: Path) -> None:
    """The text tower's and retrieval part's tensors from a whole-model safetensors file, strictly."""
    own = parts.state_dict()
    try:
        with safe_open(str(path), framework="pt", device="cpu") as file:
            shapes = {key: tuple(file.get_slice(key).get_shape()) for key in file.keys() if key.startswith(("text_encoder.", "retrieval."))}
            check_keys(path, expected={k: tuple(v.shape) for k, v in own.items()}, given=shapes)
            state = {key: file.get_tensor(key).float() for key in own}
    except (OSError, SafetensorError) as error:
        raise CheckpointError(f"cannot read safetensors file {path}: {error}") from error
    parts.load_state_dict(state, strict=True, assign=True)
