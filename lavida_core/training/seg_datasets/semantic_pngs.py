"""Semantic segmentation datasets in their published layouts: one label PNG per image, whose pixel
values are class ids. Every class present in an image is one object; which classes count, and
the category list that anomaly types are named from, follow the reference LAVIDA code
(dataset/image/ADE20K.py, CitySpace.py, Mapillary.py, Cocostuff.py).

    ADE20K (ADEChallengeData2016)   root/images/training/<id>.jpg, root/annotations/training/<id>.png
    Cityscapes                      root/leftImg8bit/train/<city>/<stem>_leftImg8bit.png,
                                    root/gtFine/train/<city>/<stem>_gtFine_labelIds.png
    Mapillary Vistas v2.0           root/config_v2.0.json, root/training/images/<id>.jpg,
                                    root/training/v2.0/labels/<id>.png
    COCO-Stuff (stuffthingmaps)     root/images/train2017/<id>.jpg,
                                    root/annotations/stuffthingmaps_trainval2017/train2017/<id>.png,
                                    and its labels file ("0: unlabeled", "1: person", ...)

    ds = ade20k("ADEChallengeData2016")
    ds.info(0).names          # ("person", "car"): read from the label PNG
    ds.load(0, [0])           # SegSample: frames uint8 [1, H, W, 3], one object per class present

``info`` reads the label PNG (the classes present are known from pixels only); negatives are named
from the dataset's fixed ``categories``, so building the sampler reads no PNG.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lavida_core.errors import InputError
from lavida_core.training.seg_datasets.files import read_json, read_label_png, read_rgb, require
from lavida_core.training.seg_datasets.sample import ObjectInfo, SampleInfo, SegObject, SegSample

# fmt: off
ADE20K_CLASSES = (  # pixel value v > 0 is class v - 1 (ADEChallengeData2016)
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass",
    "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair",
    "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair",
    "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion", "base",
    "box", "column", "signboard", "chest of drawers", "counter", "sand", "sink", "skyscraper",
    "fireplace", "refrigerator", "grandstand", "path", "stairs", "runway", "case", "pool table",
    "pillow", "screen door", "stairway", "river", "bridge", "bookcase", "blind", "coffee table",
    "toilet", "flower", "book", "hill", "bench", "countertop", "stove", "palm", "kitchen island",
    "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus", "towel", "light",
    "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver",
    "airplane", "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle",
    "buffet", "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer",
    "plaything", "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag", "minibike",
    "cradle", "oven", "ball", "food", "step", "tank", "trade name", "microwave", "pot", "animal",
    "bicycle", "lake", "dishwasher", "screen", "blanket", "sculpture", "hood", "sconce", "vase",
    "traffic light", "tray", "ashcan", "fan", "pier", "crt screen", "plate", "monitor",
    "bulletin board", "shower", "radiator", "glass", "clock", "flag",
)

ADE20K_BACKGROUND = (  # never named: stuff, not objects
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "grass", "sidewalk", "earth",
    "mountain", "field", "sea", "sand", "path", "runway", "river", "hill", "land", "lake",
)
# fmt: on

# Cityscapes labelIds the reference names; every other id is neither a target nor a type.
CITYSCAPES_CLASSES = {
    19: "traffic light",
    20: "traffic sign",
    22: "terrain",
    27: "truck",
    28: "bus",
    31: "train",
    32: "motorcycle",
    33: "bicycle",
}


@dataclass(frozen=True)
class _Pair:
    image: Path
    label: Path


class SemanticPngs:
    """A SegDataset over (image, label PNG) pairs; ``classes[v]`` names pixel value v (None: ignored)."""

    positives = "one"

    def __init__(self, pairs: Sequence[_Pair], classes: dict[int, str], categories: Sequence[str], *, name: str) -> None:
        self.name = name
        self.categories: tuple[str, ...] | None = tuple(categories)
        self._pairs = list(pairs)
        self._classes = classes
        self._cached_info = functools.lru_cache(maxsize=64)(self._read_info)  # asked again at each draw

    def __len__(self) -> int:
        return len(self._pairs)

    def _values(self, labels: np.ndarray) -> list[int]:
        """Named pixel values present, ascending."""
        return [int(v) for v in np.unique(labels) if int(v) in self._classes]

    def info(self, index: int) -> SampleInfo:
        return self._cached_info(index)

    def _read_info(self, index: int) -> SampleInfo:
        pair = self._pairs[index]
        labels = read_label_png(pair.label)  # [H, W]
        objects = tuple(ObjectInfo(name=self._classes[v], present_frames=(0,)) for v in self._values(labels))
        return SampleInfo(sample_id=pair.image.name, n_frames=1, objects=objects)

    def load(self, index: int, frame_indices: Sequence[int] = (0,)) -> SegSample:
        if any(i != 0 for i in frame_indices):
            raise InputError(f"an image has one frame (index 0); asked for frames {list(frame_indices)}")
        pair = self._pairs[index]
        rgb, labels = read_rgb(pair.image), read_label_png(pair.label)  # [H, W, 3], [H, W]
        require(
            labels.shape == rgb.shape[:2],
            pair.label,
            f"label is {labels.shape[1]}x{labels.shape[0]} but its image {pair.image.name} is {rgb.shape[1]}x{rgb.shape[0]}",
        )
        n = len(frame_indices)
        objects = tuple(SegObject(self._classes[v], np.repeat((labels == v)[None], n, axis=0)) for v in self._values(labels))
        frames = np.repeat(rgb[None], n, axis=0)  # [T, H, W, 3]
        return SegSample(sample_id=pair.image.name, frame_indices=tuple(frame_indices), frames=frames, objects=objects)


def _pairs_by_stem(images: Path, labels: Path, image_suffix: str, label_of: Callable[[Path], Path]) -> list[_Pair]:
    """Every image under ``images`` (sorted) with its label; a missing label names the file."""
    require(images.is_dir(), images, "image folder not found")
    pairs = []
    for image in sorted(images.glob(f"*{image_suffix}")):
        label = label_of(image)
        require(label.is_file(), label, f"label PNG of {image} not found")
        pairs.append(_Pair(image, label))
    require(bool(pairs), images, f"no *{image_suffix} images")
    return pairs


def ade20k(root: str | Path, *, name: str = "ade20k") -> SemanticPngs:
    """ADEChallengeData2016, training split. Value 0 is unlabelled; the 20 background classes are
    never named; types come from the other 130 (ADE20K.py)."""
    root = Path(root)
    labels = root / "annotations" / "training"
    pairs = _pairs_by_stem(root / "images" / "training", labels, ".jpg", lambda image: labels / f"{image.stem}.png")
    classes = {v + 1: c for v, c in enumerate(ADE20K_CLASSES) if c not in ADE20K_BACKGROUND}
    return SemanticPngs(pairs, classes, list(classes.values()), name=name)


def cityscapes(root: str | Path, *, name: str = "cityspace") -> SemanticPngs:
    """Cityscapes fine annotations, train split, city by city (CitySpace.py): the 8 classes of
    CITYSCAPES_CLASSES, by labelId."""
    root = Path(root)
    images_root, labels_root = root / "leftImg8bit" / "train", root / "gtFine" / "train"
    require(images_root.is_dir(), images_root, "image folder not found")
    pairs = []
    for city in sorted(p for p in images_root.iterdir() if p.is_dir()):

        def label_of(image: Path, city: str = city.name) -> Path:
            return labels_root / city / image.name.replace("leftImg8bit", "gtFine_labelIds")

        pairs += _pairs_by_stem(city, labels_root / city.name, ".png", label_of)
    require(bool(pairs), images_root, "no city folders with *_leftImg8bit.png images")
    return SemanticPngs(pairs, dict(CITYSCAPES_CLASSES), list(CITYSCAPES_CLASSES.values()), name=name)


def mapillary(root: str | Path, *, name: str = "mapillary") -> SemanticPngs:
    """Mapillary Vistas v2.0, training split: value v is the v-th label of config_v2.0.json, its
    "readable" name lower-cased (Mapillary.py); 255 is ignored."""
    root = Path(root)
    config_file = root / "config_v2.0.json"
    config = read_json(config_file)
    labels_list = config.get("labels") if isinstance(config, dict) else None
    valid = isinstance(labels_list, list) and all(isinstance(x, dict) and isinstance(x.get("readable"), str) for x in labels_list)
    require(valid, config_file, "needs a list 'labels' of objects with a 'readable' name")
    classes = {v: str(x["readable"]).lower() for v, x in enumerate(labels_list) if v != 255}
    labels = root / "training" / "v2.0" / "labels"
    require(labels.is_dir(), labels, "label folder not found")
    pairs = _jpegs_of_labels(labels, root / "training" / "images", "labels")
    return SemanticPngs(pairs, classes, [x["readable"].lower() for x in labels_list], name=name)


def _jpegs_of_labels(labels: Path, images: Path, what: str) -> list[_Pair]:
    """Each label PNG of `labels` with the JPEG of its name in `images` (InputError naming the first missing one)."""
    pairs = []
    for label in sorted(labels.glob("*.png")):
        image = images / f"{label.stem}.jpg"
        require(image.is_file(), image, f"image of {label} not found")
        pairs.append(_Pair(image, label))
    require(bool(pairs), labels, f"no *.png {what}")
    return pairs


def read_cocostuff_labels(path: Path) -> list[str]:
    """COCO-Stuff's labels file ("0: unlabeled", "1: person", ...) without its first line: the name
    of map value v is entry v (value 0 is "person"; 255 is unlabelled)."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    names = [line.strip().split(": ")[-1] for line in lines[1:] if line.strip()]
    require(len(names) > 1 and all(names), path, 'expected lines "<id>: <name>", the first one "0: unlabeled"')
    return names


def cocostuff(root: str | Path, *, labels_file: str | Path | None = None, name: str = "cocostuff") -> SemanticPngs:
    """COCO-Stuff stuffthingmaps, train2017 (Cocostuff.py): classes whose name has a "-" (the
    "-other" and "-merged" stuff) are ignored as targets but stay in the category list, as there.
    ``labels_file`` defaults to root/labels.txt."""
    root = Path(root)
    names = read_cocostuff_labels(Path(labels_file) if labels_file else root / "labels.txt")
    classes = {v: c for v, c in enumerate(names) if "-" not in c and v != 255}
    maps = root / "annotations" / "stuffthingmaps_trainval2017" / "train2017"
    require(maps.is_dir(), maps, "label map folder not found")
    return SemanticPngs(_jpegs_of_labels(maps, root / "images" / "train2017", "label maps"), classes, names, name=name)
