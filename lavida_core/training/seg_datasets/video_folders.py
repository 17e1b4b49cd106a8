"""Video segmentation folders in the YouTube-VOS layout: YouTube-VOS, Ref-YouTube-VOS, MeViS and
Ref-DAVIS (as converted to that layout).

    root/JPEGImages/<video>/<frame>.jpg
    root/Annotations/<video>/<frame>.png     palette PNG, pixel value = object id (0 background)
    root/meta.json                           {"videos": {<video>: {"objects": {"1": {"category": "dog",
                                                                             "frames": ["00000", ...]}}}}}
 or root/meta_expressions.json               {"videos": {<video>: {"expressions": {"0": {"exp": "a dog running",
                                                                                  "obj_id": "1"}}}}}
                                             (MeViS: "obj_id" may be a list; the objects' masks are joined)

Positives (what an anomalous sample names, seg_datasets.POSITIVE_RULES): with categories, every
category in 1-2 frames of the clip ("frames", as the reference's Vos.py); with expressions, 1-2
objects with one expression each ("objects", RefVos.py); Ref-DAVIS passes ``positives="one"`` and
``sample_per_expression=True`` (RefDavis.py: a sample per expression, which it names).
Expressions marked ``"is_test": true`` (Ref-DAVIS) are left out, as the reference trains without
them.

A video's frames are the annotated ones (the PNGs), in name order; each needs its JPEG. With
expressions, a ``meta.json`` beside them (as Ref-YouTube-VOS ships) tells which frames show each
object; without it, that is unknown until the masks are read.

    ds = VideoFolders("ytvos/train")
    ds.info(0)                 # SampleInfo: n_frames, objects with names and the frames they are in
    ds.load(0, [0, 1, 2, 3])   # SegSample: frames uint8 [4, H, W, 3], masks bool [4, H, W] per object
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lavida_core.errors import InputError
from lavida_core.training.seg_datasets.files import read_id_mask, read_json, read_rgb, require
from lavida_core.training.seg_datasets.sample import ObjectInfo, SampleInfo, SegObject, SegSample

META_FILES = ("meta_expressions.json", "meta.json")  # the first one present is used


@dataclass(frozen=True)
class _VideoObject:
    name: str
    ids: tuple[int, ...]  # palette values that make up this object
    present_frames: tuple[int, ...] | None
    object_key: str | None = None  # the object ids an expression refers to; None for categories


@dataclass(frozen=True)
class _Video:
    video_id: str
    stems: tuple[str, ...]  # frame file names without extension, sorted
    objects: tuple[_VideoObject, ...]


def _object_ids(raw: Any, meta_file: Path, where: str) -> tuple[int, ...]:
    values = raw if isinstance(raw, list) else [raw]
    try:
        ids = tuple(int(v) for v in values)
    except (TypeError, ValueError):
        raise InputError(f"{meta_file}: {where}: object id {raw!r} is not an integer") from None
    valid = len(ids) > 0 and all(1 <= i <= 255 for i in ids)
    require(valid, meta_file, f"{where}: object ids must be 1..255, got {raw!r}")
    return ids


def _objects_from_categories(entry: dict, stems: tuple[str, ...], meta_file: Path, video_id: str) -> list[_VideoObject]:
    position = {stem: t for t, stem in enumerate(stems)}
    objects = []
    for obj_id, obj in entry["objects"].items():
        where = f"video {video_id} object {obj_id}"
        require(isinstance(obj, dict) and "category" in obj, meta_file, f"{where}: no 'category'")
        frames = obj.get("frames")
        present = None if frames is None else tuple(position[f] for f in frames if f in position)
        objects.append(_VideoObject(str(obj["category"]), _object_ids(obj_id, meta_file, where), present))
    return objects


def _objects_from_expressions(
    entry: dict, meta_file: Path, video_id: str, presence: dict[int, tuple[int, ...]] | None
) -> list[_VideoObject]:
    """One object per expression; ``presence`` (object id -> frames, from meta.json) when known."""
    objects = []
    for exp_id, expression in entry["expressions"].items():
        where = f"video {video_id} expression {exp_id}"
        require(
            isinstance(expression, dict) and "exp" in expression and "obj_id" in expression,
            meta_file,
            f"{where}: needs 'exp' and 'obj_id'",
        )
        if expression.get("is_test"):
            continue
        ids = _object_ids(expression["obj_id"], meta_file, where)
        present = None
        if presence is not None and all(i in presence for i in ids):
            present = tuple(sorted({t for i in ids for t in presence[i]}))
        objects.append(_VideoObject(str(expression["exp"]), ids, present, object_key=",".join(map(str, ids))))
    return objects


def _category_presence(
    category_meta: dict | None, video_id: str, stems: tuple[str, ...], meta_file: Path
) -> dict[int, tuple[int, ...]] | None:
    """Object id -> frames it is in, from a YouTube-VOS meta.json beside an expressions file."""
    entry = (category_meta or {}).get("videos", {}).get(video_id)
    if not isinstance(entry, dict) or not isinstance(entry.get("objects"), dict):
        return None
    objects = _objects_from_categories(entry, stems, meta_file, video_id)
    return {obj.ids[0]: obj.present_frames for obj in objects if obj.present_frames is not None}


def _frame_stems(root: Path, video_id: str) -> tuple[str, ...]:
    """Sorted stems of the video's annotation PNGs; each must have its JPEG."""
    annotations = root / "Annotations" / video_id
    images = root / "JPEGImages" / video_id
    require(annotations.is_dir(), annotations, "annotation folder of a video listed in the meta file not found")
    stems = tuple(sorted(p.stem for p in annotations.glob("*.png")))
    require(len(stems) > 0, annotations, "no .png masks")
    jpegs = {p.stem for p in images.glob("*.jpg")} if images.is_dir() else set()
    for stem in stems:
        require(stem in jpegs, images / f"{stem}.jpg", f"frame of mask {annotations / (stem + '.png')} not found")
    return stems


