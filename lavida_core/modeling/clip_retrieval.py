"""CLIP's joint image-text space, for search: the image tower and the two projections.

    ClipRetrieval.embed_images(pixels [N, 3, S, S])        -> [N, P] unit vectors
    ClipRetrieval.embed_texts(pooled text features [n, Dt]) -> [n, P] unit vectors

The text side reuses LAVIDA's CLIP text tower (its pooled output, `TextEncoder`); only
`text_projection` is added. Module names follow Hugging Face's `CLIPModel` (`vision_model.*`,
`visual_projection`, `text_projection`, `logit_scale`), so an official CLIP folder's keys load as
they are. Pixels are CLIP-preprocessed by `lavida_core.frames.clip_pixels`.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModel

from lavida_core.config import RetrievalConfig


def clip_vision_config(config: RetrievalConfig) -> CLIPVisionConfig:
    return CLIPVisionConfig(
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        image_size=config.image_size,
        patch_size=config.patch_size,
        projection_dim=config.projection_dim,
    )


class ClipRetrieval(nn.Module):
    def __init__(self, config: RetrievalConfig, *, text_dim: int) -> None:
        super().__init__()
        self.config = config
        self.vision_model = CLIPVisionModel(clip_vision_config(config))
        self.visual_projection = nn.Linear(config.hidden_size, config.projection_dim, bias=False)
        self.text_projection = nn.Linear(text_dim, config.projection_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))  # CLIP's initial temperature

    @property
    def dim(self) -> int:
        return self.config.projection_dim

    def embed_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """[N, 3, S, S] CLIP-normalised pixels -> [N, P] L2-normalised image embeddings."""
        pooled = self.vision_model(pixel_values=pixels).pooler_output  # [N, Dv]
        return nn.functional.normalize(self.visual_projection(pooled), dim=-1)

    def embed_texts(self, pooled: torch.Tensor) -> torch.Tensor:
        """[n, Dt] the text tower's pooled features -> [n, P] L2-normalised text embeddings."""
        return nn.functional.normalize(self.text_projection(pooled), dim=-1)
