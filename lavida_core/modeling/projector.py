"""LAVIDA's Multi-scale Semantic Projector and its two-way Q-Former.

Turns the MLLM's `<SEG>` hidden state into one SAM2 prompt embedding per frame, conditioned on the
anomaly type names (CLIP text features) cross-attended with the frame's SAM2 features:

    text [n, Dt] --text_proj--> [n, D] --cross-attn over frame tokens--> class tokens [t, n, D]
    seg  [Ds]    --seg_proj---> [1, D]
    Q-Former(queries [q, D]; keys = [seg; class tokens]) -> prompt [t, 1, C], class emb [t, n, C]

Parameter names follow the reference so that its trained projector weights map one to one.
Built from SAM2's attention blocks (sam2 package); the composition is ours.
"""

from __future__ import annotations

import torch
from sam2.modeling.sam.transformer import Attention, TwoWayAttentionBlock
from sam2.modeling.sam2_utils import MLP
from torch import nn

from lavida_core.config import ProjectorConfig


class TwoWayQFormer(nn.Module):
    """Learned queries and the input tokens attend to each other (SAM's two-way blocks)."""

    def __init__(self, *, d_model: int, output_dim: int, n_heads: int, n_layers: int, n_queries: int, d_ff: int) -> None:
        super().__init__()
        self.output_dim = output_dim
        self.query_tokens = nn.Parameter(torch.randn(n_queries, d_model))
        self.transformer_layers = nn.ModuleList(
            TwoWayAttentionBlock(
                embedding_dim=d_model, num_heads=n_heads, mlp_dim=d_ff, attention_downsample_rate=2, skip_first_layer_pe=False
            )
            for _ in range(n_layers)
        )
        self.output_q_proj = MLP(d_model * n_queries, d_model, output_dim, num_layers=1)
        self.output_k_proj = MLP(d_model, d_model, output_dim, num_layers=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: [B, n, D] -> (pooled queries [B, 1, C], per-token outputs [B, n, C])."""
        b = x.shape[0]
        query_pe = self.query_tokens.unsqueeze(0).expand(b, -1, -1)  # [B, q, D]
        queries, keys = query_pe, x
        for layer in self.transformer_layers:
            queries, keys = layer(queries=queries, keys=keys, query_pe=query_pe, key_pe=x)
        pooled = self.output_q_proj(queries.reshape(b, -1)).view(b, -1, self.output_dim)  # [B, 1, C]
        return pooled, self.output_k_proj(keys)


class SemanticProjector(nn.Module):
    def __init__(self, config: ProjectorConfig, *, llm_dim: int, text_dim: int, vision_dim: int) -> None:
        super().__init__()
        hidden = config.hidden_dim
        self.video_proj = nn.Linear(vision_dim, hidden)
        self.text_proj = nn.Linear(text_dim, hidden)
        self.cross_attn = Attention(hidden, num_heads=config.cross_attn_heads, downsample_rate=2)
        self.output_norm = nn.LayerNorm(hidden)
        self.output_proj = nn.Linear(hidden, hidden)
        self.seg_proj = nn.Linear(llm_dim, hidden)
        self.text_fc = TwoWayQFormer(
            d_model=hidden,
            output_dim=vision_dim,
            n_heads=config.qformer_heads,
            n_layers=config.qformer_layers,
            n_queries=config.qformer_queries,
            d_ff=config.qformer_ff_dim,
        )

    def forward(
        self, seg: torch.Tensor, text: torch.Tensor, vision: torch.Tensor, vision_pos: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One clip.

        seg: [1, Ds] the <SEG> hidden state; text: [n, Dt] anomaly type features;
        vision, vision_pos: [L, t, C] the clip's frame tokens.
        Returns prompts [t, 1, C] (one per frame) and class embeddings [t, n, C].
        """
        frames = self.video_proj(vision + vision_pos).permute(1, 0, 2)  # [t, L, D]
        text_tokens = self.text_proj(text).unsqueeze(0).expand(frames.shape[0], -1, -1)  # [t, n, D]
        attended = self.cross_attn(q=text_tokens, k=frames, v=frames)  # [t, n, D]
        classes = self.output_proj(self.output_norm(text_tokens + attended))  # [t, n, D]
        seg_token = self.seg_proj(seg).unsqueeze(0).expand(frames.shape[0], -1, -1)  # [t, 1, D]
        prompts, outputs = self.text_fc(torch.cat([seg_token, classes], dim=1))
        return prompts, outputs[:, 1:]
