"""`lavida train --config FILE`: train LAVIDA on pseudo-anomalies, in one process or through Ray Train.

The config file (JSON, or TOML by its .toml suffix) names the model to start from, the segmentation
datasets and their sampling ratios, and the TrainConfig / SamplerConfig / LossConfig fields:

    {
      "model": "tiny",                         # a preset (random weights) or a model folder
      "checkpoint": {"sam2_path": "sam2.1_hiera_small.pt"},   # optional, with a preset: local weights
      "datasets": [
        {"layout": "coco", "name": "coco", "images": "coco/train2017",
         "annotations": "coco/annotations/instances_train2017.json", "ratio": 0.5},
        {"layout": "video_folders", "name": "vos", "root": "ytvos/train", "ratio": 0.5},
        {"layout": "synthetic_shapes", "name": "shapes", "ratio": 1.0, "n_videos": 64, "seed": 0}
      ],
      "synthetic_shapes": {"n_videos": 64},    # shorthand for one synthetic dataset, ratio 1
      "sampler": {"anomaly_ratio": 0.5, "n_anomalies": 8},
      "train": {"steps": 200, "batch_size": 2, "grad_accum": 1, "lr": 1e-3, "checkpoint_every": 50},
      "loss": {},
      "grounding": {"steps": 600, "batch_size": 32},   # optional: pre-train the encoders first
      "out": "runs/tiny-shapes"
    }

OUT holds `checkpoints/step_NNNNNN/` (resumable train states, see lavida_core.training),
`loss.csv` (one row per step), `train_config.json` (the config as run) and, at the end, `model/`
(a `save_lavida` folder that `lavida scan --model OUT/model` reads). With a "grounding" section the
image and text encoders are first pre-trained to ground the datasets' names (lavida_core.grounding, not
part of the paper: for models that start from random weights); the result is kept in `grounding/` and
reused by a re-run or `--resume`. `--resume` continues from the
newest checkpoint; several workers (`--workers N`) run through Ray Train's TorchTrainer, gloo on CPU
and nccl on GPU, each drawing its own samples; rank 0 writes OUT (a folder every worker's node can
reach when they are on several nodes).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import Any

from jobs.errors import UserError

log = logging.getLogger(__name__)

CHECKPOINTS_DIR = "checkpoints"
LOSS_CSV = "loss.csv"
MODEL_DIR = "model"
CONFIG_COPY = "train_config.json"
GROUNDING_DIR = "grounding"  # the grounding stage's encoders (see ground_encoders)
G_WEIGHTS = "encoders.safetensors"
G_META = "grounding.json"
LOSS_COLUMNS = ("step", "lr", "total", "mask", "dice", "iou", "object_score", "lm", "seconds")


@dataclass(frozen=True)
class DatasetSpec:
    layout: str  # a key of DATASET_LAYOUTS
    name: str
    ratio: float
    options: dict[str, Any] = field(default_factory=dict)  # the layout's own fields (paths, sizes)


@dataclass(frozen=True)
class JobConfig:
    model: str  # a preset name or a model folder
    datasets: tuple[DatasetSpec, ...]
    train: Any  # lavida_core.training.TrainConfig
    sampler: Any  # lavida_core.exposure_sampler.SamplerConfig (ratios filled from the datasets)
    loss: Any  # lavida_core.losses.LossConfig
    out: str
    checkpoint: dict[str, str] = field(default_factory=dict)  # Checkpoint fields, with a preset
    tensorboard: bool = False
    grounding: Any = None  # lavida_core.grounding.GroundingConfig: pre-train the encoders first; None: no

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---- the config file ----------------------------------------------------------------------------

TOP_LEVEL_KEYS = {
    "model", "checkpoint", "datasets", "synthetic_shapes", "sampler", "train", "loss", "out", "tensorboard", "grounding",
}


def read_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {path} not found")
    try:
        if path.suffix == ".toml":
            return tomllib.loads(path.read_text())
        return json.loads(path.read_text())
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as error:
        raise UserError(f"config file {path} is not valid {path.suffix.lstrip('.') or 'JSON'}: {error}") from error


def job_config(raw: dict[str, Any], *, overrides: dict[str, Any] | None = None) -> JobConfig:
    """The typed job config from a parsed file plus command-line overrides (`out`, `steps`)."""
    from lavida_core.errors import InputError
    from lavida_core.exposure_sampler import SamplerConfig
    from lavida_core.grounding import GroundingConfig
    from lavida_core.losses import LossConfig
    from lavida_core.training import TrainConfig

    unknown = set(raw) - TOP_LEVEL_KEYS
    if unknown:
        raise UserError(f"unknown config key(s) {sorted(unknown)}; known: {sorted(TOP_LEVEL_KEYS)}")
    overrides = overrides or {}
    datasets = dataset_specs(raw)
    train_fields = {**raw.get("train", {}), **({"steps": overrides["steps"]} if overrides.get("steps") else {})}
    sampler_fields = {**raw.get("sampler", {}), "ratios": {d.name: d.ratio for d in datasets}}
    out = overrides.get("out") or raw.get("out")
    if not out:
        raise UserError("no output folder: give \"out\" in the config or --out")
    try:
        return JobConfig(
            model=str(raw.get("model", "tiny")),
            datasets=datasets,
            train=_typed(TrainConfig, train_fields, "train"),
            sampler=_typed(SamplerConfig, sampler_fields, "sampler"),
            loss=_typed(LossConfig, raw.get("loss", {}), "loss"),
            out=str(out),
            checkpoint={k: str(v) for k, v in raw.get("checkpoint", {}).items()},
            tensorboard=bool(raw.get("tensorboard", False)),
            grounding=_typed(GroundingConfig, raw["grounding"], "grounding") if "grounding" in raw else None,
        )
    except InputError as error:
        raise UserError(str(error)) from error


def _typed(cls: type, values: dict[str, Any], section: str) -> Any:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise UserError(f"unknown field(s) {sorted(unknown)} in \"{section}\"; known: {sorted(known)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def dataset_specs(raw: dict[str, Any]) -> tuple[DatasetSpec, ...]:
    entries = list(raw.get("datasets", []))
    if "synthetic_shapes" in raw:
        entries.append({"layout": "synthetic_shapes", "name": "shapes", "ratio": 1.0, **raw["synthetic_shapes"]})
    if not entries:
        raise UserError("no training data: give \"datasets\" (or \"synthetic_shapes\": {}) in the config")
    specs = []
    for entry in entries:
        entry = dict(entry)
        layout = entry.pop("layout", None)
        if layout not in DATASET_LAYOUTS:
            raise UserError(f"dataset layout {layout!r} unknown; choose one of {sorted(DATASET_LAYOUTS)}")
        name = str(entry.pop("name", layout))
        ratio = float(entry.pop("ratio", 1.0))
        specs.append(DatasetSpec(layout=layout, name=name, ratio=ratio, options=entry))
    return tuple(specs)


# ---- datasets -----------------------------------------------------------------------------------


def _coco(spec: DatasetSpec):
    from lavida_core.seg_datasets import CocoInstances

    _require_options(spec, ("images", "annotations"))
    return CocoInstances(spec.options["images"], spec.options["annotations"], name=spec.name)


def _video_folders(spec: DatasetSpec):
    from lavida_core.seg_datasets import VideoFolders

    _require_options(spec, ("root",), optional=("meta_file",))
    return VideoFolders(spec.options["root"], meta_file=spec.options.get("meta_file"), name=spec.name)


def _synthetic_shapes(spec: DatasetSpec):
    from lavida_core.synthetic_shapes import shapes_seg_dataset

    return shapes_seg_dataset(shapes_config(spec), name=spec.name)


def shapes_config(spec: DatasetSpec, **overrides: Any):
    """The ShapesConfig of a synthetic_shapes dataset entry (fields given by `overrides` replaced)."""
    from lavida_core.synthetic_shapes import ShapesConfig

    return _typed(ShapesConfig, {**spec.options, **overrides}, f"dataset {spec.name}")


def _require_options(spec: DatasetSpec, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
    missing = [k for k in required if k not in spec.options]
    unknown = set(spec.options) - set(required) - set(optional)
    if missing or unknown:
        raise UserError(
            f"dataset {spec.name} ({spec.layout}) needs {list(required)}"
            + (f", may have {list(optional)}" if optional else "")
            + f"; missing {missing}, unknown {sorted(unknown)}"
        )


DATASET_LAYOUTS: dict[str, Callable[[DatasetSpec], Any]] = {
    "coco": _coco,
    "video_folders": _video_folders,
    "synthetic_shapes": _synthetic_shapes,
}


def build_sampler(job: JobConfig):
    from lavida_core.errors import InputError
    from lavida_core.exposure_sampler import ExposureSampler

    try:
        return ExposureSampler([DATASET_LAYOUTS[d.layout](d) for d in job.datasets], job.sampler)
    except InputError as error:
        raise UserError(str(error)) from error


# ---- the model ----------------------------------------------------------------------------------


def build_model(job: JobConfig):
    """LoadedLavida to start from: a preset (random, or `checkpoint` files) or a model folder.
    Random weights come from torch's RNG seeded with the train seed, the same in every process."""
    import torch

    from lavida_core.checkpoint import Checkpoint, build_lavida, load_lavida
    from lavida_core.config import PRESETS, preset
    from lavida_core.errors import CheckpointError

    torch.manual_seed(job.train.seed)
    try:
        if job.model in PRESETS:
            checkpoint = Checkpoint(**{k: Path(v) for k, v in job.checkpoint.items()})
            return build_lavida(preset(job.model), checkpoint)
        if job.checkpoint:
            raise UserError("\"checkpoint\" goes with a preset model; a model folder already holds its weights")
        if not Path(job.model).is_dir():
            raise UserError(f"model {job.model!r} is neither a preset ({sorted(PRESETS)}) nor a folder")
        return load_lavida(Path(job.model))
    except (CheckpointError, TypeError) as error:
        raise UserError(f"cannot build the model: {error}") from error


