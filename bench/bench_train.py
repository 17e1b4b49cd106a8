"""Training throughput of LAVIDA: optimizer steps per second (and peak GPU memory on CUDA).

    python bench/bench_train.py                                   # tiny preset, CPU, batch 2 x 8 frames
    python bench/bench_train.py --preset paper --device cuda      # paper preset, random weights, GPU

Each step is one optimizer step over `--batch` synthetic-shapes clips of `--frames` frames (the same
collate -> forward -> LAVIDA loss -> backward -> AdamW path as `lavida train`). Batches are built
before timing; the first `--warmup` steps are not timed. Prints one table row per configuration.
"""

from __future__ import annotations

import argparse
import logging
import time

import torch

from lavida_core.checkpoint import build_lavida
from lavida_core.config import preset
from lavida_core.training import loop as T
from lavida_core.training.exposure_sampler import ExposureSampler, SamplerConfig
from lavida_core.training.synthetic_shapes import ShapesConfig, shapes_seg_dataset


def batches(loaded, *, batch: int, frames: int, n: int, seed: int = 0) -> list[T.TrainBatch]:
    dataset = shapes_seg_dataset(ShapesConfig(n_videos=16, n_frames=frames, height=128, width=128, seed=seed))
    sampler = ExposureSampler([dataset], SamplerConfig(ratios={"shapes": 1.0}, frames_per_clip=frames, n_anomalies=8, seed=seed))
    config = loaded.model.config
    return [
        T.collate(
            [sampler.sample(i * batch + j) for j in range(batch)],
            model_config=config,
            qwen_tokenizer=loaded.qwen_tokenizer,
            clip_tokenizer=loaded.clip_tokenizer,
        )
        for i in range(n)
    ]


def measure(args: argparse.Namespace, config=None) -> dict[str, object]:
    """`args`: preset, device, batch, frames, steps, warmup (and gradient_checkpointing: None = on for CUDA);
    `config`: a LavidaConfig instead of the preset."""
    device = torch.device(args.device)
    torch.manual_seed(0)
    with torch.device(device):
        loaded = build_lavida(config or preset(args.preset))
    model = loaded.model
    train = T.TrainConfig(steps=args.warmup + args.steps, batch_size=args.batch, grad_accum=1, seed=0)
    T.set_trainable(model, train)
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    checkpointing = getattr(args, "gradient_checkpointing", None)
    if checkpointing or (checkpointing is None and device.type == "cuda"):
        T.enable_gradient_checkpointing(model)
    optimizer, scheduler = T.make_optimizer(model, train)
    data = batches(loaded, batch=args.batch, frames=args.frames, n=args.warmup + args.steps)
    for step in range(args.warmup):
        T.train_step(model, [data[step]], optimizer, scheduler, config=train, step=step)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    begun = time.perf_counter()
    for step in range(args.warmup, args.warmup + args.steps):
        stats = T.train_step(model, [data[step]], optimizer, scheduler, config=train, step=step)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - begun
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    return {
        "preset": args.preset,
        "device": args.device,
        "batch": f"{args.batch}x{args.frames}",
        "precision": "bf16" if T.autocast_dtype(train, device) else "fp32",
        "trainable_M": n_trainable / 1e6,
        "steps": args.steps,
        "s_per_step": seconds / args.steps,
        "steps_per_s": args.steps / seconds,
        "peak_GiB": peak,
        "checkpointing": bool(checkpointing or (checkpointing is None and device.type == "cuda")),
        "last_loss": stats.terms["total"],
    }


def print_table(rows: list[dict[str, object]]) -> None:
    columns = list(rows[0])
    print(" | ".join(columns))
    for row in rows:
        print(" | ".join(f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c]) for c in columns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny", choices=("tiny", "paper"))
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--batch", type=int, default=2, help="clips per step (default 2)")
    parser.add_argument("--frames", type=int, default=8, help="frames per clip (default 8)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    print_table([measure(args)])


if __name__ == "__main__":
    main()
