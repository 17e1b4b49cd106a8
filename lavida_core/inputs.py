"""Batch assembly: uint8 clips + anomaly type names -> LavidaInputs (CPU tensors).

Shared by the detector (inference) and training (which also asks for LM labels on the answer).
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from lavida_core.config import LavidaConfig
from lavida_core.frames import qwen_video_patches, sam_images
from lavida_core.modeling.model import LavidaInputs
from lavida_core.tokenizer import encode_anomaly_types, encode_prompt

IGNORE_INDEX = -100


def build_inputs(
    clips: list[np.ndarray],
    anomaly_types: list[list[str]],
    *,
    config: LavidaConfig,
    qwen_tokenizer: PreTrainedTokenizerBase,
    clip_tokenizer: PreTrainedTokenizerBase,
    with_labels: bool = False,
) -> LavidaInputs:
    """clips: validated uint8 [T, H, W, 3] arrays; anomaly_types: the names asked for each clip."""
    mllm = config.mllm
    patches, grids, prompts, labels = [], [], [], []
    for clip, names in zip(clips, anomaly_types, strict=True):
        patches_b, grid = qwen_video_patches(
            clip,
            patch_size=mllm.patch_size,
            temporal_patch_size=mllm.temporal_patch_size,
            merge_size=mllm.spatial_merge_size,
            min_pixels=mllm.min_pixels,
            max_pixels=mllm.max_pixels,
        )
        patches.append(patches_b)
        grids.append(grid)
        prompt = encode_prompt(qwen_tokenizer, names, grid[0] * grid[1] * grid[2] // mllm.spatial_merge_size**2)
        prompts.append(prompt.input_ids)
        labels.append(torch.where(prompt.answer_mask, prompt.input_ids, IGNORE_INDEX))
    texts = [encode_anomaly_types(clip_tokenizer, names) for names in anomaly_types]
    return LavidaInputs(
        input_ids=_right_pad(prompts, qwen_tokenizer.pad_token_id),
        pixel_values=torch.cat(patches),
        grid_thw=torch.tensor(grids, dtype=torch.long),
        sam_images=torch.cat([sam_images(c, image_size=config.image_encoder.image_size) for c in clips]),
        frames_per_clip=[c.shape[0] for c in clips],
        text_input_ids=[t["input_ids"] for t in texts],
        text_attention_mask=[t["attention_mask"] for t in texts],
        labels=_right_pad(labels, IGNORE_INDEX) if with_labels else None,
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
    )


def _right_pad(rows: list[torch.Tensor], value: int) -> torch.Tensor:
    length = max(len(r) for r in rows)
    return torch.stack([torch.nn.functional.pad(r, (0, length - len(r)), value=value) for r in rows])
