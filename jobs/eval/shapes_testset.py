"""Held-out synthetic anomaly videos in ShanghaiTech's layout: what `lavida eval`, the training
validation and bench/demo_model_eval.py score a model trained on synthetic shapes with.

    types = write_shapes_testset(Path("/tmp/shapes-seen"), config, n_videos=20)   # ShapesConfig of the training data
    # /tmp/shapes-seen/testing/{frames/01_0001/000.jpg, test_frame_mask/01_0001.npy, test_pixel_mask/01_0001.npy}
    # /tmp/shapes-seen/anomaly_args.txt: "--anomaly 'red circle' --anomaly ..."

Videos are drawn like the training videos of `config` (its words, sizes and speeds; its own seed:
the set is a pure function of it). Each video shows normal shapes throughout and one named shape (the
anomaly) in a run of frames; frame labels and pixel masks are exact. `novel`: the anomaly is a
colour-shape combination held out of training (words seen, never together). No video's normal
shapes include any video's anomaly, so the whole set is scanned with one list of anomaly types (at
most `max_types`). Frames are JPEG files (quality 95), as a camera archive's would be compressed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from lavida_core.training.synthetic_shapes import AnomalyTestVideo, ShapesConfig, disjoint_anomaly_videos

TYPES_FILE = "anomaly_types.json"  # the set's anomaly types, for a program
ARGS_FILE = "anomaly_args.txt"  # the same as `lavida eval` arguments, for a shell


def write_shapes_testset(root: Path, config: ShapesConfig, *, n_videos: int, novel: bool = False, max_types: int = 4) -> list[str]:
    """Write the set into `root` (ShanghaiTech's test layout); returns its anomaly types, sorted."""
    videos = disjoint_anomaly_videos(config, n_videos, novel=(novel,), max_types=max_types)
    _write_videos(videos, Path(root))
    types = sorted({v.anomaly_type for v in videos})
    (Path(root) / TYPES_FILE).write_text(json.dumps(types))
    (Path(root) / ARGS_FILE).write_text(" ".join(f"--anomaly '{t}'" for t in types))
    return types


def read_testset_types(root: Path) -> list[str]:
    return json.loads((Path(root) / TYPES_FILE).read_text())


def _write_videos(videos: list[AnomalyTestVideo], root: Path) -> None:
    testing = root / "testing"
    for folder in ("frames", "test_frame_mask", "test_pixel_mask"):
        (testing / folder).mkdir(parents=True, exist_ok=True)
    for number, video in enumerate(videos, start=1):
        name = f"01_{number:04d}"
        frames = testing / "frames" / name
        frames.mkdir(exist_ok=True)
        for t, frame in enumerate(video.frames):
            Image.fromarray(frame).save(frames / f"{t:03d}.jpg", quality=95)
        np.save(testing / "test_frame_mask" / f"{name}.npy", video.frame_labels.astype(np.int8))
        np.save(testing / "test_pixel_mask" / f"{name}.npy", video.masks.astype(np.uint8))
