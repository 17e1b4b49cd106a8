"""Training LAVIDA on pseudo-anomalies: the pure parts of the loop (no Ray, no job config).

    config = TrainConfig(steps=100, batch_size=2, lr=1e-3)
    trainable = set_trainable(model, config)              # exactly trained_part_keys (+ encoders if told)
    optimizer, scheduler = make_optimizer(model, config)
    for step in range(config.steps):
        batches = [collate(sampler_samples, ...) for each micro-batch]
        terms = train_step(model, batches, optimizer, scheduler, config=config, step=step)

Determinism: every step reseeds torch's RNG from (seed, step) (LoRA dropout draws from it), and the
samples of a step are a pure function of (sampler seed, step, rank, micro-batch) via `sample_indices`,
so a run resumed from a checkpoint at step k takes exactly the same step k+1 as an uninterrupted run.

Several processes: when torch.distributed is initialised (Ray Train sets it up), each process draws
its own samples and `train_step` averages the gradients over processes before the optimizer step,
so every process holds the same weights (no DDP wrapper: the trained set has parameters that get no
gradient on some batches, e.g. SAM2's point embeddings, which DDP refuses by default).

Saving and restoring train states (folders on disk) is the training job's business: `jobs/train/state.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from transformers import PreTrainedTokenizerBase

from lavida_core.checkpoint import MLLM_PART_PATTERNS, trained_part_keys
from lavida_core.config import LavidaConfig
from lavida_core.errors import InputError
from lavida_core.inputs import build_inputs, move_inputs
from lavida_core.modeling.model import LavidaInputs, LavidaModel
from lavida_core.training.exposure_sampler import TrainingSample
from lavida_core.training.losses import LossConfig, LossTerms, lavida_loss

log = logging.getLogger(__name__)

# Learning rate when TrainConfig.lr is None, by model preset name (the reference's 1e-5 is for the
# 7B model; the few-MB tiny preset learns nothing in a short run at that rate).
DEFAULT_LR: dict[str, float] = {"tiny": 1e-3}
REFERENCE_LR = 1e-5
PRECISIONS = ("auto", "fp32", "bf16")
SCHEDULES = ("constant", "linear")
DECAY_HORIZONS = ("micro_batches", "updates")


@dataclass(frozen=True)
class TrainConfig:
    # The reference (train_acc.py): 8 epochs x 2000 micro-batches of 2 clips, 2 per update: 8000 updates
    # of AdamW(lr 1e-5) with torch's defaults (betas 0.9/0.999, weight decay 0.01 on every parameter;
    # its yaml's beta2 0.95 and weight_decay are never read), get_linear_schedule_with_warmup(100, 16000).
    steps: int = 8000  # optimizer steps (updates)
    batch_size: int = 2  # clips per micro-batch per process
    grad_accum: int = 2  # micro-batches per optimizer step
    lr: float | None = None  # None: DEFAULT_LR by preset name, else 1e-5
    weight_decay: float = 0.01  # on every trained parameter, as torch's AdamW default
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 100  # updates of linear warm-up
    # True: the warm-up of transformers' get_linear_schedule_with_warmup, lr x step / warmup_steps, so
    # the first update runs at lr 0 (the reference). False: lr x (step + 1) / warmup_steps, our earlier
    # choice (the shipped demo model's recipe).
    warmup_starts_at_zero: bool = True
    schedule: str = "linear"  # after warm-up: "constant" or "linear" decay to 0 at the horizon
    # Where the linear decay reaches 0. "micro_batches": steps x grad_accum, as the reference, whose
    # schedule length counts micro-batches (epochs x steps_per_epoch) while DeepSpeed steps it once per
    # update: its lr ends near half the peak (1e-5 x 8000 / 15900). "updates": at `steps`, so the lr
    # ends at 0 (our earlier choice; the same thing when grad_accum is 1).
    decay_horizon: str = "micro_batches"
    max_grad_norm: float | None = 1.0
    seed: int = 0
    checkpoint_every: int = 500  # steps between resumable checkpoints (0: only the final one)
    keep_checkpoints: int = 2  # newest train-state folders kept
    log_every: int = 10
    precision: str = "auto"  # "auto": bf16 autocast on CUDA, float32 on CPU
    gradient_checkpointing: bool | None = None  # None: on for CUDA, off for CPU
    train_image_encoder: bool = False
    train_text_encoder: bool = False
    # False freezes the MLLM's trained parts (LoRA, token embeddings, LM head: MLLM_PART_PATTERNS), so its
    # <SEG> state stays what the initial weights make of the prompt. Not the reference's (it trains them):
    # for models from random weights (the demo recipe), where a trained <SEG> learns the training
    # name-frame pairs by heart and names never trained together go unseen; frozen, the prompt to the
    # mask decoder comes from the projector's reading of the grounded encoders (bench/RESULTS.md, demo model).
    train_mllm: bool = True

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.grad_accum < 1:
            raise InputError("steps, batch_size and grad_accum must be at least 1")
        if self.precision not in PRECISIONS or self.schedule not in SCHEDULES or self.decay_horizon not in DECAY_HORIZONS:
            raise InputError(
                f"precision must be one of {PRECISIONS}, schedule one of {SCHEDULES} and decay_horizon one of {DECAY_HORIZONS}"
            )
        if self.warmup_steps < 0 or self.weight_decay < 0:
            raise InputError("warmup_steps and weight_decay must not be negative")
        if self.lr is not None and self.lr <= 0:
            raise InputError(f"lr must be positive, got {self.lr}")
        if self.checkpoint_every < 0 or self.log_every < 1 or self.keep_checkpoints < 1:
            raise InputError("checkpoint_every >= 0, log_every >= 1 and keep_checkpoints >= 1 are required")

    def learning_rate(self, model_config: LavidaConfig) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR.get(model_config.name, REFERENCE_LR)


@dataclass
class TrainBatch:
    inputs: LavidaInputs
    target_masks: torch.Tensor  # [N, h, w] float 0/1 at the loss resolution, N = frames of all clips
    target_labels: torch.Tensor  # [N] float 0/1, the frame shows the target
    n_clips: int


@dataclass
class Distributed:
    """This process's place among the training processes (rank 0 of 1 when alone)."""

    rank: int = 0
    world_size: int = 1

    @classmethod
    def current(cls) -> Distributed:
        if dist.is_available() and dist.is_initialized():
            return cls(rank=dist.get_rank(), world_size=dist.get_world_size())
        return cls()


