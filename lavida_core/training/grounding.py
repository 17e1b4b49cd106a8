"""Grounding pre-training: teach the image and text encoders which names cover which frame tokens.

LAVIDA's paper starts from pretrained SAM2 and CLIP, whose features already tie names to image
regions. A model built from a preset with random weights has no such tie, and learning it through the
whole model (MLLM -> projector -> mask decoder -> object score) is slow: the tiny preset on a CPU
barely moved in 9,000 steps (bench/RESULTS.md, demo model). This stage learns it directly, before the
LAVIDA training loop, on the same segmentation datasets:

    tokens = image_encoder(frame) lowest FPN level          [N, s*s, C]   (what the projector reads)
    names  = text_encoder(every category name)              [K, Dt]
    logit[n, p, k] = scale * cos(W_v tokens[n, p], W_t names[k]) + bias
    loss = BCE(logit, "name k covers token p")  +  BCE(max_p logit, "name k is in frame n")

W_v, W_t, scale and bias form a throwaway head (`GroundingHead`); only the encoders are kept. It is
not part of the paper: `lavida train` runs it only when the config has a "grounding" section, and the
demo model's recipe (models/demo_train.json) uses it.

    config = GroundingConfig(steps=600, batch_size=32)
    head, optimizer = make_head_and_optimizer(model, config)
    for step in range(config.steps):
        batch = frames_batch(datasets, names, config, step, image_size=..., grid=...)
        terms = grounding_step(model, head, optimizer, batch, name_ids, config)

Determinism: the frames of step k are a pure function of (config.seed, k), and the head is built
from torch's RNG seeded with config.seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lavida_core.errors import InputError
from lavida_core.frames import sam_images
from lavida_core.modeling.model import LavidaModel
from lavida_core.training.seg_datasets import SegDataset

ENCODER_PREFIXES = ("segmenter.image_encoder.", "text_encoder.")  # state-dict keys of what grounding trains


@dataclass(frozen=True)
class GroundingConfig:
    steps: int = 600
    batch_size: int = 32  # frames per step
    lr: float = 2e-3
    token_cover: float = 0.2  # a token shows a name when its mask covers this fraction of the token
    token_pos_weight: float = 5.0  # positives are rare among tokens x names
    max_grad_norm: float = 1.0
    seed: int = 0
    # Also ground every word of a multi-word name as a name of its own ("red" and "circle" from "red
    # circle": all red things, all circles), so the encoders learn what each word covers, not only the
    # combinations trained on; meant for names composed of attribute words (the demo's colour-shape
    # names), where a test asks for combinations never seen together. Default off.
    words: bool = False

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise InputError("grounding steps and batch_size must be at least 1")
        if self.lr <= 0 or not 0.0 < self.token_cover <= 1.0 or self.token_pos_weight <= 0:
            raise InputError("grounding needs lr > 0, 0 < token_cover <= 1 and token_pos_weight > 0")


@dataclass
class GroundingBatch:
    images: torch.Tensor  # [N, 3, S, S] SAM2 inputs
    token_labels: torch.Tensor  # [N, s*s, K] float 0/1: name k covers token p
    frame_labels: torch.Tensor  # [N, K] float 0/1: name k is visible in frame n

    def to(self, device: torch.device) -> GroundingBatch:
        return GroundingBatch(self.images.to(device), self.token_labels.to(device), self.frame_labels.to(device))


class GroundingHead(nn.Module):
    """Cosine similarity of projected frame tokens and projected name features, scaled and shifted."""

    def __init__(self, *, vision_dim: int, text_dim: int, dim: int = 32) -> None:
        super().__init__()
        self.vision_proj = nn.Linear(vision_dim, dim)
        self.text_proj = nn.Linear(text_dim, dim)
        self.scale = nn.Parameter(torch.tensor(10.0))
        self.bias = nn.Parameter(torch.tensor(-2.0))

    def forward(self, tokens: torch.Tensor, names: torch.Tensor) -> torch.Tensor:
        """tokens [N, P, C], names [K, Dt] -> logits [N, P, K]."""
        v = F.normalize(self.vision_proj(tokens), dim=-1)
        t = F.normalize(self.text_proj(names), dim=-1)
        return self.scale * torch.einsum("npd,kd->npk", v, t) + self.bias


def encoder_parameters(model: LavidaModel) -> list[nn.Parameter]:
    """What grounding trains: the SAM2 image encoder and the CLIP text tower."""
    return [*model.segmenter.image_encoder.parameters(), *model.text_encoder.parameters()]


def encoder_state(model: LavidaModel) -> dict[str, torch.Tensor]:
    """The grounded weights, under the model's own state-dict keys (load with strict=False)."""
    return {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items() if k.startswith(ENCODER_PREFIXES)}


