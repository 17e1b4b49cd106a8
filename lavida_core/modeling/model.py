"""The LAVIDA model: five parts composed, tensors in and tensors out.

    MLLM(frames, prompt)            -> <SEG> hidden state per clip           [B, Ds]
    TextEncoder(anomaly type names) -> class features per clip               [n_b, Dt]
    Segmenter.encode(frames)        -> per-frame SAM2 features
    SemanticProjector               -> one SAM2 prompt per frame             [T, 1, C]
    Segmenter.decode                -> mask logits, IoUs, object-score logit per frame

The frame anomaly score is sigmoid(object-score logit); the pixel map is the best candidate mask.
Pre/post-processing of uint8 frames lives in `frames.py` and `detector.py`, never here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lavida_core.config import LavidaConfig
from lavida_core.modeling.clip_retrieval import ClipRetrieval
from lavida_core.modeling.mllm import LavidaMLLM
from lavida_core.modeling.projector import SemanticProjector
from lavida_core.modeling.segmenter import MaskPrediction, Segmenter
from lavida_core.modeling.text_encoder import TextEncoder


@dataclass
class LavidaInputs:
    input_ids: torch.Tensor  # [B, L] prompts (right-padded), video placeholders + one <SEG> each
    pixel_values: torch.Tensor  # [sum_b t*h*w, 3*tp*p*p] Qwen2-VL video patches of all clips
    grid_thw: torch.Tensor  # [B, 3]
    sam_images: torch.Tensor  # [sum_b T_b, 3, S, S] every sampled frame of every clip
    frames_per_clip: list[int]  # T_b
    text_input_ids: list[torch.Tensor]  # per clip [n_b, Lt] anomaly type names (CLIP tokens)
    text_attention_mask: list[torch.Tensor]  # per clip [n_b, Lt]
    labels: torch.Tensor | None = None  # [B, L] LM targets (-100 = ignore), for training
    # per clip: an image sample (training; one frame, image placeholders in its prompt), which SAM2
    # segments as an image, without the "no memory" embedding of video frames. None: all videos.
    is_image: list[bool] | None = None


@dataclass
class LavidaOutputs:
    masks: MaskPrediction  # over all frames of all clips, clip after clip
    class_embeddings: list[torch.Tensor]  # per clip [T_b, n_b, C]
    lm_loss: torch.Tensor | None
    visual_tokens_in: list[int]
    visual_tokens_out: list[int]

    @property
    def scores(self) -> torch.Tensor:
        """[sum T_b] frame anomaly scores in 0..1."""
        return torch.sigmoid(self.masks.object_score_logits.squeeze(1))


class LavidaModel(nn.Module):
    def __init__(
        self,
        *,
        config: LavidaConfig,
        mllm: LavidaMLLM,
        text_encoder: TextEncoder,
        segmenter: Segmenter,
        projector: SemanticProjector,
        retrieval: ClipRetrieval | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.mllm = mllm
        self.text_encoder = text_encoder
        self.segmenter = segmenter
        self.projector = projector
        self.retrieval = retrieval  # CLIP image tower + projections for search; not used by forward

    def forward(self, inputs: LavidaInputs) -> LavidaOutputs:
        mllm_out = self.mllm(inputs.input_ids, inputs.pixel_values, inputs.grid_thw, labels=inputs.labels)
        text = self._encode_texts(inputs.text_input_ids, inputs.text_attention_mask)  # per clip [n_b, Dt]
        is_image = inputs.is_image or [False] * len(inputs.frames_per_clip)
        image_frames = torch.tensor(
            [image for image, n in zip(is_image, inputs.frames_per_clip, strict=True) for _ in range(n)],
            dtype=torch.bool,
            device=inputs.sam_images.device,
        )  # [sum T_b]
        features = self.segmenter.encode(inputs.sam_images, image_frames=image_frames)
        prompts, classes = [], []
        start = 0
        for b, n_frames in enumerate(inputs.frames_per_clip):
            frames = slice(start, start + n_frames)
            start += n_frames
            prompt_b, class_b = self.projector(
                seg=mllm_out.seg_hidden[b : b + 1],
                text=text[b],
                vision=features.tokens[:, frames],
                vision_pos=features.tokens_pos[:, frames],
            )
            prompts.append(prompt_b)
            classes.append(class_b)
        masks = self.segmenter.decode(features, torch.cat(prompts, dim=0))
        return LavidaOutputs(
            masks=masks,
            class_embeddings=classes,
            lm_loss=mllm_out.lm_loss,
            visual_tokens_in=mllm_out.visual_tokens_in,
            visual_tokens_out=mllm_out.visual_tokens_out,
        )

    def _encode_texts(self, ids: list[torch.Tensor], masks: list[torch.Tensor]) -> list[torch.Tensor]:
        """Encode every clip's names in one pass (names padded to a common length)."""
        length = max(t.shape[1] for t in ids)
        pad_id = self.text_encoder.clip.config.pad_token_id
        all_ids = torch.cat([nn.functional.pad(t, (0, length - t.shape[1]), value=pad_id) for t in ids])
        all_masks = torch.cat([nn.functional.pad(m, (0, length - m.shape[1]), value=0) for m in masks])
        features = self.text_encoder(all_ids, all_masks)
        return list(torch.split(features, [t.shape[0] for t in ids]))
