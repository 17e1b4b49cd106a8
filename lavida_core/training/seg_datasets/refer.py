"""Referring-expression images in the REFER layout (RefCOCO, RefCOCO+, RefCOCOg, RefCLEF) and
gRefCOCO, read as the reference LAVIDA code reads them (dataset/image/Coco.py, refer.py,
grefer.py): its "coco" dataset is these lists together, and it names referring sentences, not
category names.

    root/refcoco/refs(unc).p, root/refcoco/instances.json     images: root/images/mscoco/images/train2014/
    root/refcoco+/refs(unc).p, root/refcoco+/instances.json
    root/refcocog/refs(umd).p, root/refcocog/instances.json
    root/refclef/refs(unc).p, root/refclef/instances.json     images: root/images/saiapr_tc-12/
    root/grefcoco/grefs(unc).p or grefs(unc).json, root/grefcoco/instances.json (an ann_id may be a
                                                              list of ids; [-1]: the sentence refers to nothing)

    ds = ReferImages("refer_data", lists=("refcoco", "refcocog"))
    ds.info(0).names      # ("man in red", "guy on left", ...): every sentence of the image's refs
    ds.load(0, [0])       # SegSample: frames uint8 [1, H, W, 3], one object per sentence

Every image with a ref of the split is one sample. The refs files are pickles of plain lists and
dicts; they are read with an unpickler that refuses anything else (a pickle naming a class or a
function is an InputError, never run).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as coco_mask

from lavida_core.errors import InputError
from lavida_core.training.seg_datasets.files import read_json, read_rgb, require
from lavida_core.training.seg_datasets.sample import ObjectInfo, SampleInfo, SegObject, SegSample

REFERENCE_LISTS = ("refclef", "refcoco", "refcoco+", "refcocog")  # the reference's data_list
SPLIT_BY = {"refcocog": "umd"}  # the refs file's split-by; "unc" for the others
IMAGE_FOLDERS = {"refclef": "images/saiapr_tc-12"}  # under root; the others: COCO train2014
COCO_IMAGES = "images/mscoco/images/train2014"


class _PlainDataUnpickler(pickle.Unpickler):
    """Reads pickles of builtin containers and scalars only."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"it refers to {module}.{name}; a refs file holds plain lists and dicts only")


