"""Write synthetic shapes videos (lavida_core.training.synthetic_shapes) to disk in the published
layouts that lavida_core.training.seg_datasets reads: YouTube-VOS (+ Ref-YouTube-VOS expressions)
and COCO instances. Test data only."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as coco_mask

from lavida_core.training.synthetic_shapes import SyntheticVideo

VOS_PALETTE = [0, 0, 0] + [v for k in range(1, 256) for v in ((k * 67) % 256, (k * 149) % 256, (k * 29) % 256)]


def _save_jpeg(frame: np.ndarray, path: Path) -> None:
    Image.fromarray(frame).save(path, quality=95)


def _save_id_png(ids: np.ndarray, path: Path) -> None:
    """ids: uint8 [H, W], 0 is background, k the object id; saved as a palette PNG (as YouTube-VOS)."""
    image = Image.fromarray(ids, mode="P")
    image.putpalette(VOS_PALETTE)
    image.save(path)


def write_vos_layout(videos: Sequence[SyntheticVideo], root: str | Path, *, expressions: bool = False) -> Path:
    """Lay videos out as YouTube-VOS train: ``JPEGImages/<video>/<frame>.jpg``,
    ``Annotations/<video>/<frame>.png`` (palette, object ids 1..K) and ``meta.json``.

    With ``expressions=True`` also writes ``meta_expressions.json`` (Ref-YouTube-VOS) with one
    expression per object, "the <category>". Returns ``root``.
    """
    root = Path(root)
    meta: dict = {"videos": {}}
    meta_expressions: dict = {"videos": {}}
    for video in videos:
        (root / "JPEGImages" / video.video_id).mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / video.video_id).mkdir(parents=True, exist_ok=True)
        stems = [f"{5 * t:05d}" for t in range(len(video.frames))]  # YouTube-VOS numbers every 5th frame
        ids = np.zeros(video.frames.shape[:3], dtype=np.uint8)  # [T, H, W]
        for k, obj in enumerate(video.objects, start=1):
            ids[obj.masks] = k
        for t, stem in enumerate(stems):
            _save_jpeg(video.frames[t], root / "JPEGImages" / video.video_id / f"{stem}.jpg")
            _save_id_png(ids[t], root / "Annotations" / video.video_id / f"{stem}.png")
        objects = {
            str(k): {"category": obj.name, "frames": [s for s, m in zip(stems, obj.masks) if m.any()]}
            for k, obj in enumerate(video.objects, start=1)
        }
        meta["videos"][video.video_id] = {"objects": objects}
        meta_expressions["videos"][video.video_id] = {
            "expressions": {str(k - 1): {"exp": f"the {obj.name}", "obj_id": str(k)} for k, obj in enumerate(video.objects, start=1)},
            "frames": stems,
        }
    (root / "meta.json").write_text(json.dumps(meta))
    if expressions:
        (root / "meta_expressions.json").write_text(json.dumps(meta_expressions))
    return root


def _coco_annotation(mask: np.ndarray, *, ann_id: int, image_id: int, category_id: int) -> dict:
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": category_id,
        "segmentation": {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")},
        "area": float(coco_mask.area(rle)),
        "bbox": [float(v) for v in coco_mask.toBbox(rle)],
        "iscrowd": 0,
    }


def write_coco_layout(videos: Sequence[SyntheticVideo], root: str | Path, *, frames_per_video: int = 1) -> tuple[Path, Path]:
    """Lay the first ``frames_per_video`` frames of each video out as COCO instances: images in
    ``root/images/`` and ``root/annotations/instances.json`` with RLE segmentations (one annotation
    per visible object). Returns (images folder, annotation file).
    """
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    names = sorted({obj.name for video in videos for obj in video.objects})
    category_ids = {name: i for i, name in enumerate(names, start=1)}
    images, annotations = [], []
    for video in videos:
        for t in range(min(frames_per_video, len(video.frames))):
            image_id = len(images) + 1
            file_name = f"{video.video_id}_{t:05d}.jpg"
            _save_jpeg(video.frames[t], root / "images" / file_name)
            height, width = video.frames.shape[1:3]
            images.append({"id": image_id, "file_name": file_name, "height": height, "width": width})
            for obj in video.objects:
                if obj.masks[t].any():
                    ann_id, category_id = len(annotations) + 1, category_ids[obj.name]
                    annotations.append(_coco_annotation(obj.masks[t], ann_id=ann_id, image_id=image_id, category_id=category_id))
    instances = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i, "name": name} for name, i in category_ids.items()],
    }
    annotation_file = root / "annotations" / "instances.json"
    annotation_file.write_text(json.dumps(instances))
    return root / "images", annotation_file
