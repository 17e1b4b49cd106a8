"""`lavida train --config FILE` with "stage": "clip_contrastive": give a trained model folder a
search image tower (lavida_core.training.clip_contrastive), every other weight unchanged.

    {
      "stage": "clip_contrastive",
      "init": "models/demo",                  # the model folder (or shipped model) to start from
      "model_config": {"retrieval": {"image_size": 64, "patch_size": 16, ...}},   # the part to add
      "datasets": [{"layout": "synthetic_shapes", "name": "shapes", "n_videos": 1024, "seed": 0, ...}],
      "train": {"steps": 1500, "batch_size": 32, "frames_per_sample": 8, "lr": 0.002, "seed": 0},
      "out": "runs/demo_clip"
    }

"model_config" takes only "retrieval" (RetrievalConfig fields, applied as LavidaConfig.updated
applies them: onto the model's part when it has one, else onto RetrievalConfig's defaults); "train"
takes ContrastiveConfig fields; the datasets are synthetic_shapes entries (each frame's names come
from the shapes it draws, the held-out combinations never). The stage runs in one process, in
minutes on a CPU: no --workers, no --resume. OUT holds train_config.json, loss.csv (step, lr, total)
and model/, a self-contained folder (save_lavida) whose config has the retrieval part and whose card
says which weights this stage trained.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from jobs.common.errors import UserError
from jobs.train.config import DatasetSpec, _typed, dataset_specs, shapes_config
from jobs.train.state import CONFIG_COPY, LOSS_CSV, MODEL_DIR, LossLog
from lavida_core.checkpoint import LoadedLavida, load_lavida, save_lavida
from lavida_core.model_folders import ModelCard, model_folder
from lavida_core.training.clip_contrastive import ContrastiveConfig, add_retrieval, shapes_pool, train_retrieval
from lavida_core.training.loop import StepStats

log = logging.getLogger(__name__)

STAGE = "clip_contrastive"
TOP_LEVEL_KEYS = {"stage", "init", "model_config", "datasets", "synthetic_shapes", "train", "out"}
LOG_EVERY = 100


@dataclass(frozen=True)
class ClipStageConfig:
    init: str  # a model folder or a shipped model's name
    model_config: dict[str, Any]  # {"retrieval": {RetrievalConfig fields}}
    datasets: tuple[DatasetSpec, ...]
    train: ContrastiveConfig
    out: str

    def to_dict(self) -> dict[str, Any]:
        return {"stage": STAGE, **dataclasses.asdict(self)}


def clip_stage_config(raw: dict[str, Any], *, overrides: dict[str, Any] | None = None) -> ClipStageConfig:
    """The stage's typed config from a parsed file plus command-line overrides (`out`, `steps`)."""
    unknown = set(raw) - TOP_LEVEL_KEYS
    if unknown:
        raise UserError(f"unknown key(s) {sorted(unknown)} for the {STAGE} stage; known: {sorted(TOP_LEVEL_KEYS)}")
    overrides = overrides or {}
    if not raw.get("init"):
        raise UserError(f'the {STAGE} stage starts from a trained model: give "init", a model folder (e.g. "models/demo")')
    model_config = dict(raw.get("model_config", {}))
    if set(model_config) != {"retrieval"} or not isinstance(model_config["retrieval"], dict):
        raise UserError(
            f'the {STAGE} stage adds the search image tower only: "model_config" is {{"retrieval": {{...}}}} (RetrievalConfig fields)'
        )
    datasets = dataset_specs(raw)
    not_shapes = [d.name for d in datasets if d.layout != "synthetic_shapes"]
    if not_shapes:
        raise UserError(f"the {STAGE} stage trains on synthetic_shapes datasets only; {not_shapes} are not")
    out = overrides.get("out") or raw.get("out")
    if not out:
        raise UserError('no output folder: give "out" in the config or --out')
    train_fields = {**raw.get("train", {}), **({"steps": overrides["steps"]} if overrides.get("steps") else {})}
    train = _typed(ContrastiveConfig, train_fields, "train")
    return ClipStageConfig(init=str(raw["init"]), model_config=model_config, datasets=datasets, train=train, out=str(out))


