"""Write held-out synthetic anomaly videos in ShanghaiTech's layout, for `lavida eval`.

    python bench/make_shapes_testset.py --out /tmp/shapes-seen --videos 40
    python bench/make_shapes_testset.py --out /tmp/shapes-novel --videos 40 --novel
    lavida eval --dataset shanghaitech --root /tmp/shapes-seen --out /tmp/eval-seen \
        --model models/demo --sample-interval 1 --pixel $(cat /tmp/shapes-seen/anomaly_args.txt)

Videos are drawn like the demo model's training videos (the synthetic shapes of
models/demo_train.json), with another seed. Each video shows normal shapes throughout and one named
shape (the anomaly) in a run of frames; frame labels and pixel masks are exact. `--novel` draws the
anomaly among colour-shape combinations held out of training (words seen, never together). Videos are
chosen so that no video's normal shapes include any video's anomaly, so the whole set can be scanned
with one list of anomaly types (`--types`, default 4, distinct ones).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from jobs.demo import demo_shapes
from lavida_core.training.synthetic_shapes import disjoint_anomaly_videos


def write(videos: list, root: Path) -> None:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--videos", type=int, default=40)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--novel", action="store_true")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--types", type=int, default=4, help="distinct anomaly types in the set (default 4)")
    args = parser.parse_args()
    config = demo_shapes(n_frames=args.frames, seed=args.seed)  # the demo model's words and sizes
    videos = disjoint_anomaly_videos(config, args.videos, novel=(args.novel,), max_types=args.types)
    write(videos, args.out)
    types = sorted({v.anomaly_type for v in videos})
    (args.out / "anomaly_args.txt").write_text(" ".join(f"--anomaly '{t}'" for t in types))
    print(f"{len(videos)} videos in {args.out}; anomaly types: {', '.join(types)}")


if __name__ == "__main__":
    main()
