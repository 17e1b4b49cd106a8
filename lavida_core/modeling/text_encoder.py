"""CLIP text tower: one pooled feature per anomaly type name."""

from __future__ import annotations

import torch
from torch import nn
from transformers import CLIPTextConfig, CLIPTextModel

from lavida_core.config import TextEncoderConfig


def clip_text_config(config: TextEncoderConfig, *, bos_id: int, eos_id: int, pad_id: int) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        max_position_embeddings=config.max_position_embeddings,
        projection_dim=config.hidden_size,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )


class TextEncoder(nn.Module):
    def __init__(self, clip: CLIPTextModel) -> None:
        super().__init__()
        self.clip = clip

    @property
    def dim(self) -> int:
        return self.clip.config.hidden_size

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """[n, L] token ids -> [n, D] pooled features (the end-of-text token's hidden state)."""
        return self.clip(input_ids=input_ids, attention_mask=attention_mask).pooler_output