def frame_logits(model: LavidaModel, head: GroundingHead, images: torch.Tensor, name_ids: dict[str, torch.Tensor]) -> torch.Tensor:
    """[N, s*s, K] grounding logits of every token of every frame for every name."""
    lowest = model.segmenter.image_encoder(images)["backbone_fpn"][-1]  # [N, C, s, s], the projector's tokens
    names = model.text_encoder(name_ids["input_ids"], name_ids["attention_mask"])  # [K, Dt]
    return head(lowest.flatten(2).transpose(1, 2), names)


def grounding_loss(logits: torch.Tensor, batch: GroundingBatch, config: GroundingConfig) -> dict[str, torch.Tensor]:
    pos_weight = torch.tensor(config.token_pos_weight, device=logits.device)
    token = F.binary_cross_entropy_with_logits(logits, batch.token_labels, pos_weight=pos_weight)
    frame = F.binary_cross_entropy_with_logits(logits.amax(dim=1), batch.frame_labels)
    return {"total": token + frame, "token": token, "frame": frame}


def grounding_step(
    model: LavidaModel,
    head: GroundingHead,
    optimizer: torch.optim.Optimizer,
    batch: GroundingBatch,
    name_ids: dict[str, torch.Tensor],
    config: GroundingConfig,
) -> dict[str, float]:
    """One optimizer step on the encoders and the head; returns the loss terms."""
    terms = grounding_loss(frame_logits(model, head, batch.images, name_ids), batch, config)
    optimizer.zero_grad(set_to_none=True)
    terms["total"].backward()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
    optimizer.step()
    return {k: v.item() for k, v in terms.items()}


def make_head_and_optimizer(model: LavidaModel, config: GroundingConfig) -> tuple[GroundingHead, torch.optim.Optimizer]:
    """A fresh head (from torch's RNG seeded with config.seed) and AdamW over it and the encoders."""
    torch.manual_seed(config.seed)
    device = next(model.parameters()).device
    head = GroundingHead(vision_dim=model.segmenter.image_encoder.neck.d_model, text_dim=model.text_encoder.dim).to(device)
    params = [*encoder_parameters(model), *head.parameters()]
    for param in params:
        param.requires_grad_(True)
    return head, torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)


def _words(name: str) -> list[str]:
    """The words of a multi-word name ("red circle" -> red, circle); none for a one-word name."""
    parts = name.split()
    return parts if len(parts) > 1 else []


def grounding_names(names: Sequence[str], config: GroundingConfig) -> list[str]:
    """The names grounding learns: `names`, then (with `config.words`) every word of a multi-word name
    that is not a name already, in order of first appearance."""
    extra = [w for name in names for w in _words(name)] if config.words else []
    return list(dict.fromkeys([*names, *extra]))


def _names_covered(name: str, index: dict[str, int], *, words: bool) -> list[int]:
    """Which of the grounded names an object called `name` shows: its own, and (`words`) its words."""
    return [index[n] for n in dict.fromkeys([name, *(_words(name) if words else [])])]


def frames_batch(
    datasets: Sequence[SegDataset],
    names: Sequence[str],
    config: GroundingConfig,
    step: int,
    *,
    image_size: int,
    grid: int,
) -> GroundingBatch:
    """`config.batch_size` frames drawn from `datasets` (uniformly over all their samples) with the
    names of `names` (`grounding_names`) that cover each token and frame; a pure function of
    (config.seed, step)."""
    index = {name: k for k, name in enumerate(names)}
    ends = np.cumsum([len(ds) for ds in datasets])  # sample k of all is in the first dataset ending past k
    rng = np.random.default_rng([config.seed, step])
    picks = rng.integers(ends[-1], size=config.batch_size)
    images, token_labels = [], []
    for pick in picks:
        d = int(np.searchsorted(ends, pick, side="right"))
        ds, i = datasets[d], int(pick - (ends[d - 1] if d else 0))
        info = ds.info(i)
        frame = int(rng.integers(info.n_frames))
        sample = ds.load(i, [frame])
        labels = torch.zeros(grid * grid, len(names))
        for obj in sample.objects:
            mask = torch.from_numpy(np.ascontiguousarray(obj.masks[0])).float()[None, None]  # [1, 1, H, W]
            cover = F.adaptive_avg_pool2d(mask, grid).flatten()  # [s*s] fraction of each token covered
            covered = (cover >= config.token_cover).float()
            for k in _names_covered(obj.name, index, words=config.words):
                labels[:, k] = torch.maximum(labels[:, k], covered)
                if mask.any() and not labels[:, k].any():  # a small object still marks its densest token
                    labels[int(cover.argmax()), k] = 1.0
        images.append(sam_images(sample.frames, image_size=image_size))
        token_labels.append(labels)
    token = torch.stack(token_labels)
    return GroundingBatch(images=torch.cat(images), token_labels=token, frame_labels=token.amax(dim=1))
