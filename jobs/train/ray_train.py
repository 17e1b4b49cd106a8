"""`lavida train --workers N`: the training loop on N processes through Ray Train's TorchTrainer
(gloo on CPU, nccl on GPU). Each worker draws its own samples; rank 0 writes OUT, which must be a
folder every worker's node can reach when they are on several nodes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ray
import ray.train
import ray.train.torch
from ray.train import RunConfig, ScalingConfig
from ray.train.torch import TorchConfig, TorchTrainer

from jobs.scan.ray_session import connect_ray
from jobs.train.config import job_config
from jobs.train.loop import train_process


def _ray_worker(loop_config: dict[str, Any]) -> None:
    """TorchTrainer's per-worker function: the process group is up; train as one rank of many."""
    job = job_config(loop_config["raw"], overrides=loop_config["overrides"])
    device = ray.train.torch.get_device()

    def report(step: int, terms: dict[str, float]) -> None:
        ray.train.report({"step": step, **terms})

    train_process(job, resume=loop_config["resume"], device_name=str(device), report=report)


def train_with_ray(
    raw: dict[str, Any], overrides: dict[str, Any], *, workers: int, use_gpu: bool, resume: bool, ray_address: str | None = None
) -> None:
    connect_ray(ray_address)
    out = Path(overrides["out"]).resolve()
    trainer = TorchTrainer(
        _ray_worker,
        train_loop_config={"raw": raw, "overrides": {**overrides, "out": str(out)}, "resume": resume},
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=use_gpu),
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        run_config=RunConfig(name="ray_train", storage_path=str(out / "ray_train")),
    )
    trainer.fit()
