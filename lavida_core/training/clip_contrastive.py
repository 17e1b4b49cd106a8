"""Contrastive training of the search's CLIP image tower against a frozen CLIP text tower (issue 30).

Search embeds clips with a CLIP image tower (`model.retrieval`) and descriptions with LAVIDA's own
CLIP text tower (`model.text_encoder`) + `retrieval.text_projection`. A pretrained CLIP checkpoint
brings both towers already aligned; a model whose text tower was trained without an image tower (the
shipped demo model, from random weights) has no joint space to search in. This stage makes one:
CLIP's contrastive objective, with the text tower frozen, so every LAVIDA weight stays as it was.

    pool = shapes_frame_pool([ShapesConfig(...)])                  # frames + which names each shows
    add_retrieval(model, RetrievalConfig(...), seed=0)             # a fresh image tower on the model
    losses = train_retrieval(model, clip_tokenizer, pool, ContrastiveConfig(steps=1500))

Pairs: every training frame with the names of the shapes it shows (an object shows when at least
`min_visible` of the frame's pixels are its own after occlusion). Frames, not clips: a clip's
embedding is the mean of its frames' (`LavidaDetector.embed_clips`), so frames aligned with their
names give clips aligned with what most of their frames show. A frame that shows no object is kept
as a negative for every name (it has no name of its own), so empty backgrounds stay away from every
description. Only training combinations are drawn (`render_training_video` follows the config's
held-out rule), so the held-out colour-shape names are never paired with an image.

Trained: `retrieval.vision_model`, `visual_projection`, `text_projection`, `logit_scale`; the text
tower's features of each name are computed once, without gradients, as `ClipQuery.embed` computes a
description's. Deterministic: the part's initial weights from `seed` (`part_seed`), the frames of
step k a pure function of (seed, k).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from transformers import PreTrainedTokenizerBase

from lavida_core.checkpoint import build_retrieval
from lavida_core.config import RetrievalConfig
from lavida_core.errors import InputError
from lavida_core.frames import clip_pixels
from lavida_core.modeling.clip_retrieval import ClipRetrieval
from lavida_core.modeling.model import LavidaModel
from lavida_core.modeling.text_encoder import TextEncoder
from lavida_core.tokenizer import CLIP_MAX_LENGTH
from lavida_core.training.synthetic_shapes import ShapesConfig, render_training_video

MAX_LOGIT_SCALE = math.log(100.0)  # CLIP clips its learned temperature at 100


@dataclass(frozen=True)
class ContrastiveConfig:
    steps: int = 1500
    batch_size: int = 32  # samples per step, each from another training video
    # Frames per sample: a run of consecutive frames of one video, embedded as a scan embeds a clip (the
    # normalised mean of its frames') and paired with every name shown in any of them; 1: single frames.
    frames_per_sample: int = 8
    lr: float = 2e-3  # AdamW, linear warm-up then cosine decay to 0
    warmup_steps: int = 100
    weight_decay: float = 0.0
    max_grad_norm: float | None = 1.0
    min_visible: float = 0.005  # fraction of a frame's pixels an object must cover to count as shown
    # Also pair each frame with every word of its names ("red", "circle" beside "red circle"), so the
    # image tower is taught each attribute the text tower encodes, not only the combinations shown.
    words: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 2 or self.frames_per_sample < 1:
            raise InputError(
                "the contrastive stage needs steps >= 1, batch_size >= 2 (a batch's other samples are the negatives) "
                "and frames_per_sample >= 1"
            )
        if self.lr <= 0 or self.warmup_steps < 0 or self.weight_decay < 0:
            raise InputError("lr must be positive; warmup_steps and weight_decay must not be negative")
        if not 0.0 < self.min_visible < 1.0:
            raise InputError(f"min_visible is a fraction of the frame (0..1), got {self.min_visible}")


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """CLIP's symmetric InfoNCE over N images and C texts, with any number of positives per row.

    image_emb [N, P] and text_emb [C, P] are unit vectors; positives bool [N, C] says which text
    describes which image. logits = exp(logit_scale) * image_emb @ text_emb.T (scale clipped at 100).
    Image -> text: cross-entropy of each image's softmax over the C texts against the uniform
    distribution over its positives; text -> image: the same per text over the N images. The loss is
    the mean of the two directions, each averaged over the rows that have a positive (an image that
    shows nothing is only a negative). With C = N and positives the identity this is exactly CLIP's
    loss: (CE(logits, arange) + CE(logits.T, arange)) / 2."""
    if image_emb.shape[0] != positives.shape[0] or text_emb.shape[0] != positives.shape[1]:
        raise InputError(f"positives must be [images, texts], got {tuple(positives.shape)} for {image_emb.shape[0]} x {text_emb.shape[0]}")
    logits = logit_scale.clamp(max=MAX_LOGIT_SCALE).exp() * image_emb @ text_emb.T  # [N, C]
    targets = positives.to(logits.dtype)
    return (_soft_cross_entropy(logits, targets) + _soft_cross_entropy(logits.T, targets.T)) / 2


def _soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the rows with a positive of -sum(target * log_softmax(logits)), targets [R, K] 0/1
    normalised per row."""
    rows = targets.sum(dim=1) > 0
    if not rows.any():
        return logits.sum() * 0.0  # no positive in the batch: nothing to learn, gradient zero
    target = targets[rows] / targets[rows].sum(dim=1, keepdim=True)
    return -(target * F.log_softmax(logits[rows], dim=1)).sum(dim=1).mean()