def _index(root: Path, meta_file: Path, kinds: set[str]) -> list[_Video]:
    """The videos of ``meta_file``; adds to ``kinds`` what names them ("categories", "expressions")."""
    meta = read_json(meta_file)
    require(isinstance(meta, dict) and isinstance(meta.get("videos"), dict), meta_file, "needs an object 'videos'")
    category_file = root / "meta.json"  # Ref-YouTube-VOS keeps it beside the expressions: where objects are
    category_meta = read_json(category_file) if category_file.is_file() and category_file != meta_file else None
    videos = []
    for video_id, entry in sorted(meta["videos"].items()):
        stems = _frame_stems(root, video_id)
        if isinstance(entry, dict) and isinstance(entry.get("expressions"), dict):
            kinds.add("expressions")
            presence = _category_presence(category_meta, video_id, stems, category_file)
            objects = _objects_from_expressions(entry, meta_file, video_id, presence)
        elif isinstance(entry, dict) and isinstance(entry.get("objects"), dict):
            kinds.add("categories")
            objects = _objects_from_categories(entry, stems, meta_file, video_id)
        else:
            raise InputError(f"{meta_file}: video {video_id}: needs 'objects' (categories) or 'expressions'")
        videos.append(_Video(video_id, stems, tuple(objects)))
    return videos


class VideoFolders:
    """A SegDataset over a YouTube-VOS-style folder; meta_file defaults to the first of META_FILES found."""

    categories = None  # negatives come from the names of other videos

    def __init__(
        self,
        root: str | Path,
        *,
        meta_file: str | Path | None = None,
        name: str = "vos",
        positives: str | None = None,
        sample_per_expression: bool = False,
    ) -> None:
        """``sample_per_expression``: every expression (object) of a video is a sample of its own,
        that knows only it, as the reference's RefDavis.py rows are."""
        self.name = name
        self.root = Path(root)
        require(self.root.is_dir(), self.root, "dataset folder not found")
        if meta_file is None:
            found = [self.root / f for f in META_FILES if (self.root / f).is_file()]
            require(bool(found), self.root / META_FILES[-1], f"no meta file (looked for {', '.join(META_FILES)})")
            meta_file = found[0]
        self.meta_file = Path(meta_file)
        kinds: set[str] = set()
        self._videos = _index(self.root, self.meta_file, kinds)
        if sample_per_expression:
            self._videos = [_Video(v.video_id, v.stems, (obj,)) for v in self._videos for obj in v.objects]
        self.positives = positives or ("objects" if "expressions" in kinds else "frames")

    def __len__(self) -> int:
        return len(self._videos)

    def info(self, index: int) -> SampleInfo:
        video = self._videos[index]
        objects = tuple(ObjectInfo(obj.name, obj.present_frames, obj.object_key) for obj in video.objects)
        return SampleInfo(sample_id=video.video_id, n_frames=len(video.stems), objects=objects)

    def _read_frame(self, video: _Video, t: int) -> tuple[np.ndarray, np.ndarray]:
        """RGB uint8 [H, W, 3] and object ids uint8 [H, W] of frame t."""
        image_path = self.root / "JPEGImages" / video.video_id / f"{video.stems[t]}.jpg"
        mask_path = self.root / "Annotations" / video.video_id / f"{video.stems[t]}.png"
        rgb, ids = read_rgb(image_path), read_id_mask(mask_path)
        require(
            ids.shape == rgb.shape[:2],
            mask_path,
            f"mask is {ids.shape[1]}x{ids.shape[0]} but its frame {image_path.name} is {rgb.shape[1]}x{rgb.shape[0]}",
        )
        return rgb, ids

    def load(self, index: int, frame_indices: Sequence[int]) -> SegSample:
        video = self._videos[index]
        chosen = list(frame_indices)
        if not chosen or min(chosen) < 0 or max(chosen) >= len(video.stems):
            raise InputError(f"video {video.video_id} has {len(video.stems)} frames; asked for {chosen}")
        read = [self._read_frame(video, t) for t in chosen]
        first_shape = read[0][0].shape
        for t, (rgb, _) in zip(chosen, read):
            path = self.root / "JPEGImages" / video.video_id / f"{video.stems[t]}.jpg"
            same = rgb.shape == first_shape
            require(same, path, f"frame size {rgb.shape[:2]} differs from the video's {first_shape[:2]}")
        frames = np.stack([rgb for rgb, _ in read])  # [T, H, W, 3]
        ids = np.stack([m for _, m in read])  # [T, H, W]
        objects = tuple(SegObject(name=obj.name, masks=np.isin(ids, obj.ids)) for obj in video.objects)
        return SegSample(sample_id=video.video_id, frame_indices=tuple(chosen), frames=frames, objects=objects)
