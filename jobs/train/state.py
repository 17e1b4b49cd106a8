"""The training OUT folder: resumable train states, the loss log and the grounding stage's encoders.

    OUT/train_config.json                      the config as run
    OUT/checkpoints/step_000200/trained.safetensors   exactly trained_part_keys(model) (+ encoders if trained)
    OUT/checkpoints/step_000200/optimizer.pt   {"optimizer": ..., "scheduler": ...}, loads with weights_only
    OUT/checkpoints/step_000200/state.json     {"step": 200, "extra": {...}}
    OUT/loss.csv                               one row per step (LOSS_COLUMNS)
    OUT/validation.csv, OUT/best/              validation probes and the best one's weights (jobs/train/validation.py)
    OUT/grounding/encoders.safetensors         the grounded encoders, with grounding.json (what made them)
    OUT/model/                                 the final model folder (lavida_core.checkpoint.save_lavida)

Every folder or file that a resumed run reads is written aside and renamed at the end, so a kill
never leaves half of one.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from jobs.common.errors import UserError
from lavida_core.modeling.model import LavidaModel
from lavida_core.training.loop import StepStats, trainable_state

CHECKPOINTS_DIR = "checkpoints"
LOSS_CSV = "loss.csv"
MODEL_DIR = "model"
CONFIG_COPY = "train_config.json"
GROUNDING_DIR = "grounding"
G_WEIGHTS = "encoders.safetensors"
G_META = "grounding.json"
# "validation": the selection value of a validation probe at that step (jobs/train/validation.py), else empty
LOSS_COLUMNS = ("step", "lr", "total", "mask", "dice", "iou", "object_score", "lm", "rank", "seconds", "validation")
TRAINED_FILE = "trained.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
STATE_FILE = "state.json"


# ---- train-state folders ------------------------------------------------------------------------


def state_folder_name(step: int) -> str:
    return f"step_{step:06d}"


def save_train_state(
    folder: Path,
    *,
    model: LavidaModel,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    step: int,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write `folder` atomically (a temp folder renamed at the end): a kill never leaves half of one."""
    folder = Path(folder)
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    save_file(trainable_state(model), str(partial / TRAINED_FILE))
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, partial / OPTIMIZER_FILE)
    (partial / STATE_FILE).write_text(json.dumps({"step": step, "extra": extra or {}}, indent=2))
    _fsync_folder(partial)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)
    return folder


def _fsync_folder(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())


def load_train_state(
    folder: Path,
    *,
    model: LavidaModel,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> dict[str, Any]:
    """Restore weights, optimizer and scheduler from `folder`; returns its state.json ({"step", "extra"})."""
    folder = Path(folder)
    missing = [name for name in (TRAINED_FILE, OPTIMIZER_FILE, STATE_FILE) if not (folder / name).is_file()]
    if missing:
        raise UserError(f"cannot resume: {folder} is not a training checkpoint: {missing} missing")
    weights = load_file(str(folder / TRAINED_FILE))
    expected = trainable_state(model)
    if set(weights) != set(expected):
        extra, lost = sorted(set(weights) - set(expected)), sorted(set(expected) - set(weights))
        raise UserError(f"cannot resume: {folder} does not fit this model: unexpected {extra[:5]}, missing {lost[:5]}")
    model.load_state_dict(weights, strict=False)
    states = torch.load(folder / OPTIMIZER_FILE, map_location="cpu", weights_only=True)
    optimizer.load_state_dict(states["optimizer"])
    scheduler.load_state_dict(states["scheduler"])
    return json.loads((folder / STATE_FILE).read_text())


def _step_folders(root: Path) -> list[Path]:
    """The complete `step_NNNNNN` folders under `root`, oldest first (`.partial` ones are ignored)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step_") and p.name[5:].isdigit())


def latest_train_state(root: Path) -> Path | None:
    """The newest complete `step_NNNNNN` folder under `root`."""
    done = _step_folders(root)
    return done[-1] if done else None


def prune_train_states(root: Path, keep: int) -> None:
    for old in _step_folders(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


# ---- the grounding stage's encoders ---------------------------------------------------------------


def load_grounding(out: Path, meta: dict[str, Any]) -> dict[str, torch.Tensor] | None:
    """The encoders grounded by an earlier run with the same `meta`, or None when there are none yet.
    Raises UserError when OUT was grounded with something else."""
    folder = Path(out) / GROUNDING_DIR
    weights, meta_file = folder / G_WEIGHTS, folder / G_META
    if not (weights.is_file() and meta_file.is_file()):
        return None
    then = json.loads(meta_file.read_text())
    if then != meta:
        raise UserError(
            f"{folder} was grounded with another model, datasets or grounding config ({then}); remove that folder or choose another --out"
        )
    return load_file(str(weights))


def save_grounding(out: Path, state: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Both files written aside, then renamed: a killed run leaves no half of them."""
    folder = Path(out) / GROUNDING_DIR
    folder.mkdir(parents=True, exist_ok=True)
    weights, meta_file = folder / G_WEIGHTS, folder / G_META
    partial_weights, partial_meta = (f.with_name(f.name + ".partial") for f in (weights, meta_file))
    save_file(state, str(partial_weights))
    partial_meta.write_text(json.dumps(meta, indent=2))
    partial_weights.replace(weights)
    partial_meta.replace(meta_file)
    return weights


# ---- the loss log -------------------------------------------------------------------------------


class LossLog:
    """loss.csv (one row per step; rows past `start` from an earlier, killed run are dropped) and,
    when asked, TensorBoard scalars."""

    def __init__(self, out: Path, *, start: int, tensorboard: bool) -> None:
        out.mkdir(parents=True, exist_ok=True)
        path = out / LOSS_CSV
        kept = rows_up_to(path, start)
        self._file = open(path, "w", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=LOSS_COLUMNS)
        self._writer.writeheader()
        self._writer.writerows(kept)
        self._file.flush()
        self._tensorboard = _summary_writer(out) if tensorboard else None

    def write(self, stats: StepStats, *, seconds: float, validation: float | None = None) -> None:
        row = {"step": stats.step + 1, "lr": stats.lr, "seconds": round(seconds, 3), "validation": validation, **stats.terms}
        self._writer.writerow({k: row.get(k) for k in LOSS_COLUMNS})
        self._file.flush()
        if self._tensorboard is not None:
            for name, value in stats.terms.items():
                self._tensorboard.add_scalar(f"loss/{name}", value, stats.step + 1)
            self._tensorboard.add_scalar("lr", stats.lr, stats.step + 1)
            if validation is not None:
                self._tensorboard.add_scalar("validation", validation, stats.step + 1)

    def close(self) -> None:
        self._file.close()
        if self._tensorboard is not None:
            self._tensorboard.close()


def rows_up_to(path: Path, step: int) -> list[dict[str, str]]:
    """The rows of a per-step CSV (loss.csv, validation.csv) up to `step`: what a run resumed there keeps."""
    if not path.is_file() or step == 0:
        return []
    with open(path, newline="") as handle:
        return [row for row in csv.DictReader(handle) if int(row["step"]) <= step]


def _summary_writer(out: Path):  # -> torch.utils.tensorboard.SummaryWriter, an optional package
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        raise UserError('"tensorboard": true needs the tensorboard package (pip install tensorboard)') from error
    return SummaryWriter(str(out / "tensorboard"))
