"""The Anomaly Exposure Sampler: turns segmentation datasets into pseudo-anomaly training samples.

For one sample, the prompt names anomaly types drawn from the categories of *other* samples of
its dataset. With probability ``anomaly_ratio`` one of the sample's own segmented categories is
named too, and then its mask (all instances of it) is the target: the sample is "anomalous".
Otherwise none of the sample's own categories is named and the target is empty: "normal".
Datasets are mixed by sampling ratios; images are one-frame clips, videos give
``frames_per_clip`` frames.

    sampler = ExposureSampler([coco, ytvos], SamplerConfig(ratios={"coco": 0.5, "vos": 0.5}))
    sample = sampler.sample(17)        # TrainingSample, the same for the same (seed, 17)
    sample.anomaly_types               # ["zebra", "dog", ...], never empty
    sample.target_masks                # bool [T, H, W], empty iff not sample.is_anomalous

``sample(index)`` is a pure function of (config.seed, index), so any worker can draw any step.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from lavida_core.errors import InputError
from lavida_core.training.seg_datasets import SampleInfo, SegDataset, SegSample

log = logging.getLogger(__name__)

# Sampling ratios of the paper's training mix, by dataset name.
REFERENCE_RATIOS: dict[str, float] = {
    "vos": 0.05,
    "refvos": 0.2,
    "mevis": 0.25,
    "refdavis": 0.2,
    "cityspace": 0.05,
    "coco": 0.1,
    "ade20k": 0.1,
    "mapillary": 0.05,
}


@dataclass(frozen=True)
class SamplerConfig:
    anomaly_ratio: float = 0.5  # probability that a sample names one of its own categories
    frames_per_clip: int = 8  # frames per video sample (an image is always one frame)
    n_anomalies: int = 30  # type names per prompt in all (fewer when a vocabulary is smaller)
    n_anomalies_by_dataset: dict[str, int] = field(default_factory=dict)  # overrides n_anomalies
    ratios: dict[str, float] = field(default_factory=lambda: dict(REFERENCE_RATIOS))  # by dataset name
    seed: int = 0
    max_attempts: int = 100  # samples tried for an anomalous draw before giving up

    def __post_init__(self) -> None:
        if not 0.0 <= self.anomaly_ratio <= 1.0:
            raise InputError(f"anomaly_ratio must be within 0..1, got {self.anomaly_ratio}")
        if self.frames_per_clip < 1 or self.n_anomalies < 1 or min(self.n_anomalies_by_dataset.values(), default=1) < 1:
            raise InputError("frames_per_clip and n_anomalies must be at least 1")
        if any(r < 0 for r in self.ratios.values()):
            raise InputError(f"sampling ratios must not be negative: {self.ratios}")


@dataclass(frozen=True)
class TrainingSample:
    dataset: str
    sample_id: str
    frame_indices: tuple[int, ...]  # which frames of the source sample, len T
    frames: np.ndarray  # uint8 [T, H, W, 3]
    anomaly_types: list[str]  # named in the prompt, never empty
    target_masks: np.ndarray  # bool [T, H, W], all False unless is_anomalous
    target_labels: np.ndarray  # bool [T], the frame shows the target
    is_anomalous: bool
    named_own_category: str | None  # the sample's own category that was named, when anomalous


def choose_frames(rng: np.random.Generator, n_frames: int, length: int, must_include: Sequence[int] | None = None) -> list[int]:
    """``length`` consecutive frame indices of a video with ``n_frames`` frames, covering one of
    ``must_include`` when given. A video shorter than ``length`` is spread evenly, with repeats."""
    if n_frames <= length:
        return np.linspace(0, n_frames - 1, length).round().astype(int).tolist()
    lo, hi = 0, n_frames - length  # range of the first frame
    if must_include:
        anchor = int(must_include[int(rng.integers(len(must_include)))])
        lo, hi = max(lo, anchor - length + 1), min(hi, anchor)
    start = int(rng.integers(lo, hi + 1))
    return list(range(start, start + length))


def _present_frames(info: SampleInfo, name: str) -> list[int] | None:
    """Frames where some object called ``name`` is visible; None when the annotations do not say."""
    frames: set[int] = set()
    for obj in info.objects:
        if obj.name == name:
            if obj.present_frames is None:
                return None
            frames.update(obj.present_frames)
    return sorted(frames)


def _draw_names(rng: np.random.Generator, vocabulary: Sequence[str], exclude: set[str], k: int) -> list[str]:
    """Up to ``k`` distinct names from ``vocabulary`` that are not in ``exclude``."""
    if k + len(exclude) <= len(vocabulary):  # oversample, then drop the excluded ones
        picks = rng.choice(len(vocabulary), size=k + len(exclude), replace=False)
        return [vocabulary[i] for i in picks if vocabulary[i] not in exclude][:k]
    pool = [name for name in vocabulary if name not in exclude]
    picks = rng.choice(len(pool), size=min(k, len(pool)), replace=False)
    return [pool[i] for i in picks]


class ExposureSampler:
    """Draws TrainingSamples from several SegDatasets (each with a distinct ``name``)."""

    def __init__(self, datasets: Sequence[SegDataset], config: SamplerConfig | None = None) -> None:
        self.config = config or SamplerConfig()
        self.datasets = {ds.name: ds for ds in datasets}
        if len(self.datasets) != len(datasets) or not datasets:
            names = [ds.name for ds in datasets]
            raise InputError(f"give at least one dataset, each with a distinct name; got {names}")
        missing = [name for name in self.datasets if name not in self.config.ratios]
        if missing:
            given = sorted(self.config.ratios)
            raise InputError(f"no sampling ratio for datasets {missing}; ratios are given for {given}")
        weights = np.array([self.config.ratios[name] for name in self.datasets], dtype=np.float64)
        empty = [name for name, ds in self.datasets.items() if len(ds) == 0]
        if weights.sum() <= 0 or empty:
            raise InputError(f"need a positive sampling ratio and no empty dataset; empty: {empty}")
        self._probabilities = weights / weights.sum()
        self._vocabularies = {name: self._vocabulary(ds) for name, ds in self.datasets.items()}
        self._all_names = sorted({n for vocabulary in self._vocabularies.values() for n in vocabulary})
        if len(self._all_names) < 2:
            raise InputError("the datasets name fewer than two distinct categories; anomaly types come from other samples")
        for name, p in zip(self.datasets, self._probabilities):
            n_samples, n_names = len(self.datasets[name]), len(self._vocabularies[name])
            log.info("dataset %s: %d samples, %d names, sampled %.3f", name, n_samples, n_names, p)

    @property
    def names(self) -> list[str]:
        """Every category name of every dataset, sorted."""
        return self._all_names

    @staticmethod
    def _vocabulary(dataset: SegDataset) -> list[str]:
        return sorted({name for i in range(len(dataset)) for name in dataset.info(i).names})

    def _n_names(self, dataset: str) -> int:
        return self.config.n_anomalies_by_dataset.get(dataset, self.config.n_anomalies)

    def sample(self, index: int) -> TrainingSample:
        """The training sample for step ``index``; a pure function of (config.seed, index)."""
        rng = np.random.default_rng([self.config.seed, index])
        dataset = list(self.datasets)[int(rng.choice(len(self.datasets), p=self._probabilities))]
        if rng.random() < self.config.anomaly_ratio:
            return self._anomalous(rng, dataset)
        return self._normal(rng, dataset)

    def __iter__(self) -> Iterator[TrainingSample]:
        index = 0
        while True:
            yield self.sample(index)
            index += 1

    def _clip_length(self, info: SampleInfo) -> int:
        return 1 if info.n_frames == 1 else self.config.frames_per_clip

    def _other_names(self, rng: np.random.Generator, dataset: str, own: set[str], k: int) -> list[str]:
        """k names from other samples; from every dataset's names when this dataset has too few."""
        names = _draw_names(rng, self._vocabularies[dataset], own, k)
        if not names:
            names = _draw_names(rng, self._all_names, own, k)
        return names

    def _normal(self, rng: np.random.Generator, dataset: str) -> TrainingSample:
        ds = self.datasets[dataset]
        index = int(rng.integers(len(ds)))
        info = ds.info(index)
        frames = choose_frames(rng, info.n_frames, self._clip_length(info))
        names = self._other_names(rng, dataset, set(info.names), self._n_names(dataset))
        if not names:
            raise InputError(f"sample {info.sample_id} of {dataset} holds every category name; none left to name")
        sample = ds.load(index, frames)
        target = np.zeros(sample.frames.shape[:3], dtype=bool)
        return _training_sample(dataset, sample, names, target, own=None)

    def _anomalous(self, rng: np.random.Generator, dataset: str) -> TrainingSample:
        ds = self.datasets[dataset]
        for _ in range(self.config.max_attempts):
            index = int(rng.integers(len(ds)))
            info = ds.info(index)
            presence = {name: _present_frames(info, name) for name in info.names}
            candidates = [name for name, frames in presence.items() if frames is None or frames]
            if not candidates:
                continue
            own = candidates[int(rng.integers(len(candidates)))]
            frames = choose_frames(rng, info.n_frames, self._clip_length(info), presence[own])
            sample = ds.load(index, frames)
            target = sample.mask_of(own)  # [T, H, W]
            if not target.any():
                continue
            others = self._other_names(rng, dataset, set(info.names), self._n_names(dataset) - 1)
            names = [own, *others]
            order = rng.permutation(len(names))
            return _training_sample(dataset, sample, [names[i] for i in order], target, own=own)
        raise InputError(f"dataset {dataset}: no segmented object found in {self.config.max_attempts} tries; are its masks empty?")


def _training_sample(dataset: str, sample: SegSample, names: list[str], target: np.ndarray, *, own: str | None) -> TrainingSample:
    return TrainingSample(
        dataset=dataset,
        sample_id=sample.sample_id,
        frame_indices=sample.frame_indices,
        frames=sample.frames,
        anomaly_types=names,
        target_masks=target,
        target_labels=target.reshape(len(target), -1).any(axis=1),
        is_anomalous=own is not None,
        named_own_category=own,
    )
