"""What every segmentation reader hands out: a cheap index entry per sample and, on request, pixels.

A reader is a ``SegDataset``: ``len(ds)``, ``ds.info(i)`` (names and frame count from the
annotation files only, no pixels) and ``ds.load(i, frame_indices)`` (the chosen frames and their
masks). The sampler draws from ``info`` and loads only the frames it keeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

# How the reference picks the own objects an anomalous sample names (its positives):
POSITIVE_RULES = (
    # one object, shown in the clip or not (then the draw is normal): a category, or one object's
    # referring expression (images, MeViS, Ref-DAVIS)
    "one",
    "objects",  # 1-2 visible objects, drawn with replacement, one expression each (Ref-YouTube-VOS: RefVos.py)
    "frames",  # every category visible in 1-2 frames of the clip, drawn with replacement (YouTube-VOS: Vos.py)
)


@dataclass(frozen=True)
class ObjectInfo:
    name: str  # category name, or a referring expression
    present_frames: tuple[int, ...] | None  # frame indices where it is visible; None when unknown
    object_key: str | None = None  # the object a name refers to (expressions of one object share it); None: the name


@dataclass(frozen=True)
class SampleInfo:
    sample_id: str  # the image file name or the video folder name
    n_frames: int  # 1 for an image
    objects: tuple[ObjectInfo, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Distinct object names, in first-seen order."""
        return tuple(dict.fromkeys(obj.name for obj in self.objects))


@dataclass(frozen=True)
class SegObject:
    name: str
    masks: np.ndarray  # bool [T, H, W]


@dataclass(frozen=True)
class SegSample:
    sample_id: str
    frame_indices: tuple[int, ...]  # which of the sample's frames, in order; len T
    frames: np.ndarray  # uint8 [T, H, W, 3], RGB
    objects: tuple[SegObject, ...]  # one per ObjectInfo of the sample, same order

    def mask_of(self, name: str) -> np.ndarray:
        """bool [T, H, W]: union of the masks of every object called ``name`` (all instances)."""
        target = np.zeros(self.frames.shape[:3], dtype=bool)
        for obj in self.objects:
            if obj.name == name:
                target |= obj.masks
        return target


class SegDataset(Protocol):
    name: str
    positives: str  # one of POSITIVE_RULES
    # The fixed list negatives are named from (image datasets whose names are read from pixels; the
    # sampler then reads no sample up front and draws them uniformly). None: every name of the
    # samples, and the sampler reads every sample's info once (names, and frames to weigh clips by).
    categories: tuple[str, ...] | None

    def __len__(self) -> int: ...

    def info(self, index: int) -> SampleInfo: ...

    def load(self, index: int, frame_indices: Sequence[int]) -> SegSample: ...


class ArraySegDataset:
    """A SegDataset over samples already in memory (e.g. generated ones); ``load`` slices frames."""

    def __init__(self, samples: Sequence[SegSample], *, name: str = "arrays", positives: str = "one") -> None:
        self.name = name
        self.positives = positives
        self.categories: tuple[str, ...] | None = None
        self._samples = list(samples)

    def __len__(self) -> int:
        return len(self._samples)

    def info(self, index: int) -> SampleInfo:
        sample = self._samples[index]
        objects = tuple(
            ObjectInfo(name=obj.name, present_frames=tuple(np.flatnonzero(obj.masks.any(axis=(1, 2))).tolist())) for obj in sample.objects
        )
        return SampleInfo(sample_id=sample.sample_id, n_frames=len(sample.frames), objects=objects)

    def load(self, index: int, frame_indices: Sequence[int]) -> SegSample:
        sample = self._samples[index]
        chosen = list(frame_indices)
        return SegSample(
            sample_id=sample.sample_id,
            frame_indices=tuple(sample.frame_indices[i] for i in chosen),
            frames=sample.frames[chosen],
            objects=tuple(SegObject(name=obj.name, masks=obj.masks[chosen]) for obj in sample.objects),
        )