@dataclass
class StepStats:
    step: int
    lr: float
    terms: dict[str, float] = field(default_factory=dict)


# ---- the trainable set --------------------------------------------------------------------------


def set_trainable(model: LavidaModel, config: TrainConfig) -> list[str]:
    """requires_grad on exactly the trained parts (+ the encoders when told); returns their names.

    Frozen encoders are also put in eval mode, so that nothing random happens inside them."""
    keys = {k for k in trained_part_keys(model) if config.train_mllm or not any(p in k for p in MLLM_PART_PATTERNS)}
    prefixes = tuple(
        prefix
        for prefix, wanted in (
            ("segmenter.image_encoder.", config.train_image_encoder),
            ("text_encoder.", config.train_text_encoder),
        )
        if wanted
    )
    names = []
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name in keys or name.startswith(prefixes))
        if parameter.requires_grad:
            names.append(name)
    model.train()
    if not config.train_image_encoder:
        model.segmenter.image_encoder.eval()
    if not config.train_text_encoder:
        model.text_encoder.eval()
    if not config.train_mllm:
        model.mllm.eval()
    return names


def trainable_state(model: LavidaModel) -> dict[str, torch.Tensor]:
    """What a train-state folder stores: the trained parts plus any other parameter being trained."""
    state = model.state_dict()
    names = set(trained_part_keys(model)) | {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: state[k].detach().contiguous().cpu() for k in sorted(names)}


# ---- batches ------------------------------------------------------------------------------------


def sample_indices(step: int, micro: int, *, batch_size: int, grad_accum: int, rank: int, world_size: int) -> list[int]:
    """Sampler indices of one micro-batch: every (step, micro-batch, process, slot) gets its own index."""
    first = ((step * grad_accum + micro) * world_size + rank) * batch_size
    return list(range(first, first + batch_size))


def collate(
    samples: Sequence[TrainingSample],
    *,
    model_config: LavidaConfig,
    qwen_tokenizer: PreTrainedTokenizerBase,
    clip_tokenizer: PreTrainedTokenizerBase,
    loss_config: LossConfig | None = None,
    rng: np.random.Generator | None = None,
) -> TrainBatch:
    """TrainingSamples -> model inputs (with LM labels) + targets at the loss resolution
    (`loss_config.mask_resolution`). A one-frame sample is an image sample (lavida_core.inputs).
    rng: draws the prompt templates (None: seeded by each sample's frames and names)."""
    loss_config = loss_config or LossConfig()
    inputs = build_inputs(
        [s.frames for s in samples],
        [s.anomaly_types for s in samples],
        config=model_config,
        qwen_tokenizer=qwen_tokenizer,
        clip_tokenizer=clip_tokenizer,
        training=True,
        is_image=[s.frames.shape[0] == 1 for s in samples],
        rng=rng,
    )
    resize = TARGET_RESIZES[loss_config.mask_resolution]
    masks = torch.cat([resize(s.target_masks, model_config.image_encoder.image_size) for s in samples])  # [N, h, w]
    labels = torch.from_numpy(np.concatenate([s.target_labels for s in samples])).float()  # [N]
    return TrainBatch(inputs=inputs, target_masks=masks, target_labels=labels, n_clips=len(samples))


def _masks_at_image_size(masks: np.ndarray, image_size: int) -> torch.Tensor:
    """bool [T, H, W] -> float 0/1 [T, S, S], nearest-resized squarely to the SAM2 input, as the
    reference resizes its target masks with the images."""
    x = torch.from_numpy(masks).float().unsqueeze(1)  # [T, 1, H, W]
    return F.interpolate(x, size=(image_size, image_size), mode="nearest").squeeze(1)


