"""Typed configuration of LAVIDA: one dataclass per part, and named presets.

`paper` is the reference model (Qwen2-VL-7B-Instruct, CLIP ViT-B/32 text tower, SAM2.1 Hiera-S at
1024, Q-Former 5 layers / 48 queries, adapter 768, token reduction 0.5 with k = 8). `tiny` is the same
architecture at a few MB, for tests and laptops. Presets are values of these dataclasses, not files.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from lavida_core.errors import InputError


@dataclass(frozen=True)
class MLLMConfig:
    """Qwen2-VL: the vision tower and the language model that reads frames + prompt."""

    vocab_size: int = 151658  # Qwen2-VL tokenizer (151657) + <SEG>, as the reference resizes to
    hidden_size: int = 3584
    intermediate_size: int = 18944
    num_hidden_layers: int = 28
    num_attention_heads: int = 28
    num_key_value_heads: int = 4
    rope_theta: float = 1_000_000.0
    mrope_section: tuple[int, ...] = (16, 24, 24)  # sums to head_dim / 2
    rms_norm_eps: float = 1e-6
    max_position_embeddings: int = 32768
    vision_depth: int = 32
    vision_embed_dim: int = 1280
    vision_num_heads: int = 16
    vision_mlp_ratio: int = 4
    patch_size: int = 14
    temporal_patch_size: int = 2
    spatial_merge_size: int = 2
    # Pixels per frame fed to the vision tower (Qwen's smart_resize bounds, 28 x 28 pixels per merged
    # token). Inference and evaluation: 160..192 tokens x 8 frames (reference dataset/video/base.py,
    # inference=True); training: 32..64 tokens x 8 frames (inference=False); image samples (training
    # only): 32..1024 tokens (dataset/image/base.py).
    min_pixels: int = 160 * 28 * 28 * 8
    max_pixels: int = 192 * 28 * 28 * 8
    train_min_pixels: int = 32 * 28 * 28 * 8
    train_max_pixels: int = 64 * 28 * 28 * 8
    image_min_pixels: int = 32 * 28 * 28
    image_max_pixels: int = 1024 * 28 * 28
    attn_implementation: str = "sdpa"


@dataclass(frozen=True)
class TextEncoderConfig:
    """CLIP text tower; its pooled output encodes each anomaly type name."""

    vocab_size: int = 49408
    hidden_size: int = 512
    intermediate_size: int = 2048
    num_hidden_layers: int = 12
    num_attention_heads: int = 8
    max_position_embeddings: int = 77


@dataclass(frozen=True)
class RetrievalConfig:
    """CLIP image tower + the two projections into CLIP's joint space (ViT-B/32 by default): one
    embedding per clip for search (jobs/search). Not part of LAVIDA's detection; the text side is
    the text tower above with `text_projection`. Image preprocessing is CLIP's (shortest side to
    `image_size`, centre crop, CLIP mean/std)."""

    image_size: int = 224
    patch_size: int = 32
    hidden_size: int = 768
    intermediate_size: int = 3072
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    projection_dim: int = 512


@dataclass(frozen=True)
class ImageEncoderConfig:
    """SAM2 Hiera trunk + FPN neck (SAM2.1 Hiera-S by default)."""

    image_size: int = 1024
    embed_dim: int = 96
    num_heads: int = 1
    stages: tuple[int, ...] = (1, 2, 11, 2)
    global_att_blocks: tuple[int, ...] = (7, 10, 13)
    window_spec: tuple[int, ...] = (8, 4, 14, 7)
    window_pos_embed_bkg_spatial_size: tuple[int, int] = (7, 7)
    d_model: int = 256  # neck output = SAM prompt embedding dim


@dataclass(frozen=True)
class MaskDecoderConfig:
    """SAM2 mask decoder with the object-score head, prompted by the projector's embedding."""

    transformer_depth: int = 2
    transformer_mlp_dim: int = 2048
    transformer_num_heads: int = 8
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256
    num_multimask_outputs: int = 3


@dataclass(frozen=True)
class ProjectorConfig:
    """Multi-scale Semantic Projector with its two-way Q-Former."""

    hidden_dim: int = 768  # "adapter" width
    cross_attn_heads: int = 8
    qformer_layers: int = 5
    qformer_queries: int = 48
    qformer_heads: int = 12
    qformer_ff_dim: int = 2048