def _read_refs(path: Path) -> list:
    try:
        if path.suffix == ".json":
            refs = json.loads(path.read_text())
        else:
            with path.open("rb") as handle:
                refs = _PlainDataUnpickler(handle).load()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (pickle.UnpicklingError, json.JSONDecodeError, EOFError, ValueError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not a readable refs file ({err})") from None
    require(isinstance(refs, list), path, "top level must be a list of refs")
    return refs


def _refs_file(folder: Path, list_name: str) -> Path:
    split_by = SPLIT_BY.get(list_name, "unc")
    if list_name != "grefcoco":
        return folder / f"refs({split_by}).p"
    pickled = folder / f"grefs({split_by}).p"
    return pickled if pickled.is_file() else folder / f"grefs({split_by}).json"


@dataclass(frozen=True)
class _Ref:
    key: str  # "<list>:<ref_id>"
    sentences: tuple[str, ...]
    annotations: tuple[Any, ...]  # segmentations of the referred objects; empty: refers to nothing


@dataclass(frozen=True)
class _Image:
    path: Path
    height: int
    width: int
    refs: tuple[_Ref, ...]
    instances_file: Path  # for error messages


def _ref_annotations(ann_id: Any, annotations: dict, refs_file: Path, ref_id: Any) -> tuple[Any, ...]:
    ids = ann_id if isinstance(ann_id, list) else [ann_id]
    if ids == [-1]:  # gRefCOCO: a sentence that refers to no object
        return ()
    missing = [i for i in ids if i not in annotations]
    require(not missing, refs_file, f"ref {ref_id}: annotation ids {missing} are not in instances.json")
    return tuple(annotations[i].get("segmentation", []) for i in ids)


def _read_list(root: Path, list_name: str, split: str) -> list[_Image]:
    folder = root / list_name
    refs_file, instances_file = _refs_file(folder, list_name), folder / "instances.json"
    instances = read_json(instances_file)
    valid = isinstance(instances, dict) and all(isinstance(instances.get(k), list) for k in ("images", "annotations"))
    require(valid, instances_file, "needs lists 'images' and 'annotations'")
    try:
        images = {im["id"]: im for im in instances["images"]}
        annotations = {ann["id"]: ann for ann in instances["annotations"]}
    except (KeyError, TypeError) as err:
        raise InputError(f"{instances_file}: every image and annotation needs an 'id' ({err!r})") from None
    by_image: dict[Any, list[_Ref]] = {}
    for ref in _read_refs(refs_file):
        try:
            if ref["split"] != split:
                continue
            ref_id, image_id = ref["ref_id"], ref["image_id"]
            sentences = tuple(str(s["sent"]) for s in ref["sentences"])
            ann_id = ref["ann_id"]
        except (KeyError, TypeError) as err:
            raise InputError(f"{refs_file}: a ref needs ref_id, image_id, ann_id, split and sentences with 'sent' ({err!r})") from None
        require(image_id in images, refs_file, f"ref {ref_id}: image_id {image_id} is not in {instances_file}")
        segmentations = _ref_annotations(ann_id, annotations, refs_file, ref_id)
        by_image.setdefault(image_id, []).append(_Ref(f"{list_name}:{ref_id}", sentences, segmentations))
    image_folder = root / IMAGE_FOLDERS.get(list_name, COCO_IMAGES)
    out = []
    for image_id, refs in by_image.items():
        image = images[image_id]
        try:
            path, height, width = image_folder / str(image["file_name"]), int(image["height"]), int(image["width"])
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(f"{instances_file}: image {image_id} needs file_name, height, width ({err!r})") from None
        require(path.is_file(), path, f"image of a ref in {refs_file} not found")
        out.append(_Image(path, height, width, tuple(refs), instances_file))
    return out


def _decode(segmentation: Any, height: int, width: int) -> np.ndarray:
    """bool [H, W] from polygons, a list of RLEs, or one RLE (compressed or not); [] is empty."""
    if isinstance(segmentation, list) and not segmentation:
        return np.zeros((height, width), dtype=bool)
    if isinstance(segmentation, dict):
        segmentation = [segmentation]
    if isinstance(segmentation[0], list):  # polygons
        rles = coco_mask.frPyObjects(segmentation, height, width)
    else:
        rles = []
        for rle in segmentation:
            if isinstance(rle["counts"], list):
                rles.append(coco_mask.frPyObjects(rle, height, width))
            else:
                counts = rle["counts"] if isinstance(rle["counts"], bytes) else rle["counts"].encode("ascii")
                rles.append({"size": list(rle["size"]), "counts": counts})
    masks = coco_mask.decode(rles)  # [H, W, N]
    if masks.shape[:2] != (height, width):
        raise ValueError(f"RLE size {list(masks.shape[:2])} is not the image's [{height}, {width}]")
    return masks.any(axis=2)


class ReferImages:
    """A SegDataset over the REFER lists under ``root``; every image is a one-frame clip."""

    positives = "one"  # one ref, one of its sentences (Coco.py)
    categories = None  # negatives are sentences of other images

    def __init__(self, root: str | Path, *, lists: Sequence[str] = REFERENCE_LISTS, split: str = "train", name: str = "coco") -> None:
        self.name = name
        self.root = Path(root)
        require(self.root.is_dir(), self.root, "dataset folder not found")
        known = (*REFERENCE_LISTS, "grefcoco")
        unknown = [x for x in lists if x not in known]
        if unknown or not lists:
            raise InputError(f"unknown REFER lists {unknown}; choose among {list(known)}")
        self._images = [image for list_name in lists for image in _read_list(self.root, list_name, split)]
        require(bool(self._images), self.root, f"no image has a ref of split {split!r} in {list(lists)}")

    def __len__(self) -> int:
        return len(self._images)

    def info(self, index: int) -> SampleInfo:
        image = self._images[index]
        objects = tuple(
            ObjectInfo(name=sentence, present_frames=(0,) if ref.annotations else (), object_key=ref.key)
            for ref in image.refs
            for sentence in ref.sentences
        )
        return SampleInfo(sample_id=image.path.name, n_frames=1, objects=objects)

    def _mask(self, image: _Image, ref: _Ref) -> np.ndarray:
        mask = np.zeros((image.height, image.width), dtype=bool)
        for segmentation in ref.annotations:
            try:
                mask |= _decode(segmentation, image.height, image.width)
            except (TypeError, ValueError, KeyError, IndexError, UnicodeError) as err:
                raise InputError(f"{image.instances_file}: segmentation of ref {ref.key} cannot be decoded ({err})") from None
        return mask

    def load(self, index: int, frame_indices: Sequence[int] = (0,)) -> SegSample:
        if any(i != 0 for i in frame_indices):
            raise InputError(f"an image has one frame (index 0); asked for frames {list(frame_indices)}")
        image = self._images[index]
        rgb = read_rgb(image.path)  # [H, W, 3]
        require(
            rgb.shape[:2] == (image.height, image.width),
            image.path,
            f"image is {rgb.shape[1]}x{rgb.shape[0]} but {image.instances_file} says {image.width}x{image.height}",
        )
        n = len(frame_indices)
        objects = []
        for ref in image.refs:
            masks = np.repeat(self._mask(image, ref)[None], n, axis=0)  # [T, H, W]
            objects += [SegObject(name=sentence, masks=masks) for sentence in ref.sentences]
        frames = np.repeat(rgb[None], n, axis=0)  # [T, H, W, 3]
        return SegSample(sample_id=image.path.name, frame_indices=tuple(frame_indices), frames=frames, objects=tuple(objects))
