"""`lavida train --config FILE`: the command's arguments and its run (the config format and the
OUT layout are in `jobs/train/__init__.py`). Torch and Ray are imported when the command runs, so
that `lavida --help` stays fast."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from jobs.common.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="FILE", help="the training config (.json or .toml)")
    parser.add_argument("--out", metavar="DIR", help='output folder (overrides the config\'s "out")')
    parser.add_argument("--steps", type=int, metavar="N", help="optimizer steps (overrides train.steps)")
    parser.add_argument("--workers", type=int, default=1, metavar="N", help="training processes; N > 1 runs Ray Train (default 1)")
    parser.add_argument("--use-gpu", action="store_true", help="train on GPUs (one per worker; nccl with Ray Train)")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in OUT")
    parser.add_argument("--ray-address", metavar="ADDR", help="with --workers N > 1: join this Ray cluster (default: a local Ray)")


def run(args: argparse.Namespace) -> int:
    from jobs.train.config import read_config_file

    if args.workers < 1:
        raise UserError("--workers must be at least 1")
    raw = read_config_file(args.config)
    stage = raw.pop("stage", "lavida")
    if stage not in STAGES:
        raise UserError(f'unknown "stage" {stage!r}; choose one of {sorted(STAGES)} (leave it out to train LAVIDA)')
    return STAGES[stage](raw, args)


def _run_lavida(raw: dict, args: argparse.Namespace) -> int:
    """The LAVIDA training job (jobs/train/loop.py), in this process or through Ray Train."""
    import torch

    from jobs.train.config import build_sampler, job_config
    from jobs.train.loop import train_process
    from jobs.train.state import CHECKPOINTS_DIR, CONFIG_COPY, LOSS_CSV, MODEL_DIR, latest_train_state

    overrides = {"out": args.out, "steps": args.steps}
    job = job_config(raw, overrides=overrides)
    existing = latest_train_state(Path(job.out) / CHECKPOINTS_DIR)
    if existing is not None and not args.resume:
        raise UserError(f"{job.out} already holds checkpoints ({existing.name}); pass --resume or choose another --out")
    build_sampler(job)  # fail on bad datasets here, before any worker starts
    out = Path(job.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_COPY).write_text(json.dumps(job.to_dict(), indent=2))
    if args.workers == 1:
        if args.use_gpu and not torch.cuda.is_available():
            raise UserError("--use-gpu: no CUDA GPU is visible to this process")
        train_process(job, resume=args.resume, device_name="cuda" if args.use_gpu else "cpu")
    else:
        from jobs.train.ray_train import train_with_ray

        train_with_ray(
            raw, {**overrides, "out": job.out}, workers=args.workers, use_gpu=args.use_gpu,
            resume=args.resume, ray_address=args.ray_address,
        )  # fmt: skip
    print(f"trained {job.train.steps} steps; model folder: {out / MODEL_DIR}; loss curve: {out / LOSS_CSV}")
    return 0


def _run_clip_contrastive(raw: dict, args: argparse.Namespace) -> int:
    """The search image tower of a trained model, alone (jobs/train/clip_stage.py)."""
    from jobs.train.clip_stage import run

    return run(raw, args)


# The config's "stage": what `lavida train` runs (absent: LAVIDA itself)
STAGES = {"lavida": _run_lavida, "clip_contrastive": _run_clip_contrastive}
