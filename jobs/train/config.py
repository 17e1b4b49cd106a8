"""The training job's config: the file (JSON or TOML) -> a typed JobConfig, and its datasets -> the
Anomaly Exposure Sampler. The file's format is in `jobs/train/__init__.py`."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobs.common.errors import UserError
from jobs.train.validation import ValidationConfig, validation_config
from lavida_core.training.exposure_sampler import ExposureSampler, SamplerConfig
from lavida_core.training.grounding import GroundingConfig
from lavida_core.training.loop import TrainConfig
from lavida_core.training.losses import LossConfig
from lavida_core.training.seg_datasets import (
    CocoInstances,
    MevisVideos,
    ReferImages,
    SegDataset,
    VideoFolders,
    ade20k,
    cityscapes,
    cocostuff,
    mapillary,
)
from lavida_core.training.synthetic_shapes import ShapesConfig, shapes_seg_dataset


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
    train: TrainConfig
    sampler: SamplerConfig  # ratios filled from the datasets
    loss: LossConfig
    out: str
    checkpoint: dict[str, str] = field(default_factory=dict)  # Checkpoint fields, with a preset
    # LavidaConfig fields changed from the preset's, e.g. {"prompt_templates": "fixed"} (LavidaConfig.updated)
    model_config: dict[str, Any] = field(default_factory=dict)
    tensorboard: bool = False
    grounding: GroundingConfig | None = None  # pre-train the encoders first; None: no grounding stage
    # the grounding stage's own data ("grounding": {"datasets": [...]}); empty: the training datasets
    grounding_datasets: tuple[DatasetSpec, ...] = ()
    validation: ValidationConfig | None = None  # probe validation sets, keep the best (jobs/train/validation.py)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


TOP_LEVEL_KEYS = {
    "model",
    "checkpoint",
    "model_config",
    "datasets",
    "synthetic_shapes",
    "sampler",
    "train",
    "loss",
    "out",
    "tensorboard",
    "grounding",
    "validation",
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
    unknown = set(raw) - TOP_LEVEL_KEYS
    if unknown:
        raise UserError(f"unknown config key(s) {sorted(unknown)}; known: {sorted(TOP_LEVEL_KEYS)}")
    placeholder = next(_placeholders(raw), None)
    if placeholder is not None:
        raise UserError(f"the config still holds a placeholder ({placeholder}): replace each <PATH> with a local folder or file")
    overrides = overrides or {}
    datasets = dataset_specs(raw)
    train_fields = {**raw.get("train", {}), **({"steps": overrides["steps"]} if overrides.get("steps") else {})}
    sampler_fields = {**raw.get("sampler", {}), "ratios": {d.name: d.ratio for d in datasets}}
    out = overrides.get("out") or raw.get("out")
    if not out:
        raise UserError('no output folder: give "out" in the config or --out')
    validation = validation_config(raw["validation"]) if "validation" in raw else None
    grounding, grounding_datasets = _grounding(raw["grounding"]) if "grounding" in raw else (None, ())
    train = _typed(TrainConfig, train_fields, "train")
    if validation is not None and validation.keep_from > train.steps:
        raise UserError(f'"validation": "keep_from" {validation.keep_from} is past the last step ({train.steps}): no probe could be kept')
    return JobConfig(
        model=str(raw.get("model", "tiny")),
        datasets=datasets,
        train=train,
        sampler=_typed(SamplerConfig, sampler_fields, "sampler"),
        loss=_typed(LossConfig, raw.get("loss", {}), "loss"),
        out=str(out),
        checkpoint={k: str(v) for k, v in raw.get("checkpoint", {}).items()},
        model_config=dict(raw.get("model_config", {})),
        tensorboard=bool(raw.get("tensorboard", False)),
        grounding=grounding,
        grounding_datasets=grounding_datasets,
        validation=validation,
    )


def _grounding(raw: dict[str, Any]) -> tuple[GroundingConfig, tuple[DatasetSpec, ...]]:
    """The "grounding" section: its GroundingConfig, and its own "datasets" (entries as the top-level
    ones) when it names any."""
    fields = dict(raw)
    if "datasets" not in fields:
        return _typed(GroundingConfig, fields, "grounding"), ()
    entries = fields.pop("datasets")
    if not isinstance(entries, list) or not entries:
        raise UserError('"grounding": "datasets" is a list of dataset entries as the top-level "datasets"; leave it out to ground on those')
    return _typed(GroundingConfig, fields, "grounding"), dataset_specs({"datasets": entries})


def _placeholders(value: Any) -> Iterator[str]:
    """Strings holding "<PATH>" anywhere in a parsed config (models/paper_train.json ships with them)."""
    if isinstance(value, str) and "<PATH>" in value:
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _placeholders(item)
    elif isinstance(value, list):
        for item in value:
            yield from _placeholders(item)


def _typed(cls: type, values: dict[str, Any], section: str) -> Any:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise UserError(f'unknown field(s) {sorted(unknown)} in "{section}"; known: {sorted(known)}')
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def dataset_specs(raw: dict[str, Any]) -> tuple[DatasetSpec, ...]:
    entries = list(raw.get("datasets", []))
    if "synthetic_shapes" in raw:
        entries.append({"layout": "synthetic_shapes", "name": "shapes", "ratio": 1.0, **raw["synthetic_shapes"]})
    if not entries:
        raise UserError('no training data: give "datasets" (or "synthetic_shapes": {}) in the config')
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


# ---- datasets ----------------------------------------------------------------------------------


def _coco(spec: DatasetSpec) -> SegDataset:
    _require_options(spec, ("images", "annotations"))
    return CocoInstances(spec.options["images"], spec.options["annotations"], name=spec.name)


def _video_folders(spec: DatasetSpec) -> SegDataset:
    _require_options(spec, ("root",), optional=("meta_file",))
    return VideoFolders(spec.options["root"], meta_file=spec.options.get("meta_file"), name=spec.name)


def _youtube_vos(spec: DatasetSpec) -> SegDataset:
    """YouTube-VOS train: root/meta.json (categories), JPEGImages/, Annotations/ (Vos.py)."""
    _require_options(spec, ("root",))
    return VideoFolders(spec.options["root"], meta_file=Path(spec.options["root"]) / "meta.json", name=spec.name, positives="frames")


def _ref_youtube_vos(spec: DatasetSpec) -> SegDataset:
    """Ref-YouTube-VOS: root = the train folder (meta.json, JPEGImages/, Annotations/) and the
    expressions file apart (meta_expressions/train/meta_expressions.json; RefVos.py)."""
    _require_options(spec, ("root", "expressions"))
    return VideoFolders(spec.options["root"], meta_file=spec.options["expressions"], name=spec.name, positives="objects")


def _ref_davis(spec: DatasetSpec) -> SegDataset:
    """Ref-DAVIS converted to the YouTube-VOS layout (the reference's utils/convert_davis_to_ytvos.py):
    root = the train folder, and its expressions file apart; a sample per expression, named (RefDavis.py)."""
    _require_options(spec, ("root", "expressions"))
    root, expressions = spec.options["root"], spec.options["expressions"]
    return VideoFolders(root, meta_file=expressions, name=spec.name, positives="one", sample_per_expression=True)


def _mevis(spec: DatasetSpec) -> SegDataset:
    _require_options(spec, ("root",))
    return MevisVideos(spec.options["root"], name=spec.name)


def _refer(spec: DatasetSpec) -> SegDataset:
    """RefCOCO/RefCOCO+/RefCOCOg/RefCLEF/gRefCOCO under one root (the reference's "coco")."""
    _require_options(spec, ("root",), optional=("lists", "split"))
    options = {k: spec.options[k] for k in ("lists", "split") if k in spec.options}
    return ReferImages(spec.options["root"], name=spec.name, **options)


def _semantic(reader: Callable[..., SegDataset], optional: tuple[str, ...] = ()) -> Callable[[DatasetSpec], SegDataset]:
    def build(spec: DatasetSpec) -> SegDataset:
        _require_options(spec, ("root",), optional=optional)
        return reader(**spec.options, name=spec.name)

    return build


def _synthetic_shapes(spec: DatasetSpec) -> SegDataset:
    return shapes_seg_dataset(shapes_config(spec), name=spec.name)


def first_shapes_config(specs: tuple[DatasetSpec, ...], **overrides: Any) -> ShapesConfig | None:
    """The ShapesConfig of the first synthetic_shapes dataset among `specs` (None when there is none):
    what held-out shapes videos are drawn like (the demo archive, synthetic validation sets)."""
    return next((shapes_config(s, **overrides) for s in specs if s.layout == "synthetic_shapes"), None)


def shapes_config(spec: DatasetSpec, **overrides: Any) -> ShapesConfig:
    """The ShapesConfig of a synthetic_shapes dataset entry (fields given by `overrides` replaced)."""
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


DATASET_LAYOUTS: dict[str, Callable[[DatasetSpec], SegDataset]] = {
    "coco": _coco,
    "video_folders": _video_folders,
    "youtube_vos": _youtube_vos,
    "ref_youtube_vos": _ref_youtube_vos,
    "ref_davis": _ref_davis,
    "mevis": _mevis,
    "refer": _refer,
    "ade20k": _semantic(ade20k),
    "cityscapes": _semantic(cityscapes),
    "mapillary": _semantic(mapillary),
    "cocostuff": _semantic(cocostuff, optional=("labels_file",)),
    "synthetic_shapes": _synthetic_shapes,
}


def build_sampler(job: JobConfig) -> ExposureSampler:
    return ExposureSampler(build_datasets(job.datasets), job.sampler)


def build_datasets(specs: tuple[DatasetSpec, ...]) -> list[SegDataset]:
    return [DATASET_LAYOUTS[d.layout](d) for d in specs]