@dataclass(frozen=True)
class CompressionConfig:
    """The two gradient-free token-compression steps (each switchable)."""

    temporal_pruning: bool = True
    static_threshold: float = 0.01  # mean (1 - cos) over frames 2..T below this: static group
    # The reference prunes at inference only (LLM.py: video_embed runs when `inference`). True also
    # prunes in training: our earlier behaviour, with which the shipped demo model was trained.
    temporal_pruning_in_training: bool = False
    token_sampling: bool = True
    reduction_ratio: float = 0.5  # keep R = max(1, int(L * ratio)) visual tokens
    lof_k: int = 8
    # The reference assigns every token to its nearest centre, so of two identical centres (letterbox
    # bars) the second gets an empty cluster and its feature becomes the mean of all tokens. True puts
    # every centre in its own cluster: our earlier behaviour, with which the demo model was trained.
    lof_centres_own_cluster: bool = False


@dataclass(frozen=True)
class LoraConfig:
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")  # in the language model
    # LoRA in the MLLM's vision tower too, on these modules (suffixes of its module names, e.g. "qkv",
    # "attn.proj", "fc1", "fc2", "merger.mlp.0"). The reference keeps the pretrained tower frozen (none).
    # For a model from random weights (the demo recipe) a frozen tower only gives the LLM a random
    # projection of each patch, and the demo model told colour-shape pairs apart worse (bench/RESULTS.md).
    vision_target_modules: tuple[str, ...] = ()


@dataclass(frozen=True)
class LavidaConfig:
    name: str = "paper"
    mllm: MLLMConfig = field(default_factory=MLLMConfig)
    text_encoder: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    image_encoder: ImageEncoderConfig = field(default_factory=ImageEncoderConfig)
    mask_decoder: MaskDecoderConfig = field(default_factory=MaskDecoderConfig)
    projector: ProjectorConfig = field(default_factory=ProjectorConfig)
    compression: CompressionConfig = field(default_factory=CompressionConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    # the search embeddings' image tower (None: the model embeds no clips; folders saved before it existed)
    retrieval: RetrievalConfig | None = field(default_factory=RetrievalConfig)
    frames_per_clip: int = 8
    # Prompt wording (lavida_core.tokenizer.PROMPT_TEMPLATES): "reference" draws one of the reference's
    # 5 questions x 5 answers per clip (dataset/messages_template.py); "fixed" always asks the one
    # question our models were trained with before (the shipped demo model).
    prompt_templates: str = "reference"

    def __post_init__(self) -> None:
        if self.prompt_templates not in PROMPT_TEMPLATE_SETS:
            raise InputError(f"prompt_templates must be one of {PROMPT_TEMPLATE_SETS}, got {self.prompt_templates!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LavidaConfig:
        """A saved config (a model folder's lavida.json). Fields it lacks because it was written before
        they existed get the behaviour it was trained with (`_SAVED_BEFORE`), not today's defaults."""
        parts = {f.name: f.type for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in _with_fields_saved_before(data).items():
            if key not in parts:
                raise InputError(f"unknown LAVIDA config field {key!r}; known fields: {sorted(parts)}")
            part_cls = _PART_CLASSES.get(key)
            kwargs[key] = _part_from_dict(part_cls, key, value) if part_cls and value is not None else value
        return cls(**kwargs)

    def replace(self, **changes: Any) -> LavidaConfig:
        return dataclasses.replace(self, **changes)

    def updated(self, changes: dict[str, Any]) -> LavidaConfig:
        """This config with some fields changed, parts given as dicts of their changed fields, e.g.
        {"prompt_templates": "fixed", "compression": {"lof_centres_own_cluster": True}}."""
        kwargs: dict[str, Any] = {}
        for key, value in changes.items():
            part_cls = _PART_CLASSES.get(key)
            if part_cls is not None and isinstance(value, dict):
                current = getattr(self, key)
                value = _part_from_dict(part_cls, key, {**(dataclasses.asdict(current) if current is not None else {}), **value})
            kwargs[key] = value
        known = {f.name for f in dataclasses.fields(self)}
        if set(kwargs) - known:
            raise InputError(f"unknown LAVIDA config field(s) {sorted(set(kwargs) - known)}; known fields: {sorted(known)}")
        return dataclasses.replace(self, **kwargs)


_PART_CLASSES: dict[str, type] = {
    "mllm": MLLMConfig,
    "text_encoder": TextEncoderConfig,
    "image_encoder": ImageEncoderConfig,
    "mask_decoder": MaskDecoderConfig,
    "projector": ProjectorConfig,
    "compression": CompressionConfig,
    "lora": LoraConfig,
    "retrieval": RetrievalConfig,
}


PROMPT_TEMPLATE_SETS = ("reference", "fixed")

# Fields added by issue 14 (fidelity to the reference recipe), with the behaviour of the models saved
# before them: one fixed prompt, temporal pruning and own-cluster centres in training too, and the
# inference pixel budget for every frame (their `min_pixels` / `max_pixels`).
_SAVED_BEFORE: dict[str, Any] = {
    "prompt_templates": "fixed",
    "retrieval": None,  # issue 30: no image tower (such a model embeds no clips for search)
    "compression": {"temporal_pruning_in_training": True, "lof_centres_own_cluster": True},
}


def _with_fields_saved_before(data: dict[str, Any]) -> dict[str, Any]:
    data = dict(data)
    for key, value in _SAVED_BEFORE.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**value, **data[key]}
        elif key not in data:
            data[key] = value
    mllm = data.get("mllm")
    if isinstance(mllm, dict) and "min_pixels" in mllm and "max_pixels" in mllm:
        budget = {f"{kind}_{bound}_pixels": mllm[f"{bound}_pixels"] for kind in ("train", "image") for bound in ("min", "max")}
        data["mllm"] = {**budget, **mllm}
    return data


def _part_from_dict(part_cls: type, name: str, value: dict[str, Any]) -> Any:
    known = {f.name for f in dataclasses.fields(part_cls)}
    unknown = set(value) - known
    if unknown:
        raise InputError(f"unknown field(s) {sorted(unknown)} in LAVIDA config part {name!r}")
    return part_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in value.items()})


