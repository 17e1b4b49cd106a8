"""`lavida detect VIDEO`: run LAVIDA on one clip of one video and print per-frame scores.

A quick check of a model on a file, without Ray or an OUT folder. The archive-scale job is `lavida scan`.
"""

from __future__ import annotations

import argparse

from jobs.common.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", help="a local video file or folder of numbered frames")
    parser.add_argument("--model", default="tiny", help="a preset (tiny, paper) or a model folder (default: tiny)")
    parser.add_argument("--anomaly", action="append", dest="anomaly_types", metavar="TEXT", help="an anomaly type (repeatable)")
    parser.add_argument("--start-frame", type=int, default=0, help="first frame of the clip (default 0)")
    parser.add_argument("--frames-per-clip", type=int, default=8)
    parser.add_argument("--sample-interval", type=int, default=16)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], help="default: bfloat16 on cuda, float32 on cpu")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from jobs.video.reader import VideoError, open_video
    from lavida_core.detector import LavidaDetector

    if args.frames_per_clip < 1 or args.sample_interval < 1 or args.start_frame < 0:
        raise UserError("--frames-per-clip and --sample-interval must be >= 1 and --start-frame >= 0")
    try:
        with open_video(args.video) as video:
            n_frames = video.info.n_frames
            indices = np.arange(args.start_frame, n_frames, args.sample_interval)[: args.frames_per_clip]
            if len(indices) == 0:
                raise UserError(f"{args.video} has {n_frames} frames; --start-frame {args.start_frame} is past the end")
            frames, timestamps = video.read(indices)
    except VideoError as error:
        raise UserError(f"cannot read video {args.video} ({error.kind}): {error}") from error
    detector = LavidaDetector.load(args.model, device=args.device, dtype=args.dtype)
    result = detector.detect(frames, args.anomaly_types or ["an anomaly"])
    print(f"model={detector.model_name} trained={detector.trained} frames={len(indices)} of {n_frames}")
    print("frame_index  timestamp_s  score   mask_pixels")
    for index, ts, score, mask in zip(indices, timestamps, result.scores, result.masks):
        print(f"{index:11d}  {ts:11.3f}  {score:.4f}  {int(mask.sum()):11d}")
    return 0
