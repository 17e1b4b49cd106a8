"""Readers for segmentation datasets in their published layouts, all handing out the same SegSample.

- ``CocoInstances``: COCO-format instance annotations (images as one-frame clips).
- ``VideoFolders``: YouTube-VOS-style video folders (YouTube-VOS, Ref-YouTube-VOS, Ref-DAVIS).
- ``ReferImages``: RefCOCO / RefCOCO+ / RefCOCOg / RefCLEF (REFER pickles) and gRefCOCO.
- ``MevisVideos``: MeViS (``meta_expressions.json`` + ``mask_dict.json``).
- ``ade20k``, ``cityscapes``, ``mapillary``, ``cocostuff``: semantic label PNGs (``SemanticPngs``).
- ``ArraySegDataset``: samples already in memory.

Anything that does not fit raises ``lavida_core.errors.InputError`` naming the first file at fault.
"""

from lavida_core.training.seg_datasets.coco import CocoInstances
from lavida_core.training.seg_datasets.mevis import MevisVideos
from lavida_core.training.seg_datasets.refer import ReferImages
from lavida_core.training.seg_datasets.sample import (
    POSITIVE_RULES,
    ArraySegDataset,
    ObjectInfo,
    SampleInfo,
    SegDataset,
    SegObject,
    SegSample,
)
from lavida_core.training.seg_datasets.semantic_pngs import SemanticPngs, ade20k, cityscapes, cocostuff, mapillary
from lavida_core.training.seg_datasets.video_folders import VideoFolders

__all__ = [
    "POSITIVE_RULES",
    "ArraySegDataset",
    "CocoInstances",
    "MevisVideos",
    "ObjectInfo",
    "ReferImages",
    "SampleInfo",
    "SegDataset",
    "SegObject",
    "SegSample",
    "SemanticPngs",
    "VideoFolders",
    "ade20k",
    "cityscapes",
    "cocostuff",
    "mapillary",
]