def _tiny() -> LavidaConfig:
    from lavida_core.tokenizer import CLIP_FALLBACK_VOCAB_SIZE, QWEN_FALLBACK_VOCAB_SIZE

    return LavidaConfig(
        name="tiny",
        mllm=MLLMConfig(
            vocab_size=QWEN_FALLBACK_VOCAB_SIZE,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            mrope_section=(1, 1, 2),
            max_position_embeddings=4096,
            vision_depth=2,
            vision_embed_dim=32,
            vision_num_heads=4,
            min_pixels=112 * 112,  # a fixed frame size: 8 x 8 patches, in training too
            max_pixels=112 * 112,
            train_min_pixels=112 * 112,
            train_max_pixels=112 * 112,
            image_min_pixels=112 * 112,
            image_max_pixels=112 * 112,
        ),
        text_encoder=TextEncoderConfig(
            vocab_size=CLIP_FALLBACK_VOCAB_SIZE,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
        ),
        image_encoder=ImageEncoderConfig(
            image_size=128,
            embed_dim=8,
            num_heads=1,
            stages=(1, 1, 2, 1),
            global_att_blocks=(3,),  # a stage's first block pools queries, so it cannot be global
            window_spec=(4, 4, 4, 2),
            window_pos_embed_bkg_spatial_size=(4, 4),
            d_model=32,
        ),
        mask_decoder=MaskDecoderConfig(transformer_mlp_dim=64, transformer_num_heads=2, iou_head_hidden_dim=32),
        retrieval=RetrievalConfig(
            image_size=64,
            patch_size=16,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            projection_dim=32,
        ),  # fmt: skip
        projector=ProjectorConfig(
            hidden_dim=32,
            cross_attn_heads=2,
            qformer_layers=1,
            qformer_queries=4,
            qformer_heads=2,
            qformer_ff_dim=64,
        ),
    )


PRESETS = {"paper": LavidaConfig, "tiny": _tiny}


def preset(name: str) -> LavidaConfig:
    """A named preset (`paper`, `tiny`) as a LavidaConfig."""
    if name not in PRESETS:
        raise InputError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)} or give a model folder")
    return PRESETS[name]()
