"""COCO-format instance annotations: COCO, the RefCOCO family, and ADE20K / Cityscapes / Mapillary
converted to COCO format.

    ds = CocoInstances("coco/train2017", "coco/annotations/instances_train2017.json")
    ds.info(0).names      # ("person", "dog")
    ds.load(0, [0])       # SegSample: frames uint8 [1, H, W, 3], one SegObject per instance

Object names: the annotation's category name, unless the annotation carries referring
expressions (``"expressions": ["the man on the left", ...]``: one object per expression) or its
image carries a ``"caption"`` (MDETR's RefCOCO layout: every annotation of that image is the one
referred object). Segmentations may be polygons, uncompressed RLE or compressed RLE.
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


@dataclass(frozen=True)
class _Object:
    name: str
    segmentation: Any  # polygons or RLE, as in the file
    ann_id: Any  # the annotation's id, for error messages


@dataclass(frozen=True)
class _Image:
    file_name: str
    height: int
    width: int
    objects: tuple[_Object, ...]


def _check_segmentation(segmentation: Any, ann_file: Path, ann_id: Any) -> None:
    where = f"annotation id {ann_id}"
    if isinstance(segmentation, list):
        require(len(segmentation) > 0, ann_file, f"{where}: empty polygon list")
        for polygon in segmentation:
            require(
                isinstance(polygon, list) and len(polygon) >= 6 and len(polygon) % 2 == 0,
                ann_file,
                f"{where}: a polygon must be a flat list of at least 3 x,y pairs",
            )
    elif isinstance(segmentation, dict):
        require(
            "counts" in segmentation and "size" in segmentation,
            ann_file,
            f"{where}: an RLE segmentation needs 'size' and 'counts'",
        )
    else:
        kind = type(segmentation).__name__
        raise InputError(f"{ann_file}: {where}: segmentation must be polygons or RLE, got {kind}")


def _decode_segmentation(obj: _Object, height: int, width: int, ann_file: Path) -> np.ndarray:
    """bool [H, W] from polygons, uncompressed RLE (counts a list) or compressed RLE (counts a string)."""
    segmentation, where = obj.segmentation, f"annotation id {obj.ann_id}"
    try:
        if isinstance(segmentation, dict) and isinstance(segmentation["counts"], str):
            rle = {"size": list(segmentation["size"]), "counts": segmentation["counts"].encode("ascii")}
        elif isinstance(segmentation, dict):
            rle = coco_mask.frPyObjects(segmentation, height, width)
        else:
            rle = coco_mask.merge(coco_mask.frPyObjects(segmentation, height, width))
        size_ok = list(rle["size"]) == [height, width]
        mask = coco_mask.decode(rle).astype(bool) if size_ok else None
    except (TypeError, ValueError, UnicodeError) as err:
        raise InputError(f"{ann_file}: {where}: segmentation cannot be decoded ({err})") from None
    require(size_ok, ann_file, f"{where}: RLE size {list(rle['size'])} does not match its image's [{height}, {width}]")
    return mask


def _object_names(ann: dict, image: dict, category_name: str) -> list[str]:
    if ann.get("expressions"):
        return [str(e) for e in ann["expressions"]]
    if image.get("caption"):
        return [str(image["caption"])]
    return [category_name]


def _index(instances: Any, ann_file: Path) -> list[_Image]:
    require(isinstance(instances, dict), ann_file, "top level must be an object with images, annotations, categories")
    for key in ("images", "annotations", "categories"):
        require(isinstance(instances.get(key), list), ann_file, f"missing list '{key}'")
    try:
        categories = {c["id"]: str(c["name"]) for c in instances["categories"]}
        images = {im["id"]: im for im in instances["images"]}
        for im in images.values():
            _ = (str(im["file_name"]), int(im["height"]), int(im["width"]))
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"{ann_file}: categories need id and name; images need id, file_name, height, width ({err!r})") from None
    objects: dict[Any, list[_Object]] = {image_id: [] for image_id in images}
    for ann in instances["annotations"]:
        ann_id = ann.get("id") if isinstance(ann, dict) else None
        require(isinstance(ann, dict) and "segmentation" in ann, ann_file, f"annotation id {ann_id}: no segmentation")
        image_id, category_id = ann.get("image_id"), ann.get("category_id")
        require(image_id in images, ann_file, f"annotation id {ann_id}: unknown image_id {image_id}")
        require(category_id in categories, ann_file, f"annotation id {ann_id}: unknown category_id {category_id}")
        _check_segmentation(ann["segmentation"], ann_file, ann_id)
        for name in _object_names(ann, images[image_id], categories[category_id]):
            objects[image_id].append(_Object(name, ann["segmentation"], ann_id))
    return [_Image(str(im["file_name"]), int(im["height"]), int(im["width"]), tuple(objects[image_id])) for image_id, im in images.items()]


class CocoInstances:
    """A SegDataset over one COCO instances JSON and its image folder; every image is a one-frame clip."""

    positives = "one"
    categories = None  # negatives come from the names of other images

    def __init__(self, images_dir: str | Path, annotation_file: str | Path, *, name: str = "coco") -> None:
        self.name = name
        self.images_dir = Path(images_dir)
        self.annotation_file = Path(annotation_file)
        require(self.images_dir.is_dir(), self.images_dir, "image folder not found")
        self._images = _index(read_json(self.annotation_file), self.annotation_file)
        for image in self._images:
            path = self.images_dir / image.file_name
            require(path.is_file(), path, f"image listed in {self.annotation_file} not found")

    def __len__(self) -> int:
        return len(self._images)

    def info(self, index: int) -> SampleInfo:
        image = self._images[index]
        objects = tuple(ObjectInfo(name=obj.name, present_frames=(0,)) for obj in image.objects)
        return SampleInfo(sample_id=image.file_name, n_frames=1, objects=objects)

    def load(self, index: int, frame_indices: Sequence[int] = (0,)) -> SegSample:
        if any(i != 0 for i in frame_indices):
            raise InputError(f"an image has one frame (index 0); asked for frames {list(frame_indices)}")
        image = self._images[index]
        path = self.images_dir / image.file_name
        rgb = read_rgb(path)  # [H, W, 3]
        require(
            rgb.shape[:2] == (image.height, image.width),
            path,
            f"image is {rgb.shape[1]}x{rgb.shape[0]} but {self.annotation_file} says {image.width}x{image.height}",
        )
        n = len(frame_indices)
        objects = []
        for obj in image.objects:
            mask = _decode_segmentation(obj, image.height, image.width, self.annotation_file)  # [H, W]
            objects.append(SegObject(name=obj.name, masks=np.repeat(mask[None], n, axis=0)))
        return SegSample(
            sample_id=image.file_name,
            frame_indices=tuple(frame_indices),
            frames=np.repeat(rgb[None], n, axis=0),
            objects=tuple(objects),
        )