# ---- the training loop (one process, or one Ray Train worker) ------------------------------------


def train_process(
    job: JobConfig,
    *,
    resume: bool,
    device_name: str | None = None,
    report: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Train on this process (rank r of world_size when torch.distributed is up); returns a summary.
    `report(step, loss_terms)` is called by every rank at the log steps (Ray Train's progress)."""
    import torch

    from lavida_core import training as T

    where = T.Distributed.current()
    device = torch.device(device_name or ("cuda" if torch.cuda.is_available() else "cpu"))
    out = Path(job.out)
    loaded = build_model(job)
    model = loaded.model.to(device)
    sampler = build_sampler(job)
    if job.grounding is not None:
        ground_encoders(job, loaded, sampler, device, where)
    T.set_trainable(model, job.train)
    if job.train.gradient_checkpointing or (job.train.gradient_checkpointing is None and device.type == "cuda"):
        T.enable_gradient_checkpointing(model)
    optimizer, scheduler = T.make_optimizer(model, job.train)
    start = _restore(job, model, optimizer, scheduler, resume=resume) if resume else 0
    logger = LossLog(out, start=start, tensorboard=job.tensorboard) if where.rank == 0 else None
    last = None
    begun = time.monotonic()
    for step in range(start, job.train.steps):
        batches = [_micro_batch(sampler, loaded, job, step, micro, where) for micro in range(job.train.grad_accum)]
        stats = T.train_step(model, batches, optimizer, scheduler, config=job.train, step=step, loss_config=job.loss)
        last = stats
        done = step + 1
        if logger is not None:
            logger.write(stats, seconds=time.monotonic() - begun)
            if done % job.train.log_every == 0 or done == job.train.steps:
                _log_progress(stats, done, job.train.steps, begun, start)
            if job.train.checkpoint_every and done % job.train.checkpoint_every == 0 and done < job.train.steps:
                _checkpoint(job, model, optimizer, scheduler, done)
        if report is not None and (done % job.train.log_every == 0 or done == job.train.steps):
            report(done, stats.terms)  # every rank at the same steps, as Ray Train asks
    if where.rank == 0:
        _checkpoint(job, model, optimizer, scheduler, job.train.steps)
        _save_model(loaded, out / MODEL_DIR)
        if logger is not None:
            logger.close()
    return {"steps": job.train.steps, "started_at_step": start, "last_loss": last.terms.get("total") if last else None}


def ground_encoders(job: JobConfig, loaded, sampler, device, where) -> None:
    """The grounding stage (lavida_core.grounding) before the training loop. Its result is kept in
    OUT/grounding/ (written once, atomically) and loaded from there on a re-run or --resume, because
    checkpoints hold only the trained parts and the encoders may be frozen in the loop."""
    import torch
    from safetensors.torch import load_file, save_file

    from lavida_core import grounding as G

    folder = Path(job.out) / GROUNDING_DIR
    weights, meta_file = folder / G_WEIGHTS, folder / G_META
    meta = {
        "model": job.model, "checkpoint": job.checkpoint, "seed": job.train.seed,
        "datasets": [dataclasses.asdict(d) for d in job.datasets], "grounding": dataclasses.asdict(job.grounding),
    }  # fmt: skip
    model = loaded.model
    if weights.is_file() and meta_file.is_file():
        then = json.loads(meta_file.read_text())
        if then != meta:
            raise UserError(
                f"{folder} was grounded with another model, datasets or grounding config ({then}); "
                "remove that folder or choose another --out"
            )
        model.load_state_dict({k: v.to(device) for k, v in load_file(str(weights)).items()}, strict=False)
        log.info("grounded encoders loaded from %s", weights)
    else:
        _run_grounding(job.grounding, loaded, sampler, device, rank=where.rank)
        if where.rank == 0:  # both files written aside, then renamed: a killed run leaves no half of them
            folder.mkdir(parents=True, exist_ok=True)
            partial_weights, partial_meta = (f.with_name(f.name + ".partial") for f in (weights, meta_file))
            save_file(G.encoder_state(model), str(partial_weights))
            partial_meta.write_text(json.dumps(meta, indent=2))
            partial_weights.replace(weights)
            partial_meta.replace(meta_file)
    if where.world_size > 1:  # every rank starts the loop from rank 0's encoders
        for param in G.encoder_parameters(model):
            torch.distributed.broadcast(param.data, src=0)


def _run_grounding(config, loaded, sampler, device, *, rank: int) -> None:
    """On the sampler's datasets and names. Every rank runs the same steps on the same frames;
    ground_encoders then broadcasts rank 0's."""
    from lavida_core import grounding as G
    from lavida_core.tokenizer import encode_anomaly_types

    model = loaded.model
    datasets, names = list(sampler.datasets.values()), sampler.names
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


def _micro_batch(sampler, loaded, job: JobConfig, step: int, micro: int, where) -> Any:
    from lavida_core.training import collate, sample_indices

    indices = sample_indices(
        step, micro, batch_size=job.train.batch_size, grad_accum=job.train.grad_accum,
        rank=where.rank, world_size=where.world_size,
    )  # fmt: skip
    return collate(
        [sampler.sample(i) for i in indices],
        model_config=loaded.model.config,
        qwen_tokenizer=loaded.qwen_tokenizer,
        clip_tokenizer=loaded.clip_tokenizer,
    )


def _restore(job: JobConfig, model, optimizer, scheduler, *, resume: bool) -> int:
    from lavida_core.errors import InputError
    from lavida_core.training import latest_train_state, load_train_state

    folder = latest_train_state(Path(job.out) / CHECKPOINTS_DIR)
    if folder is None:
        log.info("--resume: no checkpoint in %s yet, starting at step 0", Path(job.out) / CHECKPOINTS_DIR)
        return 0
    try:
        state = load_train_state(folder, model=model, optimizer=optimizer, scheduler=scheduler)
    except InputError as error:
        raise UserError(f"cannot resume: {error}") from error
    _check_same_start(job, state.get("extra", {}).get("job", {}), folder)
    log.info("resumed from %s at step %d", folder, state["step"])
    return int(state["step"])


def _check_same_start(job: JobConfig, saved: dict[str, Any], folder: Path) -> None:
    """A checkpoint holds only the trained parts; the frozen rest is rebuilt from the model, its
    checkpoint files and the seed, so these must be what the checkpoint was made with."""
    now = {"model": job.model, "checkpoint": job.checkpoint, "seed": job.train.seed}
    then = {"model": saved.get("model"), "checkpoint": saved.get("checkpoint"), "seed": saved.get("train", {}).get("seed")}
    changed = sorted(k for k in now if then[k] is not None and now[k] != then[k])
    if changed:
        raise UserError(f"cannot resume from {folder}: {changed} differ from the run that wrote it ({then})")


def _checkpoint(job: JobConfig, model, optimizer, scheduler, step: int) -> None:
    from lavida_core.training import prune_train_states, save_train_state, state_folder_name

    root = Path(job.out) / CHECKPOINTS_DIR
    folder = save_train_state(
        root / state_folder_name(step), model=model, optimizer=optimizer, scheduler=scheduler, step=step,
        extra={"job": job.to_dict()},
    )  # fmt: skip
    prune_train_states(root, job.train.keep_checkpoints)
    log.info("checkpoint %s", folder)


def _save_model(loaded, folder: Path) -> None:
    from lavida_core.checkpoint import save_lavida

    loaded.model.eval()
    loaded.trained = True
    save_lavida(loaded, folder)
    log.info("model folder %s (lavida scan --model %s)", folder, folder)


def _log_progress(stats, done: int, total: int, begun: float, start: int) -> None:
    elapsed = time.monotonic() - begun
    rate = (done - start) / elapsed if elapsed > 0 else float("nan")
    eta = (total - done) / rate if rate > 0 else float("nan")
    terms = " ".join(f"{k}={v:.4f}" for k, v in stats.terms.items())
    log.info("step %d/%d (%.0f%%) %s lr=%.2e %.2f steps/s eta %.0fs", done, total, 100 * done / total, terms, stats.lr, rate, eta)


class LossLog:
    """loss.csv (one row per step; rows past `start` from an earlier, killed run are dropped) and,
    when asked, TensorBoard scalars."""

    def __init__(self, out: Path, *, start: int, tensorboard: bool) -> None:
        out.mkdir(parents=True, exist_ok=True)
        path = out / LOSS_CSV
        kept = _rows_up_to(path, start)
        self._file = open(path, "w", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=LOSS_COLUMNS)
        self._writer.writeheader()
        self._writer.writerows(kept)
        self._file.flush()
        self._tensorboard = _summary_writer(out) if tensorboard else None

    def write(self, stats, *, seconds: float) -> None:
        row = {"step": stats.step + 1, "lr": stats.lr, "seconds": round(seconds, 3), **stats.terms}
        self._writer.writerow({k: row.get(k) for k in LOSS_COLUMNS})
        self._file.flush()
        if self._tensorboard is not None:
            for name, value in stats.terms.items():
                self._tensorboard.add_scalar(f"loss/{name}", value, stats.step + 1)
            self._tensorboard.add_scalar("lr", stats.lr, stats.step + 1)

    def close(self) -> None:
        self._file.close()
        if self._tensorboard is not None:
            self._tensorboard.close()


def _rows_up_to(path: Path, step: int) -> list[dict[str, str]]:
    if not path.is_file() or step == 0:
        return []
    with open(path, newline="") as handle:
        return [row for row in csv.DictReader(handle) if int(row["step"]) <= step]


def _summary_writer(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        raise UserError("\"tensorboard\": true needs the tensorboard package (pip install tensorboard)") from error
    return SummaryWriter(str(out / "tensorboard"))


# ---- Ray Train ----------------------------------------------------------------------------------


def _ray_worker(loop_config: dict[str, Any]) -> None:
    """TorchTrainer's per-worker function: the process group is up; train as one rank of many."""
    import ray.train
    import ray.train.torch

    job = job_config(loop_config["raw"], overrides=loop_config["overrides"])
    device = ray.train.torch.get_device()

    def report(step: int, terms: dict[str, float]) -> None:
        ray.train.report({"step": step, **terms})

    train_process(job, resume=loop_config["resume"], device_name=str(device), report=report)


def train_with_ray(raw: dict[str, Any], overrides: dict[str, Any], *, workers: int, use_gpu: bool, resume: bool,
                   ray_address: str | None = None) -> None:  # fmt: skip
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    if not ray.is_initialized():
        ray.init(address=ray_address, logging_level=logging.WARNING)
    out = Path(overrides["out"]).resolve()
    trainer = TorchTrainer(
        _ray_worker,
        train_loop_config={"raw": raw, "overrides": {**overrides, "out": str(out)}, "resume": resume},
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=use_gpu),
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        run_config=RunConfig(name="ray_train", storage_path=str(out / "ray_train")),
    )
    trainer.fit()


# ---- the command --------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="FILE", help="the training config (.json or .toml)")
    parser.add_argument("--out", metavar="DIR", help="output folder (overrides the config's \"out\")")
    parser.add_argument("--steps", type=int, metavar="N", help="optimizer steps (overrides train.steps)")
    parser.add_argument("--workers", type=int, default=1, metavar="N", help="training processes; N > 1 runs Ray Train (default 1)")
    parser.add_argument("--use-gpu", action="store_true", help="train on GPUs (one per worker; nccl with Ray Train)")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in OUT")
    parser.add_argument("--ray-address", metavar="ADDR", help="with --workers N > 1: join this Ray cluster (default: a local Ray)")


def run(args: argparse.Namespace) -> int:
    raw = read_config_file(args.config)
    overrides = {"out": args.out, "steps": args.steps}
    job = job_config(raw, overrides=overrides)
    if args.workers < 1:
        raise UserError("--workers must be at least 1")
    _check_out(job, resume=args.resume)
    build_sampler(job)  # fail on bad datasets here, before any worker starts
    out = Path(job.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_COPY).write_text(json.dumps(job.to_dict(), indent=2))
    if args.workers == 1:
        import torch

        if args.use_gpu and not torch.cuda.is_available():
            raise UserError("--use-gpu: no CUDA GPU is visible to this process")
        train_process(job, resume=args.resume, device_name="cuda" if args.use_gpu else "cpu")
    else:
        train_with_ray(raw, {**overrides, "out": job.out}, workers=args.workers, use_gpu=args.use_gpu,
                       resume=args.resume, ray_address=args.ray_address)  # fmt: skip
    print(f"trained {job.train.steps} steps; model folder: {out / MODEL_DIR}; loss curve: {out / LOSS_CSV}")
    return 0


def _check_out(job: JobConfig, *, resume: bool) -> None:
    from lavida_core.training import latest_train_state

    existing = latest_train_state(Path(job.out) / CHECKPOINTS_DIR)
    if existing is not None and not resume:
        raise UserError(f"{job.out} already holds checkpoints ({existing.name}); pass --resume or choose another --out")
