"""Write synthetic shapes videos (lavida_core.training.synthetic_shapes) to disk in the published
layouts that lavida_core.training.seg_datasets reads: YouTube-VOS (+ Ref-YouTube-VOS expressions)
and COCO instances. Test data only."""

from __future__ import annotations

import json
import pickle
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


# --- the layouts the reference LAVIDA code reads (issue 14) --------------------------------------
# Each writer lays out a few tiny images or videos exactly as the published dataset does and
# returns what a reader should find there.

IMAGE_SIZE = (24, 32)  # (height, width) of generated images


def _noise_rgb(rng: np.random.Generator, size: tuple[int, int] = IMAGE_SIZE) -> np.ndarray:
    return rng.integers(0, 255, size=(*size, 3), dtype=np.uint8)


def _rect(top: int, left: int, height: int, width: int, size: tuple[int, int] = IMAGE_SIZE) -> np.ndarray:
    mask = np.zeros(size, dtype=bool)
    mask[top : top + height, left : left + width] = True
    return mask


def _label_png(values: np.ndarray, path: Path, *, palette: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(values.astype(np.uint8), mode="P" if palette else "L")
    if palette:
        image.putpalette(VOS_PALETTE)
    image.save(path)


def _semantic_masks(values: np.ndarray, classes: dict[int, str]) -> dict[str, np.ndarray]:
    """name -> bool [H, W] of the named values present in a label map."""
    return {classes[v]: values == v for v in sorted(set(np.unique(values).tolist())) if v in classes}


def _label_map(rng: np.random.Generator, values: Sequence[int], fill: int) -> np.ndarray:
    """uint8 [H, W]: ``fill`` with one rectangle per value, side by side."""
    out = np.full(IMAGE_SIZE, fill, dtype=np.uint8)
    for k, v in enumerate(values):
        out[_rect(int(rng.integers(0, 8)), 1 + 7 * k, 10, 6)] = v
    return out


def write_ade20k_layout(root: str | Path, n_images: int = 3, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """ADEChallengeData2016: images/training/ADE_train_<n>.jpg and annotations/training/<same>.png
    (value v > 0 is class v - 1: 1 wall (background, never named), 13 person, 21 car, 84 truck).
    Returns {image file name: {class name: mask}} of the named classes."""
    root, rng = Path(root), np.random.default_rng(seed)
    named = {13: "person", 21: "car", 84: "truck"}
    expected = {}
    for i in range(n_images):
        stem = f"ADE_train_{i + 1:08d}"
        values = _label_map(rng, [13, 21, 84][: 1 + i % 3] + [1], fill=0)
        (root / "images" / "training").mkdir(parents=True, exist_ok=True)
        _save_jpeg(_noise_rgb(rng), root / "images" / "training" / f"{stem}.jpg")
        _label_png(values, root / "annotations" / "training" / f"{stem}.png")
        expected[f"{stem}.jpg"] = _semantic_masks(values, named)
    return expected


CITYSCAPES_NAMED = {
    19: "traffic light",
    20: "traffic sign",
    22: "terrain",
    27: "truck",
    28: "bus",
    31: "train",
    32: "motorcycle",
    33: "bicycle",
}


def write_cityscapes_layout(
    root: str | Path, cities: Sequence[str] = ("aachen", "bremen"), seed: int = 0
) -> dict[str, dict[str, np.ndarray]]:
    """leftImg8bit/train/<city>/<city>_000000_<n>_leftImg8bit.png and
    gtFine/train/<city>/<city>_000000_<n>_gtFine_labelIds.png; labelIds 7 (road) and 26 (car) are
    not among the 8 named ones. Returns {image file name: {class name: mask}}."""
    root, rng = Path(root), np.random.default_rng(seed)
    expected = {}
    for c, city in enumerate(cities):
        for i in range(2):
            stem = f"{city}_000000_{i:06d}"
            values = _label_map(rng, [[28, 26], [33, 19], [27, 31], [7, 32]][(2 * c + i) % 4], fill=7)
            image = root / "leftImg8bit" / "train" / city / f"{stem}_leftImg8bit.png"
            image.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(_noise_rgb(rng)).save(image)
            _label_png(values, root / "gtFine" / "train" / city / f"{stem}_gtFine_labelIds.png")
            expected[image.name] = _semantic_masks(values, CITYSCAPES_NAMED)
    return expected


MAPILLARY_LABELS = ["Bird", "Ground Animal", "Curb", "Fence", "Person", "Car", "Unlabeled"]


def write_mapillary_layout(root: str | Path, n_images: int = 3, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """Mapillary Vistas v2.0: config_v2.0.json ("labels" with "readable" names),
    training/images/<id>.jpg, training/v2.0/labels/<id>.png (palette; value = label index).
    Returns {image file name: {lower-cased label: mask}}."""
    root, rng = Path(root), np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    labels = [{"name": name.lower().replace(" ", "--"), "readable": name, "color": [k, k, k]} for k, name in enumerate(MAPILLARY_LABELS)]
    (root / "config_v2.0.json").write_text(json.dumps({"labels": labels, "version": "2.0"}))
    classes = {k: name.lower() for k, name in enumerate(MAPILLARY_LABELS)}
    expected = {}
    for i in range(n_images):
        stem = f"img{i:03d}_{'x' * (i + 1)}"
        values = _label_map(rng, [[0, 4], [5], [1, 3, 5]][i % 3], fill=2)
        (root / "training" / "images").mkdir(parents=True, exist_ok=True)
        _save_jpeg(_noise_rgb(rng), root / "training" / "images" / f"{stem}.jpg")
        _label_png(values, root / "training" / "v2.0" / "labels" / f"{stem}.png", palette=True)
        expected[f"{stem}.jpg"] = _semantic_masks(values, classes)
    return expected


COCOSTUFF_LABELS = ["unlabeled", "person", "bicycle", "car", "wall-other", "grass", "sky-other", "dog"]


def write_cocostuff_layout(root: str | Path, n_images: int = 3, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """COCO-Stuff: labels.txt ("0: unlabeled", "1: person", ...), images/train2017/<id>.jpg,
    annotations/stuffthingmaps_trainval2017/train2017/<id>.png (value v is label v + 1; 255 is
    unlabelled; "-other" classes are never targets). Returns {image file name: {class: mask}}."""
    root, rng = Path(root), np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "labels.txt").write_text("".join(f"{k}: {name}\n" for k, name in enumerate(COCOSTUFF_LABELS)))
    classes = {v: name for v, name in enumerate(COCOSTUFF_LABELS[1:]) if "-" not in name}
    expected = {}
    for i in range(n_images):
        stem = f"{i + 1:012d}"
        values = _label_map(rng, [[0, 3], [6, 4], [1, 2, 5]][i % 3], fill=255)
        (root / "images" / "train2017").mkdir(parents=True, exist_ok=True)
        _save_jpeg(_noise_rgb(rng), root / "images" / "train2017" / f"{stem}.jpg")
        _label_png(values, root / "annotations" / "stuffthingmaps_trainval2017" / "train2017" / f"{stem}.png")
        expected[f"{stem}.jpg"] = _semantic_masks(values, classes)
    return expected


def _polygon(mask_box: tuple[int, int, int, int]) -> list[list[float]]:
    top, left, height, width = mask_box
    x0, y0, x1, y1 = left, top, left + width, top + height
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def _compressed_rle(mask: np.ndarray) -> dict:
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")}


REFER_LISTS = ("refclef", "refcoco", "refcoco+", "refcocog", "grefcoco")


def write_refer_layout(root: str | Path, lists: Sequence[str] = REFER_LISTS, seed: int = 0) -> list[tuple[str, dict[str, np.ndarray]]]:
    """The REFER layout: root/<list>/refs(unc).p (refcocog: refs(umd).p; grefcoco: grefs(unc).json,
    ann_id lists, [-1] for no target) + root/<list>/instances.json; images in
    root/images/mscoco/images/train2014/ (refclef: root/images/saiapr_tc-12/). Each list has two
    train images with two refs each (a polygon and an RLE object) and one val image.
    Returns, in the reader's order, (image file name, {sentence: mask}) for the train images."""
    root, rng = Path(root), np.random.default_rng(seed)
    expected = []
    for n, list_name in enumerate(lists):
        folder = root / list_name
        folder.mkdir(parents=True, exist_ok=True)
        image_folder = root / ("images/saiapr_tc-12" if list_name == "refclef" else "images/mscoco/images/train2014")
        images, annotations, refs = [], [], []
        for i, split in enumerate(("train", "train", "val")):
            image_id = 100 * n + i + 1
            file_name = f"COCO_train2014_{image_id:012d}.jpg" if list_name != "refclef" else f"{image_id // 10}/images/{image_id}.jpg"
            (image_folder / file_name).parent.mkdir(parents=True, exist_ok=True)
            _save_jpeg(_noise_rgb(rng), image_folder / file_name)
            images.append({"id": image_id, "file_name": file_name, "height": IMAGE_SIZE[0], "width": IMAGE_SIZE[1]})
            box_a, box_b = (2, 2 + i, 8, 6), (12, 18, 9, 10)
            mask_a, mask_b = _rect(*box_a), _rect(*box_b)
            ann_a, ann_b = 1000 * n + 10 * i + 1, 1000 * n + 10 * i + 2
            annotations.append({"id": ann_a, "image_id": image_id, "category_id": 1, "segmentation": _polygon(box_a)})
            annotations.append({"id": ann_b, "image_id": image_id, "category_id": 2, "segmentation": [_compressed_rle(mask_b)]})
            sentences = {f"{list_name} {i} left thing": mask_a, f"{list_name} {i} the thing at right": mask_b}
            targets: list = [ann_a, ann_b]
            if list_name == "grefcoco":  # one sentence for both objects, one for nothing
                sentences = {f"{list_name} {i} both things": mask_a | mask_b, f"{list_name} {i} the unicorn": np.zeros(IMAGE_SIZE, bool)}
                targets = [[ann_a, ann_b], [-1]]
            for k, ((sentence, _), target) in enumerate(zip(sentences.items(), targets)):
                sent = {"sent": sentence, "sent_id": 10 * image_id + k, "tokens": sentence.split(), "raw": sentence}
                ref = {"ref_id": 10 * image_id + k, "ann_id": target, "image_id": image_id, "category_id": 1, "split": split}
                refs.append({**ref, "sentences": [sent], "sent_ids": [sent["sent_id"]], "file_name": file_name})
            if split == "train":
                expected.append((Path(file_name).name, sentences))
        instances = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
        (folder / "instances.json").write_text(json.dumps(instances))
        if list_name == "grefcoco":
            (folder / "grefs(unc).json").write_text(json.dumps(refs))
        else:
            with open(folder / f"refs({'umd' if list_name == 'refcocog' else 'unc'}).p", "wb") as handle:
                pickle.dump(refs, handle, protocol=2)
    return expected


def write_mevis_layout(videos: Sequence[SyntheticVideo], root: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """MeViS train: JPEGImages/<video>/<frame>.jpg, meta_expressions.json (expressions with
    obj_id and anno_id lists) and mask_dict.json ({anno_id: [RLE or null per frame]}). Each
    object gets an expression, and a video with two objects one more for both. Returns
    {video: {expression: masks bool [T, H, W]}}."""
    root = Path(root)
    meta: dict = {"videos": {}}
    mask_dict: dict = {}
    expected: dict = {}
    for video in videos:
        folder = root / "JPEGImages" / video.video_id
        folder.mkdir(parents=True, exist_ok=True)
        stems = [f"{t:05d}" for t in range(len(video.frames))]
        for t, stem in enumerate(stems):
            _save_jpeg(video.frames[t], folder / f"{stem}.jpg")
        expressions, expected[video.video_id] = {}, {}
        for k, obj in enumerate(video.objects):
            anno_id = str(len(mask_dict))
            mask_dict[anno_id] = [_compressed_rle(m) if m.any() else None for m in obj.masks]
            text = f"{obj.name} moving around"
            expressions[str(k)] = {"exp": text, "obj_id": [k], "anno_id": [anno_id]}
            expected[video.video_id][text] = obj.masks
        if len(video.objects) >= 2:
            text = f"{video.objects[0].name} and {video.objects[1].name}"
            anno_ids = [expressions["0"]["anno_id"][0], expressions["1"]["anno_id"][0]]
            expressions[str(len(expressions))] = {"exp": text, "obj_id": [0, 1], "anno_id": anno_ids}
            expected[video.video_id][text] = video.objects[0].masks | video.objects[1].masks
        meta["videos"][video.video_id] = {"expressions": expressions, "frames": stems}
    (root / "meta_expressions.json").write_text(json.dumps(meta))
    (root / "mask_dict.json").write_text(json.dumps(mask_dict))
    return expected


def write_ref_vos_layout(videos: Sequence[SyntheticVideo], root: str | Path, *, test_expressions: bool = False) -> tuple[Path, Path]:
    """Ref-YouTube-VOS (and Ref-DAVIS as the reference's convert_davis_to_ytvos.py leaves it):
    root/train/{meta.json, JPEGImages/, Annotations/} and root/meta_expressions/train/meta_expressions.json
    with two expressions per object ("the <category>", "<category> number <id>"). With
    ``test_expressions`` a third, marked ``"is_test": true`` (Ref-DAVIS), that training leaves out.
    Returns (train folder, expressions file)."""
    root = Path(root)
    train = write_vos_layout(videos, root / "train")
    meta: dict = {"videos": {}}
    for video in videos:
        expressions = {}
        for k, obj in enumerate(video.objects, start=1):
            texts = [f"the {obj.name}", f"{obj.name} number {k}"] + ([f"held-out {obj.name}"] if test_expressions else [])
            for j, text in enumerate(texts):
                entry = {"exp": text, "obj_id": str(k)}
                if test_expressions:
                    entry["is_test"] = j == 2
                expressions[str(len(expressions))] = entry
        meta["videos"][video.video_id] = {"expressions": expressions, "frames": [f"{5 * t:05d}" for t in range(len(video.frames))]}
    expressions_file = root / "meta_expressions" / "train" / "meta_expressions.json"
    expressions_file.parent.mkdir(parents=True, exist_ok=True)
    expressions_file.write_text(json.dumps(meta))
    return train, expressions_file
