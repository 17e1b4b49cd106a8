"""The Anomaly Exposure Sampler: turns segmentation datasets into pseudo-anomaly training samples.

For one sample, the prompt names anomaly types drawn from the categories of *other* samples of
its dataset (or from its fixed category list). With probability ``anomaly_ratio`` some of the
sample's own segmented objects are named too (its "positives"), and then their masks (all
instances of each named category) are the target: the sample is "anomalous". Otherwise none of
the sample's own categories is named and the target is empty: "normal". Datasets are mixed by
sampling ratios; images are one-frame clips, videos give ``frames_per_clip`` frames: a clip
drawn uniformly among the dataset's back-to-back clips, as the reference's HybridDataset does.

How many names, as the reference code draws them (``dataset/data_utils.py: select_anomalies``):
the positives (picked by the dataset's rule, see seg_datasets.POSITIVE_RULES), plus
``randint(1, max - n_true)`` negatives (fewer when fewer are left), where ``max`` is the
dataset's ``n_anomalies`` and ``n_true`` the number of positives the clip offers; a normal
sample draws its positives the same way, names none of them, and so the same number of negatives.

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
from lavida_core.training.seg_datasets import POSITIVE_RULES, SampleInfo, SegDataset, SegSample

log = logging.getLogger(__name__)

# Sampling ratios of the reference's training mix, by dataset name (train/train_para.yaml).
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


# The reference's n_anomalies where it is not 30 (train/train_para.yaml), by dataset name.
REFERENCE_N_ANOMALIES: dict[str, int] = {"mapillary": 20, "cityspace": 6}

# How many names a prompt holds (SamplerConfig.names_per_sample).
NAME_COUNTS = (
    "reference",  # positives + randint(1, max - n_true) negatives, positives by the dataset's rule
    # Always exactly `max` names with one positive, the clip chosen to show it. Kept because the
    # shipped demo model (models/demo) was trained so: its prompts were always this long.
    "max",
)


@dataclass(frozen=True)
class SamplerConfig:
    anomaly_ratio: float = 0.5  # probability that a sample names its own objects
    frames_per_clip: int = 8  # frames per video sample (an image is always one frame)
    n_anomalies: int = 30  # most type names per prompt (fewer when a vocabulary is smaller)
    n_anomalies_by_dataset: dict[str, int] = field(default_factory=lambda: dict(REFERENCE_N_ANOMALIES))  # overrides
    names_per_sample: str = "reference"  # one of NAME_COUNTS
    # The reference turns an anomalous draw whose clip does not show the named objects into a normal
    # sample, so fewer than `anomaly_ratio` of the samples are anomalous (how many fewer depends on
    # the data). True draws again until the clip shows them: exactly `anomaly_ratio` anomalous.
    # (With names_per_sample "max" draws are always made again.)
    redraw_hidden_targets: bool = False
    # Probability that each name of other samples is drawn among those sharing a word with one of the
    # sample's own names ("red square" beside a red circle and a blue square), when there are such
    # names. The reference draws them uniformly (0). The demo recipe raises it: composed names
    # ("colour shape") are told apart only by how their words go together, and uniform draws rarely
    # ask for a name whose words are all in the frame but on different objects.
    confusable_negatives: float = 0.0
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
        if not 0.0 <= self.confusable_negatives <= 1.0:
            raise InputError(f"confusable_negatives must be within 0..1, got {self.confusable_negatives}")
        if self.names_per_sample not in NAME_COUNTS:
            raise InputError(f"names_per_sample must be one of {list(NAME_COUNTS)}, got {self.names_per_sample!r}")


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
    positives: tuple[str, ...]  # the sample's own names that were named (its target); empty when normal


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


def clip_starts(n_frames: int, length: int) -> range:
    """First frames of a video's clips as the reference cuts them (torchvision's VideoClips, clip
    length and step both ``length``): back to back from frame 0, the tail dropped; no clip when the
    video is shorter than one."""
    return range(0, n_frames - length + 1, length)


def _present_frames(info: SampleInfo, name: str) -> list[int] | None:
    """Frames where some object called ``name`` is visible; None when the annotations do not say."""
    frames: set[int] = set()
    for obj in info.objects:
        if obj.name == name:
            if obj.present_frames is None:
                return None
            frames.update(obj.present_frames)
    return sorted(frames)


def _object_groups(info: SampleInfo, clip: Sequence[int] | None) -> dict[str, list[str]]:
    """Object key -> its names, for the objects shown in the clip's frames (or of unknown
    presence); every object when ``clip`` is None."""
    shown = set(clip or ())
    groups: dict[str, list[str]] = {}
    for obj in info.objects:
        if clip is None or obj.present_frames is None or shown.intersection(obj.present_frames):
            groups.setdefault(obj.object_key or obj.name, []).append(obj.name)
    return groups


def draw_positives(rng: np.random.Generator, info: SampleInfo, clip: Sequence[int], rule: str) -> list[str]:
    """The own names a sample would name, picked by ``rule`` (seg_datasets.POSITIVE_RULES): "one"
    among all the sample's objects, shown in the clip or not (as the reference picks an expression
    or a ref); the others among the objects the clip shows. Empty when there is none to pick."""
    groups = _object_groups(info, None if rule == "one" else clip)
    if not groups:
        return []
    keys = list(groups)
    if rule == "one":
        picked = [keys[int(rng.integers(len(keys)))]]
    elif rule == "objects":  # random.choices(objs, k=randint(1, 2)): with replacement
        picked = [keys[int(i)] for i in rng.integers(len(keys), size=int(rng.integers(1, 3)))]
    elif rule == "frames":  # every category in 1-2 of the clip's frames that show some object
        return _names_in_random_frames(rng, info, clip)
    else:
        raise InputError(f"unknown positives rule {rule!r}; one of {list(POSITIVE_RULES)}")
    names = [groups[key][int(rng.integers(len(groups[key])))] for key in picked]
    return list(dict.fromkeys(names))


def _names_in_random_frames(rng: np.random.Generator, info: SampleInfo, clip: Sequence[int]) -> list[str]:
    def names_at(t: int) -> list[str]:
        return [obj.name for obj in info.objects if obj.present_frames is None or t in obj.present_frames]

    showing = [t for t in clip if names_at(t)]  # clip positions, as the reference lists them
    if not showing:
        return []
    picked = [showing[int(i)] for i in rng.integers(len(showing), size=int(rng.integers(1, 3)))]
    return list(dict.fromkeys(name for t in picked for name in names_at(t)))


def _draw_names(rng: np.random.Generator, vocabulary: Sequence[str], exclude: set[str], k: int, confusable: float = 0.0) -> list[str]:
    """Up to ``k`` distinct names from ``vocabulary`` that are not in ``exclude``; each, with probability
    ``confusable``, among those sharing a word with a name of ``exclude`` (SamplerConfig.confusable_negatives)."""
    if confusable > 0.0:
        words = {word for name in exclude for word in name.split()}
        confusers = [name for name in vocabulary if name not in exclude and words & set(name.split())]
        n_confusers = min(len(confusers), int(rng.binomial(k, confusable)))
        first = [confusers[i] for i in rng.choice(len(confusers), size=n_confusers, replace=False)]
        names = first + _draw_names(rng, vocabulary, exclude | set(first), k - n_confusers)
        return [names[i] for i in rng.permutation(len(names))]
    if k + len(exclude) <= len(vocabulary):  # oversample, then drop the excluded ones
        picks = rng.choice(len(vocabulary), size=k + len(exclude), replace=False)
        return [vocabulary[i] for i in picks if vocabulary[i] not in exclude][:k]
    pool = [name for name in vocabulary if name not in exclude]
    picks = rng.choice(len(pool), size=min(k, len(pool)), replace=False)
    return [pool[i] for i in picks]


def scan_dataset(dataset: SegDataset) -> tuple[list[str], list[int] | None]:
    """A dataset's names, sorted (what negatives are drawn from), and every sample's frame count (None:
    not read)."""
    if dataset.categories is not None:  # a fixed list (semantic datasets): no pass over the samples
        return sorted(set(dataset.categories)), None
    infos = [dataset.info(i) for i in range(len(dataset))]
    return sorted({name for info in infos for name in info.names}), [info.n_frames for info in infos]


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
        scans = {name: scan_dataset(ds) for name, ds in self.datasets.items()}
        self._vocabularies = {name: vocabulary for name, (vocabulary, _) in scans.items()}
        self._clip_totals = {name: self._cumulative_clips(name, n_frames) for name, (_, n_frames) in scans.items()}
        self._vocabulary_sets = {name: set(vocabulary) for name, vocabulary in self._vocabularies.items()}
        self._all_names = sorted({n for vocabulary in self._vocabularies.values() for n in vocabulary})
        bad_rules = {name: ds.positives for name, ds in self.datasets.items() if ds.positives not in POSITIVE_RULES}
        if bad_rules:
            raise InputError(f"unknown positives rules {bad_rules}; one of {list(POSITIVE_RULES)}")
        if len(self._all_names) < 2:
            raise InputError("the datasets name fewer than two distinct categories; anomaly types come from other samples")
        for name, p in zip(self.datasets, self._probabilities):
            n_samples, n_names = len(self.datasets[name]), len(self._vocabularies[name])
            log.info("dataset %s: %d samples, %d names, sampled %.3f", name, n_samples, n_names, p)

    @property
    def names(self) -> list[str]:
        """Every category name of every dataset, sorted."""
        return self._all_names

    def _cumulative_clips(self, dataset: str, n_frames: list[int] | None) -> np.ndarray | None:
        """Running total of the reference's clips per sample: it draws a clip uniformly among all the
        dataset's clips, so a long video is drawn more often. None: every sample one clip (images,
        or frame counts not read). Videos shorter than a clip have none and are never drawn; when
        every video is that short (the reference would have nothing to draw) they count one each."""
        if n_frames is None:
            return None
        length = self.config.frames_per_clip
        counts = np.array([1 if n == 1 else len(clip_starts(n, length)) for n in n_frames])
        if not counts.any():
            log.warning("dataset %s: no video has %d frames, a clip; drawing the short ones whole", dataset, length)
            return None
        return np.cumsum(counts)

    def _n_names(self, dataset: str) -> int:
        return self.config.n_anomalies_by_dataset.get(dataset, self.config.n_anomalies)

    def sample(self, index: int) -> TrainingSample:
        """The training sample for step ``index``; a pure function of (config.seed, index)."""
        rng = np.random.default_rng([self.config.seed, index])
        dataset = list(self.datasets)[int(rng.choice(len(self.datasets), p=self._probabilities))]
        anomalous = bool(rng.random() < self.config.anomaly_ratio)
        if self.config.names_per_sample == "reference":
            return self._reference_draw(rng, dataset, anomalous)
        return self._anomalous(rng, dataset) if anomalous else self._normal(rng, dataset)

    def __iter__(self) -> Iterator[TrainingSample]:
        index = 0
        while True:
            yield self.sample(index)
            index += 1

    def _clip_length(self, info: SampleInfo) -> int:
        return 1 if info.n_frames == 1 else self.config.frames_per_clip

    def _other_names(self, rng: np.random.Generator, dataset: str, own: set[str], k: int) -> list[str]:
        """k names from other samples; from every dataset's names when this dataset has too few."""
        names = _draw_names(rng, self._vocabularies[dataset], own, k, self.config.confusable_negatives)
        if not names:
            names = _draw_names(rng, self._all_names, own, k, self.config.confusable_negatives)
        return names

    def _negatives(self, rng: np.random.Generator, dataset: str, own: set[str], n_true: int, *, anomalous: bool) -> list[str]:
        """randint(1, max - n_true) names of other samples (at most as many as there are; at least
        one for a normal sample, which names nothing else)."""
        vocabulary = self._vocabularies[dataset]
        n_left = len(vocabulary) - len(own & self._vocabulary_sets[dataset])
        if n_left < 1:  # this dataset's names are all the sample's own: fall back to every dataset's
            vocabulary = self._all_names
            n_left = len(vocabulary) - len(own & set(vocabulary))
        room = max(self._n_names(dataset) - n_true, 0 if anomalous else 1)
        most = min(room, n_left)
        if most < 1:
            return []
        return _draw_names(rng, vocabulary, own, int(rng.integers(1, most + 1)), self.config.confusable_negatives)

    def _reference_clip(self, rng: np.random.Generator, dataset: str) -> tuple[int, SampleInfo, list[int]]:
        """A sample and its clip's frames, the clip drawn uniformly among the dataset's clips."""
        ds, totals = self.datasets[dataset], self._clip_totals[dataset]
        if totals is None:
            index = int(rng.integers(len(ds)))
            info = ds.info(index)
            return index, info, choose_frames(rng, info.n_frames, self._clip_length(info))
        clip = int(rng.integers(totals[-1]))
        index = int(np.searchsorted(totals, clip, side="right"))  # the sample holding that clip
        info = ds.info(index)
        length = self._clip_length(info)
        start = (clip - (int(totals[index - 1]) if index else 0)) * length
        return index, info, list(range(start, start + length))

    def _reference_draw(self, rng: np.random.Generator, dataset: str, anomalous: bool) -> TrainingSample:
        """A sample as the reference draws one: a clip, its positives by the dataset's rule, the
        negatives. An anomalous draw whose clip does not show its positives becomes a normal one
        (or is drawn again, with ``redraw_hidden_targets``)."""
        ds = self.datasets[dataset]
        for _ in range(self.config.max_attempts):
            index, info, frames = self._reference_clip(rng, dataset)
            positives = draw_positives(rng, info, frames, ds.positives)
            sample = ds.load(index, frames)
            target = np.zeros(sample.frames.shape[:3], dtype=bool)  # [T, H, W]
            for name in positives if anomalous else ():
                target |= sample.mask_of(name)
            shown = bool(target.any())
            if anomalous and not shown and self.config.redraw_hidden_targets:
                continue
            own = set(info.names)  # never a negative: a named category must be the target
            negatives = self._negatives(rng, dataset, own, len(positives), anomalous=shown)
            if not shown and not negatives:  # it holds every category (the reference makes it anomalous)
                continue
            names = [*positives, *negatives] if shown else negatives
            order = rng.permutation(len(names))
            return _training_sample(dataset, sample, [names[i] for i in order], target, positives=positives if shown else [])
        what = "segmented object" if anomalous else "sample that leaves a category to name"
        raise InputError(f"dataset {dataset}: no {what} found in {self.config.max_attempts} tries; are its masks empty?")

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
        return _training_sample(dataset, sample, names, target, positives=[])

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
            return _training_sample(dataset, sample, [names[i] for i in order], target, positives=[own])
        raise InputError(f"dataset {dataset}: no segmented object found in {self.config.max_attempts} tries; are its masks empty?")


def _training_sample(dataset: str, sample: SegSample, names: list[str], target: np.ndarray, *, positives: list[str]) -> TrainingSample:
    return TrainingSample(
        dataset=dataset,
        sample_id=sample.sample_id,
        frame_indices=sample.frame_indices,
        frames=sample.frames,
        anomaly_types=names,
        target_masks=target,
        target_labels=target.reshape(len(target), -1).any(axis=1),
        is_anomalous=bool(positives),
        positives=tuple(positives),
    )
