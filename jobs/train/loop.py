"""The training loop of `lavida train`, in one process or as one Ray Train worker: build the model
and the sampler, optionally ground the encoders, then train, checkpoint and write the model folder."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from jobs.common.errors import UserError
from jobs.train.config import JobConfig, build_datasets, build_sampler, first_shapes_config
from jobs.train.state import (
    CHECKPOINTS_DIR,
    MODEL_DIR,
    LossLog,
    latest_train_state,
    load_grounding,
    load_train_state,
    prune_train_states,
    save_grounding,
    save_train_state,
    state_folder_name,
)
from jobs.train.validation import PreparedSet, Validator, prepare_sets
from lavida_core.checkpoint import BASE_PARTS, Checkpoint, LoadedLavida, build_lavida, load_lavida, save_lavida
from lavida_core.config import PRESETS, preset
from lavida_core.errors import CheckpointError, InputError
from lavida_core.model_folders import ModelCard, model_folder
from lavida_core.tokenizer import encode_anomaly_types
from lavida_core.training import grounding as G
from lavida_core.training import loop as T
from lavida_core.training.exposure_sampler import ExposureSampler, scan_dataset
from lavida_core.training.grounding import GroundingConfig

log = logging.getLogger(__name__)


def build_model(job: JobConfig) -> LoadedLavida:
    """LoadedLavida to start from: a preset (random, or `checkpoint` files) or a model folder.
    Random weights come from torch's RNG seeded with the train seed, the same in every process."""
    torch.manual_seed(job.train.seed)
    try:
        if job.model in PRESETS:
            checkpoint = Checkpoint(**{k: Path(v) for k, v in job.checkpoint.items()})
            return build_lavida(preset(job.model).updated(job.model_config), checkpoint)
        if job.checkpoint or job.model_config:
            raise UserError('"checkpoint" and "model_config" go with a preset model; a model folder holds its own')
        folder = model_folder(job.model)
        if folder is None:
            raise UserError(f"model {job.model!r} is neither a preset ({sorted(PRESETS)}), a shipped model nor a folder")
        return load_lavida(folder)
    except (CheckpointError, InputError, TypeError) as error:
        raise UserError(f"cannot build the model: {error}") from error


