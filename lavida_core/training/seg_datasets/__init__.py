"""Readers for segmentation datasets in their usual layouts, all handing out the same SegSample.

- ``CocoInstances``: COCO-format instance annotations (images as one-frame clips).
- ``VideoFolders``: YouTube-VOS-style video folders (YouTube-VOS, Ref-YouTube-VOS, MeViS, Ref-DAVIS).
- ``ArraySegDataset``: samples already in memory.

Anything that does not fit raises ``lavida_core.errors.InputError`` naming the first file at fault.
"""

from lavida_core.training.seg_datasets.coco import CocoInstances
from lavida_core.training.seg_datasets.sample import ArraySegDataset, ObjectInfo, SampleInfo, SegDataset, SegObject, SegSample
from lavida_core.training.seg_datasets.video_folders import VideoFolders

__all__ = [
    "ArraySegDataset",
    "CocoInstances",
    "ObjectInfo",
    "SampleInfo",
    "SegDataset",
    "SegObject",
    "SegSample",
    "VideoFolders",
]
