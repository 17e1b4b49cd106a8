"""Batch assembly: uint8 clips + anomaly type names -> LavidaInputs (CPU tensors).

Shared by the detector (inference) and training, which also asks for LM labels on the answer, reads
fewer pixels per frame, and may hold image samples (the reference's image datasets): these go through
Qwen2-VL as images (image placeholders, their own pixel budget, "image" in the question) and SAM2
segments them without its "no memory" embedding.

Each clip's prompt is a template pair of `config.prompt_templates` drawn by `rng` when given (training
may pass one), else by a generator seeded from the clip's pixels and names (`prompt_rng`): a clip
asked the same way always gets the same prompt, so the detector stays deterministic, while different
clips draw as the reference's random.choice does.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from lavida_core.config import LavidaConfig, MLLMConfig
from lavida_core.frames import Clip, ScaledClip, qwen_frames, qwen_video_patches, sam_frames, sam_images
from lavida_core.modeling.model import LavidaInputs
from lavida_core.tokenizer import choose_prompt, encode_anomaly_types, encode_prompt

IGNORE_INDEX = -100


def pixel_budget(mllm: MLLMConfig, *, image: bool, training: bool) -> tuple[int, int]:
    """(min, max) pixels per frame for Qwen2-VL: an image its own budget; a video frame the training
    budget in training and the inference budget otherwise."""
    if image:
        return mllm.image_min_pixels, mllm.image_max_pixels
    if training:
        return mllm.train_min_pixels, mllm.train_max_pixels
    return mllm.min_pixels, mllm.max_pixels


def prompt_rng(clip: np.ndarray, names: list[str]) -> np.random.Generator:
    """A generator seeded by the clip (its size and every 8th pixel of each frame) and the names."""
    digest = hashlib.blake2b(repr(clip.shape).encode(), digest_size=8)
    digest.update(np.ascontiguousarray(clip[:, ::8, ::8]).tobytes())
    digest.update("\0".join(names).encode())
    return np.random.default_rng(int.from_bytes(digest.digest(), "little"))


def build_inputs(
    clips: list[Clip],
    anomaly_types: list[list[str]],
    *,
    config: LavidaConfig,
    qwen_tokenizer: PreTrainedTokenizerBase,
    clip_tokenizer: PreTrainedTokenizerBase,
    training: bool = False,
    is_image: list[bool] | None = None,
    rng: np.random.Generator | None = None,
    device: torch.device | None = None,
) -> LavidaInputs:
    """clips: validated uint8 [T, H, W, 3] arrays (or ScaledClips: each tower reads its own array);
    anomaly_types: the names asked for each clip.

    training: the training pixel budget and LM labels; is_image: per clip, an image sample (T == 1);
    rng: draws the prompt templates (None: seeded by each clip, see the module docstring); device: where
    the pixels are prepared and left (the detector's: frames cross to it as uint8 and are resized there,
    which on a GPU takes the resize off the CPU; None: the CPU)."""
    mllm = config.mllm
    is_image = is_image or [False] * len(clips)
    patches, grids, prompts, labels = [], [], [], []
    for scaled, names, image in zip(clips, anomaly_types, is_image, strict=True):
        clip = qwen_frames(scaled)
        if image and clip.shape[0] != 1:
            raise ValueError(f"an image sample has one frame, got {clip.shape[0]}")
        min_pixels, max_pixels = pixel_budget(mllm, image=image, training=training)
        patches_b, grid = qwen_video_patches(
            clip,
            patch_size=mllm.patch_size,
            temporal_patch_size=mllm.temporal_patch_size,
            merge_size=mllm.spatial_merge_size,
            min_pixels=min_pixels,
            max_pixels=max_pixels,
            sized=isinstance(scaled, ScaledClip),
            device=device,
        )  # an image is one frame, repeated to a temporal patch as Qwen's image processor does
        patches.append(patches_b)
        grids.append(grid)
        question, answer = choose_prompt(config.prompt_templates, rng if rng is not None else prompt_rng(clip, names))
        n_visual = grid[0] * grid[1] * grid[2] // mllm.spatial_merge_size**2
        kind = "image" if image else "video"
        prompt = encode_prompt(qwen_tokenizer, names, n_visual, question=question, answer=answer, kind=kind)
        prompts.append(prompt.input_ids)
        labels.append(torch.where(prompt.answer_mask, prompt.input_ids, IGNORE_INDEX))
    texts = [encode_anomaly_types(clip_tokenizer, names) for names in anomaly_types]
    return LavidaInputs(
        input_ids=_right_pad(prompts, qwen_tokenizer.pad_token_id),
        pixel_values=torch.cat(patches),
        grid_thw=torch.tensor(grids, dtype=torch.long),
        sam_images=torch.cat([sam_images(sam_frames(c), image_size=config.image_encoder.image_size, device=device) for c in clips]),
        frames_per_clip=[len(c) for c in clips],
        text_input_ids=[t["input_ids"] for t in texts],
        text_attention_mask=[t["attention_mask"] for t in texts],
        labels=_right_pad(labels, IGNORE_INDEX) if training else None,
        is_image=list(is_image),
    )


def move_inputs(inputs: LavidaInputs, device: torch.device, dtype: torch.dtype) -> LavidaInputs:
    """Inputs on `device`; the float tensors (pixels) in `dtype`."""
    to = dict(device=device)
    return LavidaInputs(
        input_ids=inputs.input_ids.to(**to),
        pixel_values=inputs.pixel_values.to(**to, dtype=dtype),
        grid_thw=inputs.grid_thw.to(**to),
        sam_images=inputs.sam_images.to(**to, dtype=dtype),
        frames_per_clip=inputs.frames_per_clip,
        text_input_ids=[t.to(**to) for t in inputs.text_input_ids],
        text_attention_mask=[t.to(**to) for t in inputs.text_attention_mask],
        labels=inputs.labels.to(**to) if inputs.labels is not None else None,
        is_image=inputs.is_image,
    )


def _right_pad(rows: list[torch.Tensor], value: int) -> torch.Tensor:
    length = max(len(r) for r in rows)
    return torch.stack([torch.nn.functional.pad(r, (0, length - len(r)), value=value) for r in rows])