def train_process(
    job: JobConfig,
    *,
    resume: bool,
    device_name: str | None = None,
    report: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Train on this process (rank r of world_size when torch.distributed is up); returns a summary.
    `report(step, loss_terms)` is called by every rank at the log steps (Ray Train's progress)."""
    where = T.Distributed.current()
    device = torch.device(device_name or ("cuda" if torch.cuda.is_available() else "cpu"))
    out = Path(job.out)
    sampler = build_sampler(job)  # before the model: a bad dataset path fails in seconds, not after loading 7B weights
    loaded = build_model(job)
    model = loaded.model.to(device)
    sets = _validation_sets(job) if where.rank == 0 and job.validation is not None else None  # a bad set fails before any step
    if job.grounding is not None:
        ground_encoders(job, loaded, sampler, device, where)
    T.set_trainable(model, job.train)
    if job.train.gradient_checkpointing or (job.train.gradient_checkpointing is None and device.type == "cuda"):
        T.enable_gradient_checkpointing(model)
    optimizer, scheduler = T.make_optimizer(model, job.train)
    start = _restore(job, model, optimizer, scheduler) if resume else 0
    logger = LossLog(out, start=start, tensorboard=job.tensorboard) if where.rank == 0 else None
    validator = None if sets is None else Validator(job.validation, loaded, sets, out, start=start, device=device)
    last = None
    begun = time.monotonic()
    for step in range(start, job.train.steps):
        batches = [_micro_batch(sampler, loaded, job, step, micro, where) for micro in range(job.train.grad_accum)]
        stats = T.train_step(model, batches, optimizer, scheduler, config=job.train, step=step, loss_config=job.loss)
        last = stats
        done = step + 1
        probe = None
        if validator is not None and validator.due(done, job.train.steps):
            probe = validator.run(done)
            T.set_trainable(model, job.train)  # back to training mode after the probe's eval mode
        if logger is not None:
            logger.write(stats, seconds=time.monotonic() - begun, validation=None if probe is None else probe.value)
            if done % job.train.log_every == 0 or done == job.train.steps:
                _log_progress(stats, done, job.train.steps, begun, start)
            if job.train.checkpoint_every and done % job.train.checkpoint_every == 0 and done < job.train.steps:
                _checkpoint(job, model, optimizer, scheduler, done)
        if report is not None and (done % job.train.log_every == 0 or done == job.train.steps):
            report(done, stats.terms)  # every rank at the same steps, as Ray Train asks
    if where.rank == 0:
        _checkpoint(job, model, optimizer, scheduler, job.train.steps)
        selected = None
        if validator is not None and validator.best is not None:
            model.load_state_dict(validator.best_weights(), strict=False)  # the model folder holds the best probe's weights
            selected = validator.card_note()
            if warning := validator.early_best_warning():
                log.warning(warning)
        _save_model(loaded, out / MODEL_DIR, job, selected=selected)
        if logger is not None:
            logger.close()
    return {"steps": job.train.steps, "started_at_step": start, "last_loss": last.terms.get("total") if last else None}


def _validation_sets(job: JobConfig) -> list[PreparedSet]:
    """The run's validation sets; synthetic ones are drawn like its first synthetic_shapes dataset."""
    return prepare_sets(job.validation, Path(job.out), first_shapes_config(job.datasets))


def ground_encoders(job: JobConfig, loaded: LoadedLavida, sampler: ExposureSampler, device: torch.device, where: T.Distributed) -> None:
    """The grounding stage (lavida_core.training.grounding) before the training loop. Its result is kept in
    OUT/grounding/ (jobs/train/state.py) and loaded from there on a re-run or --resume, because
    checkpoints hold only the trained parts and the encoders may be frozen in the loop."""
    meta = {
        "model": job.model, "checkpoint": job.checkpoint, "seed": job.train.seed,
        "datasets": [dataclasses.asdict(d) for d in job.datasets], "grounding": dataclasses.asdict(job.grounding),
        **({"grounding_datasets": [dataclasses.asdict(d) for d in job.grounding_datasets]} if job.grounding_datasets else {}),
    }  # fmt: skip
    model = loaded.model
    grounded = load_grounding(Path(job.out), meta)
    if grounded is not None:
        model.load_state_dict({k: v.to(device) for k, v in grounded.items()}, strict=False)
        log.info("grounded encoders loaded from %s", Path(job.out))
    else:
        _run_grounding(job.grounding, loaded, *_grounding_data(job, sampler), device, rank=where.rank)
        if where.rank == 0:
            save_grounding(Path(job.out), G.encoder_state(model), meta)
    if where.world_size > 1:  # every rank starts the loop from rank 0's encoders
        for param in G.encoder_parameters(model):
            torch.distributed.broadcast(param.data, src=0)


def _grounding_data(job: JobConfig, sampler: ExposureSampler) -> tuple[list[Any], list[str]]:
    """The datasets grounding draws frames from and their names: the grounding section's own datasets
    when it gives any, else the training datasets."""
    if not job.grounding_datasets:
        return list(sampler.datasets.values()), sampler.names
    datasets = build_datasets(job.grounding_datasets)
    names = sorted({name for dataset in datasets for name in scan_dataset(dataset)[0]})
    log.info("grounding on its own datasets %s: %d names", [d.name for d in datasets], len(names))
    return datasets, names


def _run_grounding(
    config: GroundingConfig, loaded: LoadedLavida, datasets: list[Any], names: list[str], device: torch.device, *, rank: int
) -> None:
    """On `datasets` and `names` (with their words when `config.words`). Every rank runs the same steps on
    the same frames; ground_encoders then broadcasts rank 0's."""
    model = loaded.model
    names = G.grounding_names(names, config)
    name_ids = {k: v.to(device) for k, v in encode_anomaly_types(loaded.clip_tokenizer, names).items()}
    head, optimizer = G.make_head_and_optimizer(model, config)
    grid, size = model.segmenter.embedding_size, model.segmenter.image_size
    model.train()
    begun = time.monotonic()
    log.info("grounding: %d steps of %d frames, %d names", config.steps, config.batch_size, len(names))
    for step in range(config.steps):
        batch = G.frames_batch(datasets, names, config, step, image_size=size, grid=grid).to(device)
        terms = G.grounding_step(model, head, optimizer, batch, name_ids, config)
        done = step + 1
        if rank == 0 and (done % 50 == 0 or done == config.steps):
            values = " ".join(f"{k}={v:.4f}" for k, v in terms.items())
            log.info("grounding step %d/%d %s %.0fs", done, config.steps, values, time.monotonic() - begun)


def _micro_batch(
    sampler: ExposureSampler, loaded: LoadedLavida, job: JobConfig, step: int, micro: int, where: T.Distributed
) -> T.TrainBatch:
    indices = T.sample_indices(
        step, micro, batch_size=job.train.batch_size, grad_accum=job.train.grad_accum,
        rank=where.rank, world_size=where.world_size,
    )  # fmt: skip
    return T.collate(
        [sampler.sample(i) for i in indices],
        model_config=loaded.model.config,
        qwen_tokenizer=loaded.qwen_tokenizer,
        clip_tokenizer=loaded.clip_tokenizer,
        loss_config=job.loss,
    )


def _restore(job: JobConfig, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any) -> int:
    folder = latest_train_state(Path(job.out) / CHECKPOINTS_DIR)
    if folder is None:
        log.info("--resume: no checkpoint in %s yet, starting at step 0", Path(job.out) / CHECKPOINTS_DIR)
        return 0
    state = load_train_state(folder, model=model, optimizer=optimizer, scheduler=scheduler)
    _check_same_start(job, state.get("extra", {}).get("job", {}), folder)
    log.info("resumed from %s at step %d", folder, state["step"])
    return int(state["step"])


def _check_same_start(job: JobConfig, saved: dict[str, Any], folder: Path) -> None:
    """A checkpoint holds only the trained parts; the frozen rest is rebuilt from the model, its
    checkpoint files and the seed, so these must be what the checkpoint was made with."""
    now = {"model": job.model, "checkpoint": job.checkpoint, "model_config": job.model_config, "seed": job.train.seed}
    then = {
        "model": saved.get("model"), "checkpoint": saved.get("checkpoint"), "model_config": saved.get("model_config"),
        "seed": saved.get("train", {}).get("seed"),
    }  # fmt: skip
    changed = sorted(k for k in now if then[k] is not None and now[k] != then[k])
    if changed:
        raise UserError(f"cannot resume from {folder}: {changed} differ from the run that wrote it ({then})")


def _checkpoint(job: JobConfig, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, step: int) -> None:
    root = Path(job.out) / CHECKPOINTS_DIR
    folder = save_train_state(
        root / state_folder_name(step), model=model, optimizer=optimizer, scheduler=scheduler, step=step,
        extra={"job": job.to_dict()},
    )  # fmt: skip
    prune_train_states(root, job.train.keep_checkpoints)
    log.info("checkpoint %s", folder)


def _save_model(loaded: LoadedLavida, folder: Path, job: JobConfig, *, selected: str | None = None) -> None:
    """The small form (trained parts + references to the base files) when the run started from base
    checkpoints; otherwise self-contained (a preset's random frozen parts exist nowhere else)."""
    loaded.model.eval()
    loaded.trained = True
    loaded.card = model_card(job, selected=selected)
    bases = {part: Path(path) for part, path in job.checkpoint.items() if part in BASE_PARTS}
    save_lavida(loaded, folder, base=Checkpoint(**bases) if len(bases) == len(BASE_PARTS) else None)
    log.info("model folder %s (lavida scan --model %s)", folder, folder)


def model_card(job: JobConfig, *, selected: str | None = None) -> ModelCard:
    """The card of the model this job trains: its datasets and steps, which validation probe's weights
    it holds (`selected`), and a warning when it saw only synthetic shapes (a toy for demos and tests,
    not a detector for real footage)."""
    names = ", ".join(f"{d.name} ({d.layout})" for d in job.datasets)
    synthetic = all(d.layout == "synthetic_shapes" for d in job.datasets)
    warning = "synthetic coloured shapes: not for real footage" if synthetic else None
    return ModelCard(trained=True, trained_on=names, steps=job.train.steps, warning=warning, selected=selected)


def _log_progress(stats: T.StepStats, done: int, total: int, begun: float, start: int) -> None:
    elapsed = time.monotonic() - begun
    rate = (done - start) / elapsed if elapsed > 0 else float("nan")
    eta = (total - done) / rate if rate > 0 else float("nan")
    terms = " ".join(f"{k}={v:.4f}" for k, v in stats.terms.items())
    log.info("step %d/%d (%.0f%%) %s lr=%.2e %.2f steps/s eta %.0fs", done, total, 100 * done / total, terms, stats.lr, rate, eta)
