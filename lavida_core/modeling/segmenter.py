"""SAM2 parts of LAVIDA: the Hiera image encoder and the prompt-driven mask decoder.

LAVIDA treats every sampled frame as an initial conditioning frame (reference `seg_video` calls
`track_step(is_init_cond_frame=True)` for all frames), so SAM2's memory modules never change its
outputs and are not built here. Per frame:

    features = image_encoder(frame)                      # 3 FPN levels, lowest at 1/16
    high_res = [conv_s0(level0), conv_s1(level1)]       # decoder's high-res skip features
    embedding = level2 + no_mem_embed                    # "no memory" frame embedding (video frames;
                                                         # image samples: level2 alone, as seg_image)
    sparse = [not-a-point, not-a-point, prompt]          # SAM2 pads an empty point prompt
    masks, ious, object_score = mask_decoder(embedding, dense_pe, sparse, no_mask_embed, multimask)

Submodule names follow SAM2's checkpoints (`image_encoder`, `sam_prompt_encoder`,
`sam_mask_decoder`, `no_mem_embed`) so an official SAM2.1 `.pt` loads by name.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from sam2.modeling.backbones.hieradet import Hiera
from sam2.modeling.backbones.image_encoder import FpnNeck, ImageEncoder
from sam2.modeling.position_encoding import PositionEmbeddingSine
from sam2.modeling.sam.mask_decoder import MaskDecoder
from sam2.modeling.sam.prompt_encoder import PromptEncoder
from sam2.modeling.sam.transformer import TwoWayTransformer
from torch import nn

from lavida_core.config import ImageEncoderConfig, MaskDecoderConfig

NO_OBJECT_LOGIT = -1024.0  # SAM2's mask logit for frames where no object appears

# Keys of an official SAM2.1 checkpoint that belong to video memory and tracking, which LAVIDA's
# per-frame inference never uses (see the module docstring). Loading ignores exactly these.
SAM2_UNUSED_KEY_PREFIXES = (
    "memory_attention.",
    "memory_encoder.",
    "maskmem_tpos_enc",
    "no_mem_pos_enc",
    "no_obj_ptr",
    "obj_ptr_proj.",
    "obj_ptr_tpos_proj.",
    "mask_downsample.",
    "no_obj_embed_spatial",
)


@dataclass
class FrameFeatures:
    embedding: torch.Tensor  # [N, C, s, s] lowest level (+ no_mem_embed on video frames)
    high_res: list[torch.Tensor]  # [N, C/8, 4s, 4s], [N, C/4, 2s, 2s]
    tokens: torch.Tensor  # [s*s, N, C] lowest level, for the projector
    tokens_pos: torch.Tensor  # [s*s, N, C] its positional encoding


@dataclass
class MaskPrediction:
    mask_logits: torch.Tensor  # [N, M, 4s, 4s] (M = 3 candidates); in eval, NO_OBJECT_LOGIT where no object
    ious: torch.Tensor  # [N, M] predicted IoU of each candidate
    object_score_logits: torch.Tensor  # [N, 1]; sigmoid = the frame's anomaly score

    def best(self) -> torch.Tensor:
        """[N, 4s, 4s] the candidate with the highest predicted IoU, per frame."""
        index = self.ious.argmax(dim=1)
        return self.mask_logits[torch.arange(len(index), device=index.device), index]


class Segmenter(nn.Module):
    def __init__(self, *, image: ImageEncoderConfig, decoder: MaskDecoderConfig) -> None:
        super().__init__()
        d = image.d_model
        self.image_size = image.image_size
        self.embedding_size = image.image_size // 16
        trunk = Hiera(
            embed_dim=image.embed_dim,
            num_heads=image.num_heads,
            stages=image.stages,
            global_att_blocks=image.global_att_blocks,
            window_spec=image.window_spec,
            window_pos_embed_bkg_spatial_size=image.window_pos_embed_bkg_spatial_size,
        )
        neck = FpnNeck(
            position_encoding=PositionEmbeddingSine(num_pos_feats=d, normalize=True, temperature=10000),
            d_model=d,
            backbone_channel_list=[image.embed_dim * 2**i for i in reversed(range(len(image.stages)))],
            fpn_top_down_levels=[2, 3],
            fpn_interp_model="nearest",
        )
        self.image_encoder = ImageEncoder(trunk=trunk, neck=neck, scalp=1)
        self.sam_prompt_encoder = PromptEncoder(
            embed_dim=d,
            image_embedding_size=(self.embedding_size, self.embedding_size),
            input_image_size=(image.image_size, image.image_size),
            mask_in_chans=16,
        )
        self.sam_mask_decoder = MaskDecoder(
            num_multimask_outputs=decoder.num_multimask_outputs,
            transformer=TwoWayTransformer(
                depth=decoder.transformer_depth,
                embedding_dim=d,
                mlp_dim=decoder.transformer_mlp_dim,
                num_heads=decoder.transformer_num_heads,
            ),
            transformer_dim=d,
            iou_head_depth=decoder.iou_head_depth,
            iou_head_hidden_dim=decoder.iou_head_hidden_dim,
            use_high_res_features=True,
            iou_prediction_use_sigmoid=True,
            pred_obj_scores=True,
            pred_obj_scores_mlp=True,
            use_multimask_token_for_obj_ptr=True,
        )
        self.no_mem_embed = nn.Parameter(torch.zeros(1, 1, d))
        nn.init.trunc_normal_(self.no_mem_embed, std=0.02)

    def encode(self, images: torch.Tensor, *, image_frames: torch.Tensor | None = None) -> FrameFeatures:
        """images: [N, 3, S, S] normalised -> the per-frame features the decoder and projector use.

        image_frames: bool [N], frames of image samples: the reference segments those with SAM2's
        image path (`seg_image`), which adds no `no_mem_embed`; video frames go through `track_step`
        as initial conditioning frames, which adds it."""
        out = self.image_encoder(images)
        # SAM2's FPN upsamples in float32 and its position encodings are float32 (it relies on CUDA
        # autocast): back to the weights' dtype, so that bf16 runs the same on every device
        dtype = self.no_mem_embed.dtype
        levels = [level.to(dtype) for level in out["backbone_fpn"]]  # 3 levels, high-res first
        pos = [p.to(dtype) for p in out["vision_pos_enc"]]
        high_res = [self.sam_mask_decoder.conv_s0(levels[0]), self.sam_mask_decoder.conv_s1(levels[1])]
        lowest = levels[-1]  # [N, C, s, s]
        tokens = lowest.flatten(2).permute(2, 0, 1)  # [s*s, N, C]
        tokens_pos = pos[-1].flatten(2).permute(2, 0, 1)  # [s*s, N, C]
        n, c, s, _ = lowest.shape
        no_mem = self.no_mem_embed.expand(1, n, c)  # [1, N, C]
        if image_frames is not None:
            no_mem = no_mem * (~image_frames).to(no_mem.dtype).view(1, n, 1)
        embedding = (tokens + no_mem).permute(1, 2, 0).reshape(n, c, s, s)
        return FrameFeatures(embedding=embedding, high_res=high_res, tokens=tokens, tokens_pos=tokens_pos)

    def decode(self, features: FrameFeatures, prompts: torch.Tensor) -> MaskPrediction:
        """prompts: [N, 1, C] one prompt embedding per frame -> 3 candidate masks, IoUs, object score."""
        n = prompts.shape[0]
        empty_points = (
            torch.zeros(n, 1, 2, device=prompts.device),
            -torch.ones(n, 1, dtype=torch.int32, device=prompts.device),
        )
        sparse, dense = self.sam_prompt_encoder(points=empty_points, boxes=None, masks=None)  # [N, 2, C]
        sparse = torch.cat([sparse.to(prompts.dtype), prompts], dim=1)  # [N, 3, C]
        masks, ious, _, object_score_logits = self.sam_mask_decoder(
            image_embeddings=features.embedding,
            image_pe=self.sam_prompt_encoder.get_dense_pe().to(features.embedding.dtype),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=True,
            repeat_image=False,
            high_res_features=features.high_res,
        )
        if not self.training:
            # SAM2 blanks the masks of frames whose object score is <= 0. While training the loss does
            # it (as the reference's model does, LossConfig.blank_no_object_masks), so that a recipe
            # may keep the mask gradient there instead.
            appearing = (object_score_logits > 0)[:, :, None, None]  # [N, 1, 1, 1]
            masks = torch.where(appearing, masks, torch.full_like(masks, NO_OBJECT_LOGIT))
        return MaskPrediction(mask_logits=masks.float(), ious=ious.float(), object_score_logits=object_score_logits.float())
