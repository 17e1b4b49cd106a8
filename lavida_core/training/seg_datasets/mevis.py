"""MeViS in its published layout, read as the reference LAVIDA code reads it
(dataset/video/MeVis.py); ``root`` is the split folder (MeViS/train):

    root/JPEGImages/<video>/<frame>.jpg
    root/meta_expressions.json   {"videos": {<video>: {"expressions": {<id>: {"exp": "...", "obj_id": [..],
                                                                           "anno_id": [..]}}, "frames": [...]}}}
    root/mask_dict.json          {<anno_id>: [RLE or null, one per frame of the video]}

An expression may refer to several objects (several anno_ids): its mask is their union. As in the
reference, only a video's first EXPRESSIONS_PER_VIDEO expressions are used, and a video with none
is left out.

    ds = MevisVideos("MeViS/train")
    ds.info(0).names          # the video's expressions
    ds.load(0, [0, 1, 2])     # SegSample: frames uint8 [3, H, W, 3], one object per expression
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as coco_mask

from lavida_core.errors import InputError
from lavida_core.training.seg_datasets.files import read_json, read_rgb, require
from lavida_core.training.seg_datasets.sample import ObjectInfo, SampleInfo, SegObject, SegSample

EXPRESSIONS_PER_VIDEO = 8  # MeVis.py stops at the 8th expression of a video


@dataclass(frozen=True)
class _Expression:
    text: str
    anno_ids: tuple[str, ...]
    present_frames: tuple[int, ...]


@dataclass(frozen=True)
class _Video:
    video_id: str
    frames: tuple[Path, ...]  # sorted JPEGs
    expressions: tuple[_Expression, ...]


def _expressions(entry: Any, masks: dict, n_frames: int, where: str, meta_file: Path, mask_file: Path) -> list[_Expression]:
    require(isinstance(entry, dict) and isinstance(entry.get("expressions"), dict), meta_file, f"{where}: needs 'expressions'")
    out = []
    for exp_id, expression in list(entry["expressions"].items())[:EXPRESSIONS_PER_VIDEO]:
        ok = isinstance(expression, dict) and "exp" in expression and isinstance(expression.get("anno_id"), list)
        require(ok, meta_file, f"{where} expression {exp_id}: needs 'exp' and a list 'anno_id'")
        anno_ids = tuple(str(a) for a in expression["anno_id"])
        present: set[int] = set()
        for anno_id in anno_ids:
            per_frame = masks.get(anno_id)
            require(isinstance(per_frame, list), mask_file, f"anno_id {anno_id} ({where} expression {exp_id}) not found")
            require(len(per_frame) == n_frames, mask_file, f"anno_id {anno_id} has {len(per_frame)} frames; {where} has {n_frames}")
            present.update(t for t, rle in enumerate(per_frame) if rle is not None)
        out.append(_Expression(str(expression["exp"]), anno_ids, tuple(sorted(present))))
    return out


class MevisVideos:
    """A SegDataset over a MeViS split folder."""

    positives = "one"  # one expression (MeVis.py)
    categories = None  # negatives are expressions of other videos

    def __init__(self, root: str | Path, *, name: str = "mevis") -> None:
        self.name = name
        self.root = Path(root)
        self.meta_file, self.mask_file = self.root / "meta_expressions.json", self.root / "mask_dict.json"
        meta = read_json(self.meta_file)
        require(isinstance(meta, dict) and isinstance(meta.get("videos"), dict), self.meta_file, "needs an object 'videos'")
        self._masks = read_json(self.mask_file)
        require(isinstance(self._masks, dict), self.mask_file, "top level must be an object {anno_id: [RLE or null per frame]}")
        self._videos = []
        for video_id, entry in sorted(meta["videos"].items()):
            folder = self.root / "JPEGImages" / video_id
            frames = tuple(sorted(folder.glob("*.jpg")))
            require(bool(frames), folder, f"no frames for video {video_id} of {self.meta_file}")
            expressions = _expressions(entry, self._masks, len(frames), f"video {video_id}", self.meta_file, self.mask_file)
            if expressions:
                self._videos.append(_Video(video_id, frames, tuple(expressions)))

    def __len__(self) -> int:
        return len(self._videos)

    def info(self, index: int) -> SampleInfo:
        video = self._videos[index]
        objects = tuple(ObjectInfo(name=e.text, present_frames=e.present_frames) for e in video.expressions)
        return SampleInfo(sample_id=video.video_id, n_frames=len(video.frames), objects=objects)

    def _mask(self, expression: _Expression, t: int, shape: tuple[int, int]) -> np.ndarray:
        """bool [H, W]: the union of the expression's objects in frame t."""
        mask = np.zeros(shape, dtype=bool)
        for anno_id in expression.anno_ids:
            rle = self._masks[anno_id][t]
            if rle is None:
                continue
            try:
                decoded = coco_mask.decode(rle)
            except (TypeError, ValueError, KeyError) as err:
                raise InputError(f"{self.mask_file}: anno_id {anno_id} frame {t}: RLE cannot be decoded ({err})") from None
            require(
                decoded.shape == shape,
                self.mask_file,
                f"anno_id {anno_id} frame {t}: RLE size {list(decoded.shape)} is not the frame's {list(shape)}",
            )
            mask |= decoded.astype(bool)
        return mask

    def load(self, index: int, frame_indices: Sequence[int]) -> SegSample:
        video = self._videos[index]
        chosen = list(frame_indices)
        if not chosen or min(chosen) < 0 or max(chosen) >= len(video.frames):
            raise InputError(f"video {video.video_id} has {len(video.frames)} frames; asked for {chosen}")
        frames = [read_rgb(video.frames[t]) for t in chosen]
        for t, rgb in zip(chosen, frames):
            require(
                rgb.shape == frames[0].shape, video.frames[t], f"frame size {rgb.shape[:2]} differs from the video's {frames[0].shape[:2]}"
            )
        shape = frames[0].shape[:2]
        objects = tuple(SegObject(e.text, np.stack([self._mask(e, t, shape) for t in chosen])) for e in video.expressions)
        return SegSample(sample_id=video.video_id, frame_indices=tuple(chosen), frames=np.stack(frames), objects=objects)