# ---- data ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShapesPool:
    """Training videos and the names each frame shows: videos uint8 [V, T, H, W, 3], shows bool [V, T, C]."""

    videos: np.ndarray
    shows: np.ndarray
    names: tuple[str, ...]

    def batch(self, step: int, *, batch_size: int, frames_per_sample: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Step `step`'s samples: `batch_size` runs of `frames_per_sample` consecutive frames, each from
        another video, frames [B, L, H, W, 3], and the names each run shows in any of its frames
        [B, C]; drawn from a generator seeded with (seed, step), the same batch in every run."""
        n_videos, n_frames = self.shows.shape[:2]
        if not 1 <= frames_per_sample <= n_frames:
            raise InputError(f"frames_per_sample must be 1..{n_frames} (the training videos' frames), got {frames_per_sample}")
        rng = np.random.default_rng([seed, step])
        videos = np.sort(rng.choice(n_videos, size=min(batch_size, n_videos), replace=False))
        starts = rng.integers(0, n_frames - frames_per_sample + 1, size=len(videos))
        runs = starts[:, None] + np.arange(frames_per_sample)  # [B, L]
        return self.videos[videos[:, None], runs], self.shows[videos[:, None], runs].any(axis=1)


def shapes_pool(configs: Sequence[ShapesConfig], *, min_visible: float = 0.005, words: bool = False) -> ShapesPool:
    """Every training video of `configs` (their held-out combinations never drawn), with the names of
    the objects each frame shows: the training categories, and their words when `words`."""
    if len({(c.n_frames, c.height, c.width) for c in configs}) != 1:
        raise InputError("the contrastive stage's synthetic_shapes datasets must share one video size (n_frames, height, width)")
    videos, labels = [], []
    for config in configs:
        for index in range(config.n_videos):
            video = render_training_video(config, index)
            area = video.frames.shape[1] * video.frames.shape[2]
            videos.append(video.frames)
            for t in range(len(video.frames)):
                shown = {obj.name for obj in video.objects if obj.masks[t].sum() >= min_visible * area}
                labels.append(shown | ({word for name in shown for word in name.split()} if words else set()))
    names = sorted(set().union(*labels))
    if not names:
        raise InputError("no training frame shows an object: give synthetic_shapes datasets with videos (n_videos >= 1)")
    column = {name: c for c, name in enumerate(names)}
    shows = np.zeros((len(labels), len(names)), dtype=bool)
    for f, shown in enumerate(labels):
        shows[f, [column[name] for name in shown]] = True
    return ShapesPool(videos=np.stack(videos), shows=shows.reshape(len(videos), -1, len(names)), names=tuple(names))


@torch.no_grad()
def text_features(text_encoder: TextEncoder, tokenizer: PreTrainedTokenizerBase, names: Sequence[str]) -> torch.Tensor:
    """[C, Dt] the frozen text tower's pooled feature of each name, tokenised one by one as
    `ClipQuery.embed` tokenises a description (so training sees the vectors a search will use)."""
    device = next(text_encoder.parameters()).device
    features = []
    for name in names:
        batch = tokenizer([name], truncation=True, max_length=CLIP_MAX_LENGTH, return_tensors="pt").to(device)
        features.append(text_encoder(batch["input_ids"], batch["attention_mask"]).float())
    return torch.cat(features)


# ---- the stage ----------------------------------------------------------------------------------


def add_retrieval(model: LavidaModel, config: RetrievalConfig, *, seed: int) -> ClipRetrieval:
    """A fresh retrieval part (random weights from `seed`) in place of any the model has, and the
    model's config saying so; nothing else of the model changes."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # build_retrieval draws from part_seed(initial seed + offset)
        retrieval = build_retrieval(config, model.text_encoder.dim, None, dtype=torch.float32)
    model.retrieval = retrieval
    model.config = model.config.replace(retrieval=config)
    return retrieval


def sample_embeddings(retrieval: ClipRetrieval, frames: np.ndarray) -> torch.Tensor:
    """uint8 [B, L, H, W, 3] runs of frames -> [B, P]: each run's normalised mean frame embedding,
    as `LavidaDetector.embed_clips` embeds a clip."""
    n_runs, n_frames = frames.shape[:2]
    pixels = clip_pixels(frames.reshape(-1, *frames.shape[2:]), image_size=retrieval.config.image_size)  # [B*L, 3, S, S]
    pixels = pixels.to(retrieval.logit_scale.device)
    per_frame = retrieval.embed_images(pixels).view(n_runs, n_frames, -1)  # [B, L, P]
    return F.normalize(per_frame.mean(dim=1), dim=-1)


def lr_factor(step: int, config: ContrastiveConfig) -> float:
    """Linear warm-up over `warmup_steps`, then cosine decay to 0 at `steps`."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def train_retrieval(
    model: LavidaModel,
    tokenizer: PreTrainedTokenizerBase,
    pool: ShapesPool,
    config: ContrastiveConfig,
    *,
    on_step: Callable[[int, float, float], None] | None = None,
) -> list[float]:
    """Train `model.retrieval` on `pool` for `config.steps` steps; every other parameter is frozen and
    left untouched. `on_step(step, loss, lr)` after each step; returns the loss of each step."""
    retrieval = model.retrieval
    if retrieval is None:
        raise InputError("the model has no retrieval part to train: call add_retrieval first")
    for param in model.parameters():
        param.requires_grad_(False)
    model.eval()
    texts = text_features(model.text_encoder, tokenizer, pool.names)  # [C, Dt], frozen
    params = list(retrieval.parameters())
    for param in params:
        param.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, config))
    retrieval.train()
    losses = []
    for step in range(config.steps):
        frames, shows = pool.batch(step, batch_size=config.batch_size, frames_per_sample=config.frames_per_sample, seed=config.seed)
        images = sample_embeddings(retrieval, frames)  # [B, P]
        loss = clip_loss(images, retrieval.embed_texts(texts), retrieval.logit_scale, torch.from_numpy(shows).to(images.device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        if on_step is not None:
            on_step(step, losses[-1], lr)
    retrieval.eval()
    for param in params:
        param.requires_grad_(False)
    return losses
