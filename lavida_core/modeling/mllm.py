"""Qwen2-VL as LAVIDA's MLLM: frames + prompt in, the `<SEG>` token's last hidden state out.

Forward for a batch of clips (tensors in, tensors out):
1. patch-embed the clips' video patches (an image sample is one temporal patch); at inference,
   temporal pruning drops static merge groups of frames 2..T (the reference prunes at inference only;
   `CompressionConfig.temporal_pruning_in_training`); the vision blocks run on what is left
   (attention within each temporal patch), then the merger;
2. each clip's run of visual placeholder tokens (video, or image for an image sample) is shortened to
   the tokens that survived (as the reference does) and filled with the visual embeddings;
3. reverse-attention token sampling compresses each clip's visual tokens;
4. the clips are left-padded into one batch, positions are 0..n-1 over the real tokens (the reference
   feeds embeddings without 3-D rope indices, which gives exactly these positions), and the language
   model runs; the hidden state at `<SEG>` is the anomaly query.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration
from transformers.vision_utils import get_vision_position_ids

from lavida_core.config import CompressionConfig, MLLMConfig
from lavida_core.modeling.token_compression import reverse_attention_sampling, temporal_keep_mask
from lavida_core.tokenizer import SpecialIds


def qwen_config(config: MLLMConfig, ids: SpecialIds) -> Qwen2VLConfig:
    head_dim = config.hidden_size // config.num_attention_heads
    if 2 * sum(config.mrope_section) != head_dim:
        raise ValueError(f"mrope_section {config.mrope_section} must sum to head_dim/2 = {head_dim // 2}")
    return Qwen2VLConfig(
        text_config=dict(
            vocab_size=config.vocab_size,
            hidden_size=config.hidden_size,
            intermediate_size=config.intermediate_size,
            num_hidden_layers=config.num_hidden_layers,
            num_attention_heads=config.num_attention_heads,
            num_key_value_heads=config.num_key_value_heads,
            max_position_embeddings=config.max_position_embeddings,
            rms_norm_eps=config.rms_norm_eps,
            rope_parameters={"rope_type": "default", "rope_theta": config.rope_theta, "mrope_section": list(config.mrope_section)},
            pad_token_id=ids.pad,
            bos_token_id=None,
            eos_token_id=None,
        ),
        vision_config=dict(
            depth=config.vision_depth,
            embed_dim=config.vision_embed_dim,
            hidden_size=config.hidden_size,
            mlp_ratio=config.vision_mlp_ratio,
            num_heads=config.vision_num_heads,
            patch_size=config.patch_size,
            temporal_patch_size=config.temporal_patch_size,
            spatial_merge_size=config.spatial_merge_size,
        ),
        video_token_id=ids.video,
        attn_implementation=config.attn_implementation,
    )


@dataclass
class MLLMOutput:
    seg_hidden: torch.Tensor  # [B, D] last hidden state at <SEG>
    lm_loss: torch.Tensor | None  # mean cross-entropy on the labelled tokens, when labels are given
    visual_tokens_in: list[int]  # per clip: visual tokens before any compression
    visual_tokens_out: list[int]  # per clip: visual tokens the LLM read


class LavidaMLLM(nn.Module):
    def __init__(self, qwen: Qwen2VLForConditionalGeneration, *, ids: SpecialIds, compression: CompressionConfig) -> None:
        super().__init__()
        self.qwen = qwen
        self.ids = ids
        self.compression = compression

    @property
    def visual(self) -> nn.Module:
        return self.qwen.model.visual

    @property
    def language_model(self) -> nn.Module:
        return self.qwen.model.language_model

    @property
    def hidden_size(self) -> int:
        return self.qwen.config.text_config.hidden_size

    def forward(
        self,
        input_ids: torch.Tensor,
        pixel_values: torch.Tensor,
        grid_thw: torch.Tensor,
        labels: torch.Tensor | None = None,
    ) -> MLLMOutput:
        """input_ids: [B, L] unpadded-equal-length or right-padded with `ids.pad`, each with one run of
        t*h*w/4 video (or image) placeholders and one <SEG>; pixel_values: [sum t*h*w, 3*tp*p*p]; grid_thw: [B, 3];
        labels: [B, L] with -100 where no loss is taken."""
        visual = self.encode_video(pixel_values, grid_thw)  # B x [n_b, D]
        embed = self.language_model.embed_tokens
        sequences, label_rows, n_in, n_out = [], [], [], []
        for b, clip_tokens in enumerate(visual):
            ids_b, labels_b = self._shorten_video_run(input_ids[b], labels[b] if labels is not None else None, len(clip_tokens))
            embeds_b = embed(ids_b).clone()
            visual_pos = self._is_visual(ids_b).nonzero().squeeze(1)
            embeds_b[visual_pos] = clip_tokens.to(embeds_b.dtype)
            n_in.append(int(grid_thw[b].prod()) // self._group)
            ids_b, embeds_b, labels_b = self._sample_tokens(ids_b, embeds_b, labels_b, visual_pos)
            n_out.append(int(self._is_visual(ids_b).sum()))
            sequences.append((ids_b, embeds_b))
            label_rows.append(labels_b)
        ids, embeds, mask = _left_pad(sequences, pad_id=self.ids.pad)
        positions = (mask.long().cumsum(-1) - 1).clamp(min=0)  # [B, L]
        hidden = self.language_model(
            inputs_embeds=embeds, attention_mask=mask, position_ids=positions.unsqueeze(0).expand(3, -1, -1)
        ).last_hidden_state  # [B, L, D]
        seg_hidden = self._seg_hidden(ids, hidden)
        lm_loss = self._lm_loss(hidden, label_rows, ids.shape[1]) if labels is not None else None
        return MLLMOutput(seg_hidden=seg_hidden, lm_loss=lm_loss, visual_tokens_in=n_in, visual_tokens_out=n_out)

    def _is_visual(self, ids: torch.Tensor) -> torch.Tensor:
        return (ids == self.ids.video) | (ids == self.ids.image)

    @property
    def _prunes(self) -> bool:
        return self.compression.temporal_pruning and (not self.training or self.compression.temporal_pruning_in_training)

    @property
    def _group(self) -> int:
        return self.qwen.config.vision_config.spatial_merge_size**2

    def encode_video(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> list[torch.Tensor]:
        """Vision tower (with temporal pruning when it applies). Returns per clip [n_kept / 4, D] LLM-ready tokens."""
        visual = self.visual
        merge = visual.spatial_merge_size
        patches = visual.patch_embed(pixel_values)  # [N, E]
        positions = get_vision_position_ids(grid_thw, merge)  # [N, 2]
        keep, frame_lengths, clip_lengths = self._keep_mask(patches, grid_thw)
        x = patches[keep]
        rotary = visual.rotary_pos_emb(x, positions[keep])
        segments = [n for n in frame_lengths if n > 0]  # a fully static temporal patch keeps no token
        cu_seqlens = F.pad(torch.tensor(segments, device=x.device).cumsum(0), (1, 0)).to(torch.int32)
        max_seqlen = max(segments)
        for block in visual.blocks:
            x = block(x, cu_seqlens=cu_seqlens, max_seqlen=max_seqlen, position_embeddings=rotary)
        merged = visual.merger(x)  # [N_kept / 4, D]
        return list(torch.split(merged, [n // self._group for n in clip_lengths]))

    def _keep_mask(self, patches: torch.Tensor, grid_thw: torch.Tensor) -> tuple[torch.Tensor, list[int], list[int]]:
        masks, frame_lengths, clip_lengths = [], [], []
        start = 0
        for t, h, w in grid_thw.tolist():
            clip = patches[start : start + t * h * w]
            start += t * h * w
            if self._prunes:
                with torch.no_grad():
                    keep = temporal_keep_mask(
                        clip, (t, h, w), merge_size=self.visual.spatial_merge_size, threshold=self.compression.static_threshold
                    )
            else:
                keep = torch.ones(t * h * w, dtype=torch.bool, device=patches.device)
            masks.append(keep)
            frame_lengths += keep.view(t, h * w).sum(1).tolist()
            clip_lengths.append(int(keep.sum()))
        return torch.cat(masks), frame_lengths, clip_lengths

    def _shorten_video_run(self, ids: torch.Tensor, labels: torch.Tensor | None, n_visual: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Drop right padding and the visual placeholders beyond the n_visual tokens that survived pruning."""
        keep = ids != self.ids.pad
        visual_pos = self._is_visual(ids).nonzero().squeeze(1)
        if len(visual_pos) < n_visual:
            raise ValueError(f"prompt has {len(visual_pos)} visual placeholders for {n_visual} visual tokens")
        keep[visual_pos[n_visual:]] = False
        return ids[keep], labels[keep] if labels is not None else None

    def _sample_tokens(
        self, ids: torch.Tensor, embeds: torch.Tensor, labels: torch.Tensor | None, visual_pos: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        if not self.compression.token_sampling or len(visual_pos) == 0:
            return ids, embeds, labels
        # With gradients: the merged features are weighted means of the visual tokens, so a vision tower
        # being trained (lora.vision_target_modules) learns through them; the choice of centres and
        # clusters is not differentiable. A frozen tower's tokens need no gradient, so nothing changes then.
        merged, centres = reverse_attention_sampling(
            embeds[visual_pos],
            ratio=self.compression.reduction_ratio,
            k=self.compression.lof_k,
            centres_own_cluster=self.compression.lof_centres_own_cluster,
        )
        keep = torch.ones(len(ids), dtype=torch.bool, device=ids.device)
        keep[visual_pos] = False
        keep[visual_pos[centres]] = True
        embeds = embeds.clone()
        embeds[visual_pos[centres]] = merged
        return ids[keep], embeds[keep], labels[keep] if labels is not None else None

    def _seg_hidden(self, ids: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        is_seg = ids == self.ids.seg  # [B, L]
        counts = is_seg.sum(1)
        if not bool((counts == 1).all()):
            raise ValueError(f"each prompt must hold exactly one <SEG> token, found {counts.tolist()}")
        return hidden[is_seg]  # [B, D]

    def _lm_loss(self, hidden: torch.Tensor, label_rows: list[torch.Tensor], length: int) -> torch.Tensor:
        labels = torch.stack([F.pad(row, (length - len(row), 0), value=-100) for row in label_rows])  # [B, L]
        logits = self.qwen.lm_head(hidden[:, :-1]).float()  # predict token i+1 from position i
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100)


def _left_pad(sequences: list[tuple[torch.Tensor, torch.Tensor]], *, pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    length = max(len(ids) for ids, _ in sequences)
    b, d = len(sequences), sequences[0][1].shape[-1]
    ids = torch.full((b, length), pad_id, dtype=torch.long, device=sequences[0][0].device)
    embeds = sequences[0][1].new_zeros(b, length, d)
    mask = torch.zeros(b, length, dtype=torch.long, device=ids.device)
    for i, (ids_i, embeds_i) in enumerate(sequences):
        n = len(ids_i)
        ids[i, length - n :], embeds[i, length - n :], mask[i, length - n :] = ids_i, embeds_i, 1
    return ids, embeds, mask
