"""Validation during `lavida train`: every `every` steps, rank 0 scores the validation sets with the
model being trained, and the probe with the best score is what the run's model folder holds.

    "validation": {
      "every": 250,
      "sets": [
        {"name": "seen", "synthetic_shapes": {"seed": 101, "videos": 24}},
        {"name": "novel", "synthetic_shapes": {"seed": 102, "videos": 24, "novel": true}},
        {"name": "decoy", "synthetic_shapes": {"seed": 102, "videos": 24, "decoy": true}, "report_only": true},
        {"name": "ped2", "dataset": "ucsd_ped2", "root": "/data/UCSD_Anomaly_Dataset.v1p2",
         "anomaly_types": ["a bicycle", "a car"], "sample_interval": 1}
      ],
      "select": "frame_auc",
      "keep_from": 1000
    }

A set is a benchmark in its published layout (`dataset` + `root`, read by jobs/eval/vad_datasets.py), or
`synthetic_shapes`: held-out shapes videos drawn like the job's first synthetic_shapes dataset with
the set's own seed, written once into OUT/validation/<name>/ (jobs/eval/shapes_testset.py); a `decoy` set
shows half the held-out combinations and names the other half (`_synthetic_set`), so its figure says
whether the novel sets' one is the prompt read or an unfamiliar object noticed. A `report_only` set is
scored and written to validation.csv but left out of the selection. Validation
seeds must differ from the seeds any reported test figure is measured on (bench/demo_model_eval.py).

Scoring is the evaluation's: the clips `lavida scan` would plan (lavida_core/clips.py), the
detector's forward pass, and jobs/eval.metrics_of for the numbers, so a validation figure is what
`lavida eval` prints for the same model and set. The selection value is the mean of `select` over
the sets. The best probe's trained parts are kept in OUT/best/ (jobs/train/state.py) and replace
the last step's in the final model folder; the card says which step that was. Probes before
`keep_from` (default 0: any probe, as the reference's `validate`) are written but never kept: early in
a run the held-out sets can score well for reasons that are not the skill asked for (bench/RESULTS.md,
W1_S1, whose best probe was step 250's, before it had learned a mask), and such weights would ship.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from jobs.common.errors import UserError
from jobs.eval.shapes_testset import read_testset_types, write_shapes_testset
from jobs.eval.vad_datasets import BENCHMARKS, PROTOCOLS, Benchmark, BenchmarkVideo, protocol_of
from jobs.train.state import rows_up_to
from lavida_core.checkpoint import LoadedLavida
from lavida_core.detector import LavidaDetector
from lavida_core.training.loop import trainable_state
from lavida_core.training.synthetic_shapes import held_out_categories

log = logging.getLogger(__name__)

SELECT_METRICS = ("frame_auc", "video_mean_auc", "pixel_auc")
SHAPES_KEYS = {"seed", "videos", "frames", "novel", "types", "decoy"}


@dataclass(frozen=True)
class ValidationSet:
    name: str
    dataset: str = "shanghaitech"  # a key of jobs.eval.vad_datasets.BENCHMARKS
    root: str = ""  # the benchmark's folder; generated under OUT/validation/ for synthetic_shapes
    anomaly_types: tuple[str, ...] = ()  # empty: the benchmark's defaults (a synthetic set's own)
    sample_interval: int | None = None  # None: the benchmark's (1 for a synthetic set)
    frames_per_clip: int = 8
    pixel: bool = False  # also pixel AUC (the benchmark's pixel masks; a synthetic set has them)
    synthetic_shapes: dict[str, Any] | None = None  # seed, videos (20), frames (16), novel (false), types (4), decoy (false)
    report_only: bool = False  # scored and written to validation.csv, left out of the selection (e.g. a decoy set)


@dataclass(frozen=True)
class ValidationConfig:
    every: int  # optimizer steps between probes (and a probe after the last step)
    sets: tuple[ValidationSet, ...]
    select: str = "frame_auc"  # the mean of this over the sets picks the best probe
    protocol: str = "reference"  # how the numbers are defined: jobs/eval/evaluate.py PROTOCOLS, as `lavida eval --protocol`
    keep_from: int = 0  # probes before this step are written, never kept (a floor for the best probe)

    def __post_init__(self) -> None:
        if self.every < 1 or not self.sets:
            raise UserError('"validation" needs "every" >= 1 and at least one set in "sets"')
        if self.keep_from < 0:
            raise UserError(f'"validation": "keep_from" is a step >= 0, got {self.keep_from}')
        if self.select not in SELECT_METRICS:
            raise UserError(f'"validation": "select" must be one of {SELECT_METRICS}, got {self.select!r}')
        if self.select == "pixel_auc" and not all(s.pixel for s in self.sets):
            raise UserError('"validation": "select": "pixel_auc" needs "pixel": true on every set')
        if self.protocol not in PROTOCOLS:
            raise UserError(f'"validation": "protocol" must be one of {sorted(PROTOCOLS)}, got {self.protocol!r}')
        if all(s.report_only for s in self.sets):
            raise UserError('"validation": every set is "report_only"; at least one set must choose the best probe')
        names = [s.name for s in self.sets]
        if len(set(names)) != len(names):
            raise UserError(f'"validation": set names must be distinct, got {names}')


def validation_config(raw: dict[str, Any]) -> ValidationConfig:
    """The "validation" section of a train config -> ValidationConfig (UserError on unknown fields)."""
    fields = ("every", "sets", "select", "protocol", "keep_from")
    unknown = set(raw) - set(fields)
    if unknown:
        raise UserError(f'unknown field(s) {sorted(unknown)} in "validation"; known: {", ".join(fields)}')
    known = {f.name for f in dataclasses.fields(ValidationSet)}
    sets = []
    for entry in raw.get("sets", []):
        extra = set(entry) - known
        if extra or "name" not in entry:
            raise UserError(f'validation set {entry.get("name")!r}: needs "name"; unknown field(s) {sorted(extra)}; known: {sorted(known)}')
        shapes = entry.get("synthetic_shapes")
        if shapes is not None and set(shapes) - SHAPES_KEYS:
            raise UserError(f"validation set {entry['name']!r}: synthetic_shapes takes {sorted(SHAPES_KEYS)}, got {sorted(shapes)}")
        if shapes is None and not entry.get("root"):
            raise UserError(f'validation set {entry["name"]!r}: give "root" (a benchmark folder) or "synthetic_shapes"')
        sets.append(ValidationSet(**{k: tuple(v) if isinstance(v, list) else v for k, v in entry.items()}))
    return ValidationConfig(
        every=int(raw.get("every", 0)), sets=tuple(sets), select=str(raw.get("select", "frame_auc")),
        protocol=str(raw.get("protocol", "reference")), keep_from=int(raw.get("keep_from", 0)),
    )  # fmt: skip


# ---- the sets, ready to score ------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedSet:
    name: str
    benchmark: Benchmark
    videos: list[BenchmarkVideo]
    anomaly_types: list[str]
    sample_interval: int
    frames_per_clip: int
    pixel: bool
    report_only: bool = False


def prepare_sets(config: ValidationConfig, out: Path, shapes: Any | None) -> list[PreparedSet]:
    """Read (or first generate) every set, its test split as `config.protocol` reads it. `shapes`:
    the ShapesConfig synthetic sets are drawn like."""
    prepared = []
    for entry in config.sets:
        root, types, interval, pixel = entry.root, list(entry.anomaly_types), entry.sample_interval, entry.pixel
        if entry.synthetic_shapes is not None:
            root, generated = _synthetic_set(entry, out, shapes)
            types, interval = types or generated, interval or 1
        if entry.dataset not in BENCHMARKS:
            raise UserError(f"validation set {entry.name!r}: dataset {entry.dataset!r} unknown; choose one of {sorted(BENCHMARKS)}")
        benchmark = BENCHMARKS[entry.dataset]
        videos = benchmark.read(root, config.protocol)
        if not videos:
            raise UserError(f"validation set {entry.name!r}: no test videos in {root}")
        prepared.append(
            PreparedSet(
                name=entry.name, benchmark=benchmark, videos=videos, anomaly_types=types or list(benchmark.anomaly_types),
                sample_interval=interval or benchmark.sample_interval, frames_per_clip=entry.frames_per_clip, pixel=pixel,
                report_only=entry.report_only,
            )
        )  # fmt: skip
        log.info("validation set %s: %d videos of %s, types %s", entry.name, len(videos), benchmark.title, prepared[-1].anomaly_types)
    return prepared


def decoy_sets(seeds: list[int], *, videos: int, out: Path, shapes: Any) -> list[tuple[PreparedSet, PreparedSet]]:
    """(named, decoy) per seed: a decoy set (`"decoy": true`, below) and the same videos with a prompt
    naming the combinations they show (bench/demo_model_eval.py --kind decoy)."""
    held_out = held_out_categories(shapes)
    if len(held_out) < 2:
        raise UserError(f"the recipe holds out {len(held_out)} combination(s); a decoy set needs at least 2")
    half = len(held_out) // 2
    sets = [
        ValidationSet(name=f"novel_{seed}{suffix}", synthetic_shapes={"seed": seed, "videos": videos, **spec})
        for seed in seeds
        for suffix, spec in (("", {"novel": True, "types": half}), ("_decoy", {"decoy": True}))
    ]
    prepared = prepare_sets(ValidationConfig(every=1, sets=tuple(sets)), out, shapes)
    return list(zip(prepared[0::2], prepared[1::2], strict=True))


def _synthetic_set(entry: ValidationSet, out: Path, shapes: Any | None) -> tuple[str, list[str]]:
    """The set's folder under OUT/validation/, generated on first use (a pure function of its fields), and
    the names its prompt asks for.

    A decoy set (`"decoy": true`) is a novel set whose anomalies use half the held-out combinations, its
    prompt naming the other half, which no frame shows. A model that binds colour to shape scores it near
    chance; one that answers to any unfamiliar combination scores it as if the shown ones were named
    (bench/RESULTS.md, the decoy check). Best kept `report_only`: a higher figure is worse."""
    if shapes is None:
        raise UserError(f"validation set {entry.name!r}: synthetic_shapes needs a synthetic_shapes training dataset to draw like")
    given = entry.synthetic_shapes or {}
    spec = {"seed": 0, "videos": 20, "frames": 16, "novel": False, "types": 4, **given}
    held_out = held_out_categories(shapes)
    if spec.get("decoy"):
        if "types" in given or given.get("novel") is False or len(held_out) < 2:
            raise UserError(
                f"validation set {entry.name!r}: a decoy set shows half the held-out combinations and names the other half "
                f"(leave out types and novel); the recipe holds out {len(held_out)}, it needs at least 2"
            )
        spec.update(novel=True, types=len(held_out) // 2)
    if spec["novel"] and not shapes.hold_out:
        raise UserError(
            f"validation set {entry.name!r}: a novel set needs combinations held out of training, but the first "
            'synthetic_shapes dataset draws every one ("hold_out": false); give held-out combinations to the training data'
        )
    root = Path(out) / "validation" / entry.name
    stamp = root / "set.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == spec:
        types = read_testset_types(root)
    else:
        shutil.rmtree(root, ignore_errors=True)
        config = dataclasses.replace(shapes, n_frames=int(spec["frames"]), seed=int(spec["seed"]))
        types = write_shapes_testset(root, config, n_videos=int(spec["videos"]), novel=bool(spec["novel"]), max_types=int(spec["types"]))
        stamp.write_text(json.dumps(spec))
    return str(root), [t for t in held_out if t not in types] if spec.get("decoy") else types


# ---- one probe ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    step: int
    by_set: dict[str, dict[str, float | None]]  # set -> frame_auc, video_mean_auc, pixel_auc
    value: float  # the mean of the selected metric over the sets

    def summary(self) -> str:
        parts = [
            f"{name} " + " ".join(f"{k}={v:.4f}" for k, v in metrics.items() if v is not None) for name, metrics in self.by_set.items()
        ]
        return f"validation at step {self.step}: " + "; ".join(parts) + f"; selection {self.value:.4f}"


def probe(loaded: LoadedLavida, sets: list[PreparedSet], *, step: int, select: str, protocol: str, device: torch.device) -> Probe:
    """Score every set with the model as it is now (in eval mode, no gradients). The caller puts the
    model back in training mode afterwards (lavida_core.training.loop.set_trainable)."""
    scored = score_sets(loaded, sets, protocol=protocol, device=device)
    by_set = {prepared.name: set_metrics(prepared, scored[prepared.name], protocol=protocol) for prepared in sets}
    chosen = [by_set[prepared.name][select] for prepared in sets if not prepared.report_only]
    return Probe(step=step, by_set=by_set, value=float(np.mean(chosen)))


def score_sets(loaded: LoadedLavida, sets: list[PreparedSet], *, protocol: str, device: torch.device) -> dict[str, dict[str, Any]]:
    """set name -> uri -> ScoredVideo: the model's output on every video (jobs/eval.score_in_process:
    the clips `lavida scan` plans, without a short last one where `protocol` scores whole windows only)."""
    from jobs.eval.evaluate import score_in_process

    detector = _detector(loaded, device)
    whole = protocol_of(protocol).full_windows_only
    return {
        prepared.name: {
            video.uri: score_in_process(
                detector,
                video.uri,
                anomaly_types=prepared.anomaly_types,
                frames_per_clip=prepared.frames_per_clip,
                sample_interval=prepared.sample_interval,
                whole_windows_only=whole,
            )  # fmt: skip
            for video in prepared.videos
        }
        for prepared in sets
    }


def set_metrics(prepared: PreparedSet, scored: dict[str, Any], *, protocol: str, pixel: bool | None = None) -> dict[str, float | None]:
    """frame_auc, video_mean_auc, pixel_auc of one set's scored videos, as `lavida eval --protocol` defines them
    (pixel AUC when `pixel`, by default the set's own setting)."""
    from jobs.eval.evaluate import metrics_of

    metrics = metrics_of(
        prepared.benchmark, prepared.videos, scored, protocol=protocol, pixel=prepared.pixel if pixel is None else pixel,
        sample_interval=prepared.sample_interval, frames_per_clip=prepared.frames_per_clip,
    )  # fmt: skip
    return {"frame_auc": metrics.frame_auc, "video_mean_auc": metrics.video_mean, "pixel_auc": metrics.pixel_auc}


def _detector(loaded: LoadedLavida, device: torch.device):
    """The detector over the model being trained (its weights, not a copy), in float32 as trained."""

    # trained=True: the model being trained is no preset with random weights (that warning is for scans).
    return LavidaDetector(dataclasses.replace(loaded, trained=True), model_name="validation", device=str(device), dtype="float32")


# ---- probes during a run: validation.csv and the best probe's weights ---------------------------

VALIDATION_CSV = "validation.csv"
VALIDATION_COLUMNS = ("step", "set", "frame_auc", "video_mean_auc", "pixel_auc", "selection")
BEST_DIR = "best"
BEST_WEIGHTS = "trained.safetensors"
BEST_META = "best.json"


def early_best_warning(probe_steps: list[int], best_step: int | None, *, keep_from: int) -> str | None:
    """A warning when the kept weights are the first keepable probe's and at least two later probes
    did not beat it: the run may have kept weights from before it learned anything."""
    steps = sorted({step for step in probe_steps if step >= keep_from})
    if best_step is None or len(steps) < 3 or best_step != steps[0]:
        return None
    return (
        f"the kept weights are those of step {steps[0]}, the first probe that may be kept; none of the {len(steps) - 1} "
        f"later probes scored higher, so the run may not have learned what the sets test: look at {VALIDATION_CSV}, and "
        f'set "validation": "keep_from" to the step from which a probe may be kept'
    )


class Validator:
    """Rank 0's probes: due every `every` steps and after the last; writes OUT/validation.csv and keeps
    the best probe's trained parts in OUT/best/. A resumed run keeps the rows and the best probe of
    the steps it does not redo (the redone steps are the same steps, so they probe the same)."""

    def __init__(
        self, config: ValidationConfig, loaded: LoadedLavida, sets: list[PreparedSet], out: Path, *, start: int, device: torch.device
    ):
        self.config, self.loaded, self.sets, self.out, self.device = config, loaded, sets, Path(out), device
        self.best = self._kept_best(start)
        self._rows = rows_up_to(self.out / VALIDATION_CSV, start)
        self._write_rows()

    def due(self, done: int, total: int) -> bool:
        return done % self.config.every == 0 or done == total

    def run(self, done: int) -> Probe:
        """Probe now; keep the weights when this is the best probe so far from `keep_from` on (ties:
        the earlier stays)."""
        result = probe(self.loaded, self.sets, step=done, select=self.config.select, protocol=self.config.protocol, device=self.device)
        for name, metrics in result.by_set.items():
            self._rows.append({"step": done, "set": name, **metrics, "selection": result.value})
        self._write_rows()
        if done < self.config.keep_from:
            log.info("%s (before keep_from %d: not kept)", result.summary(), self.config.keep_from)
            return result
        if self.best is None or result.value > self.best["value"]:
            self._save_best(result)
        log.info("%s (best: step %d, %.4f)", result.summary(), self.best["step"], self.best["value"])
        return result

    def early_best_warning(self) -> str | None:
        steps = [int(row["step"]) for row in self._rows]
        return early_best_warning(steps, None if self.best is None else self.best["step"], keep_from=self.config.keep_from)

    def best_weights(self) -> dict[str, torch.Tensor] | None:

        return load_file(str(self.out / BEST_DIR / BEST_WEIGHTS)) if self.best is not None else None

    def card_note(self) -> str | None:
        if self.best is None:
            return None
        sets = ", ".join(f"{name} {m[self.config.select]:.4f}" for name, m in self.best["by_set"].items())
        return f"weights of step {self.best['step']}, the best validation probe by {self.config.select} ({sets})"

    def _save_best(self, result: Probe) -> None:

        folder = self.out / BEST_DIR
        folder.mkdir(parents=True, exist_ok=True)
        weights, meta = folder / BEST_WEIGHTS, folder / BEST_META
        save_file(trainable_state(self.loaded.model), str(weights.with_name(weights.name + ".partial")))
        os.replace(weights.with_name(weights.name + ".partial"), weights)
        self.best = {"step": result.step, "value": result.value, "by_set": result.by_set}
        meta.with_name(meta.name + ".partial").write_text(json.dumps(self.best, indent=2))
        os.replace(meta.with_name(meta.name + ".partial"), meta)  # the meta last: it names weights already there

    def _kept_best(self, start: int) -> dict[str, Any] | None:

        meta = self.out / BEST_DIR / BEST_META
        if start == 0 or not meta.is_file():
            return None
        best = json.loads(meta.read_text())
        return best if best["step"] <= start else None

    def _write_rows(self) -> None:

        path = self.out / VALIDATION_CSV
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=VALIDATION_COLUMNS)
            writer.writeheader()
            writer.writerows(self._rows)
