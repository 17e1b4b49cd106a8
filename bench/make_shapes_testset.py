"""Write held-out synthetic anomaly videos in ShanghaiTech's layout, for `lavida eval`.

    python bench/make_shapes_testset.py --out /tmp/shapes-seen --videos 40 --seed 5001
    python bench/make_shapes_testset.py --out /tmp/shapes-novel --videos 40 --novel --seed 5001
    lavida eval --dataset shanghaitech --root /tmp/shapes-seen --out /tmp/eval-seen \
        --model models/demo --sample-interval 1 --pixel $(cat /tmp/shapes-seen/anomaly_args.txt)

Videos are drawn like the demo model's training videos (the synthetic shapes of
models/demo_train.json), with the seed given (jobs/eval/shapes_testset.py says what a set holds). For the
demo model's figures use bench/demo_model_eval.py, which draws fresh test seeds and scores several sets.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from jobs.cli.demo import demo_shapes
from jobs.eval.shapes_testset import write_shapes_testset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--videos", type=int, default=40)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--novel", action="store_true")
    parser.add_argument("--seed", type=int, required=True, help="the set's seed (see bench/demo_model_eval.py for which are taken)")
    parser.add_argument("--types", type=int, default=4, help="distinct anomaly types in the set (default 4)")
    args = parser.parse_args()
    config = demo_shapes(n_frames=args.frames, seed=args.seed)  # the demo model's words and sizes
    types = write_shapes_testset(args.out, config, n_videos=args.videos, novel=args.novel, max_types=args.types)
    print(f"{args.videos} videos in {args.out}; anomaly types: {', '.join(types)}")


if __name__ == "__main__":
    main()