def run(raw: dict[str, Any], args: argparse.Namespace) -> int:
    """`lavida train` for a config whose "stage" is this one (jobs/train/cli.py)."""
    if args.workers != 1 or args.resume or args.ray_address:
        raise UserError(f"the {STAGE} stage runs in one process (minutes on a CPU): drop --workers, --resume and --ray-address")
    if args.use_gpu and not torch.cuda.is_available():
        raise UserError("--use-gpu: no CUDA GPU is visible to this process")
    job = clip_stage_config(raw, overrides={"out": args.out, "steps": args.steps})
    out = Path(job.out)
    if (out / MODEL_DIR).exists():
        raise UserError(f"{out / MODEL_DIR} already exists: choose another --out, or remove it to train again")
    summary = train_clip_stage(job, device=torch.device("cuda" if args.use_gpu else "cpu"))
    print(f"trained {job.train.steps} steps in {summary['seconds']:.0f} s; model folder: {out / MODEL_DIR}; loss curve: {out / LOSS_CSV}")
    return 0


def train_clip_stage(job: ClipStageConfig, *, device: torch.device | None = None) -> dict[str, Any]:
    """Load `init`, add the retrieval part, train it alone, save OUT/model; returns a summary."""
    device = device or torch.device("cpu")
    pool = shapes_pool([shapes_config(d) for d in job.datasets], min_visible=job.train.min_visible, words=job.train.words)
    loaded = _load_init(job)
    add_retrieval(loaded.model, loaded.model.config.updated(job.model_config).retrieval, seed=job.train.seed)
    loaded.model.to(device)
    out = Path(job.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_COPY).write_text(json.dumps(job.to_dict(), indent=2))
    logger = LossLog(out, start=0, tensorboard=False)
    begun = time.monotonic()

    def on_step(step: int, loss: float, lr: float) -> None:
        logger.write(StepStats(step=step, lr=lr, terms={"total": loss}), seconds=time.monotonic() - begun)
        if (step + 1) % LOG_EVERY == 0 or step + 1 == job.train.steps:
            log.info("%s step %d/%d loss=%.4f lr=%.2e %.0fs", STAGE, step + 1, job.train.steps, loss, lr, time.monotonic() - begun)

    log.info("%s: %d videos, names %s; training the search image tower of %s", STAGE, len(pool.videos), list(pool.names), job.init)
    losses = train_retrieval(loaded.model, loaded.clip_tokenizer, pool, job.train, on_step=on_step)
    seconds = time.monotonic() - begun
    logger.close()
    loaded.model.to("cpu")
    loaded.card = stage_card(loaded.card, job)
    save_lavida(loaded, out / MODEL_DIR)
    log.info("model folder %s (lavida scan --model %s)", out / MODEL_DIR, out / MODEL_DIR)
    return {"steps": job.train.steps, "seconds": seconds, "last_loss": losses[-1]}


def _load_init(job: ClipStageConfig) -> LoadedLavida:
    folder = model_folder(job.init)
    if folder is None:
        raise UserError(f'"init": {job.init!r} is neither a shipped model nor a model folder')
    return load_lavida(folder)  # a folder that does not load raises CheckpointError, one line


# The card of a model from this stage: what LAVIDA was trained on and for how many steps, then this
# stage's data; `steps` are this stage's, so that ModelCard.summary() reads "... (N steps)" after it.
_CARD = "{lavida} (LAVIDA, {lavida_steps} steps) + {data} (search image tower only: " + STAGE + " stage)"
_CARD_PATTERN = re.compile(
    r"^(?P<lavida>.*) \(LAVIDA, (?P<steps>\d+|None) steps\) \+ .* \(search image tower only: " + STAGE + r" stage\)$"
)


def stage_card(card: ModelCard, job: ClipStageConfig) -> ModelCard:
    """`card` (the init model's) with this stage added to what it was trained on. A card that already
    names this stage (a search tower trained again) keeps its LAVIDA part only, so a re-run of the
    same config gives the same card."""
    lavida, lavida_steps = card.trained_on, card.steps
    earlier = _CARD_PATTERN.match(card.trained_on)
    if earlier is not None:
        lavida, lavida_steps = earlier["lavida"], None if earlier["steps"] == "None" else int(earlier["steps"])
    data = ", ".join(f"{d.name} ({d.layout})" for d in job.datasets)
    trained_on = _CARD.format(lavida=lavida, lavida_steps=lavida_steps, data=data)
    return dataclasses.replace(card, trained=True, trained_on=trained_on, steps=job.train.steps)