def _masks_at_logit_size(masks: np.ndarray, image_size: int) -> torch.Tensor:
    """bool [T, H, W] -> float 0/1 [T, S/4, S/4] at SAM2's low-res mask logits (bilinear, > 0.5)."""
    size = image_size // 4
    x = torch.from_numpy(masks).float().unsqueeze(1)  # [T, 1, H, W]
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return (x.squeeze(1) > 0.5).float()


# LossConfig.mask_resolution -> how collate makes the target masks.
TARGET_RESIZES = {"image": _masks_at_image_size, "logits": _masks_at_logit_size}


def move_batch(batch: TrainBatch, device: torch.device) -> TrainBatch:
    return TrainBatch(
        inputs=move_inputs(batch.inputs, device, torch.float32),
        target_masks=batch.target_masks.to(device),
        target_labels=batch.target_labels.to(device),
        n_clips=batch.n_clips,
    )


# ---- optimisation -------------------------------------------------------------------------------


def make_optimizer(model: LavidaModel, config: TrainConfig) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over the parameters that require grad, weight decay on all of them (the reference's
    AdamW(model.parameters())), and the lr schedule."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        params, lr=config.learning_rate(model.config), betas=tuple(config.betas), weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, config))
    return optimizer, scheduler


def lr_factor(step: int, config: TrainConfig) -> float:
    """Multiplier of the base lr at optimizer step `step` (0-based): linear warm-up, then the schedule
    (transformers' get_linear_schedule_with_warmup with the reference's settings by default)."""
    if step < config.warmup_steps:
        return (step + (0 if config.warmup_starts_at_zero else 1)) / config.warmup_steps
    if config.schedule == "constant":
        return 1.0
    horizon = config.steps * (config.grad_accum if config.decay_horizon == "micro_batches" else 1)
    return max(0.0, (horizon - step) / max(horizon - config.warmup_steps, 1))


def autocast_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    """bf16 autocast on CUDA ('auto' or 'bf16'), none (float32) on CPU unless 'bf16' is asked for."""
    if config.precision == "fp32":
        return None
    if config.precision == "bf16" or device.type == "cuda":
        return torch.bfloat16
    return None


def enable_gradient_checkpointing(model: LavidaModel) -> None:
    """Recompute the Qwen2-VL layers' activations in backward (the bulk of the memory)."""
    model.mllm.qwen.config.use_cache = False
    model.mllm.qwen.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def compute_loss(model: LavidaModel, batch: TrainBatch, loss_config: LossConfig) -> LossTerms:
    out = model(batch.inputs)
    return lavida_loss(
        mask_logits=out.masks.mask_logits,  # [N, 3, h, w]
        pred_ious=out.masks.ious,  # [N, 3]
        object_score_logits=out.masks.object_score_logits,  # [N, 1]
        target_masks=batch.target_masks,  # [N, h, w]
        target_labels=batch.target_labels,  # [N]
        lm_loss=out.lm_loss,
        config=loss_config,
    )


def seed_step(seed: int, step: int) -> None:
    """Reseed torch from (seed, step): what a step draws does not depend on what ran before it."""
    torch.manual_seed(int(np.random.SeedSequence([seed, step]).generate_state(1)[0]))


def train_step(
    model: LavidaModel,
    batches: Sequence[TrainBatch],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    *,
    config: TrainConfig,
    step: int,
    loss_config: LossConfig | None = None,
) -> StepStats:
    """One optimizer step over `batches` (the micro-batches, gradients accumulated); returns the
    step's loss terms averaged over micro-batches and processes, and the lr it used."""
    loss_config = loss_config or LossConfig()
    seed_step(config.seed, step)
    device = next(model.parameters()).device
    dtype = autocast_dtype(config, device)
    optimizer.zero_grad(set_to_none=True)
    sums: dict[str, float] = {}
    for batch in batches:
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            terms = compute_loss(model, move_batch(batch, device), loss_config)
        (terms.total / len(batches)).backward()
        for name, value in terms.as_floats().items():
            sums[name] = sums.get(name, 0.0) + value / len(batches)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    _average_gradients(params)
    if config.max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
    lr = optimizer.param_groups[0]["lr"]
    optimizer.step()
    scheduler.step()
    return StepStats(step=step, lr=lr, terms=_average_floats(sums, device))


def _average_gradients(params: list[torch.nn.Parameter]) -> None:
    """Mean of every gradient over the processes (a parameter without a gradient counts as zero)."""
    world = Distributed.current().world_size
    if world == 1:
        return
    for parameter in params:
        if parameter.grad is None:
            parameter.grad = torch.zeros_like(parameter)
        dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM)
        parameter.grad.div_(world)


def _average_floats(values: dict[str, float], device: torch.device) -> dict[str, float]:
    world = Distributed.current().world_size
    if world == 1:
        return values
    names = sorted(values)
    t = torch.tensor([values[n] for n in names], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return {n: float(v) / world for n, v in zip(names, t.tolist())}
