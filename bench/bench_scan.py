"""Benchmark of `lavida scan`: where the time goes, and whether decode and detect overlap.

On one generated archive, in one run (Ray started once, before any timing):
  1. decode only   the scan's decode stage alone (Ray Data flat_map, every sampled clip pulled through)
  2. model only    LavidaDetector.detect_batch on the same clips, pre-decoded, in this process
  3. full scan     scan() into a fresh OUT (actor start and model load included)
  ratio = scan / max(decode, model): near 1 when the pipeline overlaps decode and detect.
And at interval 128 (the reference's UCF-Crime/XD-Violence setting), one process, one video at a time:
  sampled decode (decord get_batch of the planned frames, as the scan does) vs decoding every frame
  (iterating the reader, as ray.data.read_videos does), plus ray.data.read_videos itself.

    python bench/bench_scan.py                       # defaults below, tiny model on CPU
    python bench/bench_scan.py --videos 16 --seconds 60 --width 640 --height 480 --model paper --device cuda
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import decord  # noqa: E402
import numpy as np  # noqa: E402
from video_factory import write_video  # noqa: E402

from jobs.scan.decode import DecodeConfig, decode_video  # noqa: E402
from jobs.scan.job import ScanOptions, scan  # noqa: E402
from jobs.scan.listing import list_videos  # noqa: E402
from jobs.scan.ray_session import connect_ray  # noqa: E402
from lavida_core.clips import plan_clips  # noqa: E402
from schemas.stage_rows import DecodedRow  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--codec", default="h264")
    parser.add_argument("--sample-interval", type=int, default=16)
    parser.add_argument("--frames-per-clip", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--num-actors", type=int, default=1)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--ray-address", default=None)
    return parser.parse_args()


def make_archive(folder: Path, args: argparse.Namespace) -> list[Path]:
    n_frames = int(args.seconds * args.fps)
    folder.mkdir(parents=True, exist_ok=True)
    return [
        write_video(folder / f"cam{k:02d}.mp4", codec=args.codec, width=args.width, height=args.height, fps=args.fps, n_frames=n_frames)
        for k in range(args.videos)
    ]


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def decode_only(options: ScanOptions) -> list[np.ndarray]:
    """The scan's decode stage alone on Ray Data; returns the clips (frames arrays)."""
    import ray

    config = DecodeConfig(frames_per_clip=options.frames_per_clip, sample_interval=options.sample_interval)
    items = [dataclasses.asdict(v) for v in list_videos(options.source)]
    dataset = ray.data.from_items(items, override_num_blocks=len(items)).flat_map(decode_video, fn_kwargs={"config": config}, num_cpus=1)
    rows = (DecodedRow.from_row(row) for row in dataset.iter_rows())
    return [row.frames for row in rows if not row.is_error]


def model_only(clips: list[np.ndarray], options: ScanOptions) -> float:
    """detect_batch over the clips in this process, with the threads an actor gets (Ray: 1 per CPU)."""
    import torch

    from lavida_core.detector import LavidaDetector

    if options.device == "cpu":
        torch.set_num_threads(1)  # as in the scan's actor (num_cpus=1, OMP_NUM_THREADS=1)
    detector = LavidaDetector.load(options.model, device=options.device)
    detector.detect_batch(clips[:1], list(options.anomaly_types))  # warm-up, not timed separately
    start = time.perf_counter()
    for i in range(0, len(clips), options.batch_size):
        detector.detect_batch(clips[i : i + options.batch_size], list(options.anomaly_types))
    return time.perf_counter() - start


def actor_start(options: ScanOptions) -> float:
    """What a new detect actor pays before its first clip: a fresh Python importing and loading the model."""
    import subprocess

    code = f"from lavida_core.detector import LavidaDetector; LavidaDetector.load({options.model!r}, device={options.device!r})"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def sampled_decode(paths: list[Path], interval: int, frames_per_clip: int) -> int:
    """Frames decoded the scan's way: one reader per video, get_batch of each planned clip."""
    n = 0
    for path in paths:
        reader = decord.VideoReader(str(path), num_threads=1)
        for indices in plan_clips(len(reader), frames_per_clip, interval):
            n += len(reader.get_batch(indices.tolist()).asnumpy())
    return n


def every_frame_decode(paths: list[Path], interval: int) -> int:
    """Every frame decoded and converted, keeping every `interval`-th (ray.data.read_videos' loop)."""
    n = 0
    for path in paths:
        reader = decord.VideoReader(str(path), num_threads=1)
        for index, frame in enumerate(reader):  # as ray.data.read_videos does
            array = frame.asnumpy()
            n += index % interval == 0 and array is not None
    return n


def ray_read_videos(paths: list[Path], interval: int) -> int:
    import ray

    dataset = ray.data.read_videos([str(p) for p in paths]).select_columns(["frame_index"])
    return sum(1 for row in dataset.iter_rows() if row["frame_index"] % interval == 0)


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    folder = Path(tempfile.mkdtemp(prefix="lavida-bench-"))
    paths = make_archive(folder / "archive", args)
    options = ScanOptions(
        source=str(folder / "archive"), out=str(folder / "out"), model=args.model, device=args.device,
        sample_interval=args.sample_interval, frames_per_clip=args.frames_per_clip, batch_size=args.batch_size,
        num_actors=args.num_actors, gpus_per_actor=1.0 if args.device == "cuda" else 0.0, ray_address=args.ray_address,
    )  # fmt: skip
    connect_ray(args.ray_address)

    t_decode, clips = timed(lambda: decode_only(options))
    t_model = model_only(clips, options)
    t_scan, summary = timed(lambda: scan(options))
    t_start = actor_start(options)
    n_frames = sum(len(c) for c in clips)
    interval = 128
    t_sampled, n_sampled = timed(lambda: sampled_decode(paths, interval, args.frames_per_clip))
    t_every, n_every = timed(lambda: every_frame_decode(paths, interval))
    t_ray, n_ray = timed(lambda: ray_read_videos(paths, interval))

    frames_total = len(paths) * int(args.seconds * args.fps)
    print(f"archive: {len(paths)} x {args.codec} {args.width}x{args.height} {args.fps} fps {args.seconds:.0f} s"
          f" ({frames_total} frames); model {args.model} on {args.device}; batch {args.batch_size}, actors {args.num_actors}")  # fmt: skip
    print(f"scan at interval {args.sample_interval}, {args.frames_per_clip} frames/clip: {len(clips)} clips, {n_frames} sampled frames, "
          f"{summary.n_ok} ok / {summary.n_failed} failed")  # fmt: skip
    rows = [
        ("decode only (Ray Data decode stage)", t_decode, n_frames),
        ("model only (pre-decoded clips)", t_model, n_frames),
        ("full scan (scan())", t_scan, n_frames),
    ]
    print(f"{'stage':<44}{'seconds':>10}{'frames/s':>12}")
    for name, seconds, frames in rows:
        print(f"{name:<44}{seconds:>10.2f}{frames / seconds:>12.1f}")
    print(f"{'ratio scan / max(decode, model)':<44}{t_scan / max(t_decode, t_model):>10.2f}")
    print(f"{'actor start (fresh process: import + load)':<44}{t_start:>10.2f}")
    print(f"{'ratio (scan - actor start) / max(...)':<44}{(t_scan - t_start) / max(t_decode, t_model):>10.2f}")
    print()
    print(f"interval {interval}: {frames_total} frames in the archive")
    print(f"{'decode':<44}{'seconds':>10}{'frames kept':>12}{'x sampled':>10}")
    for name, seconds, kept in (
        ("sampled (get_batch of planned frames)", t_sampled, n_sampled),
        ("every frame (iterate reader, as read_videos)", t_every, n_every),
        ("ray.data.read_videos, keep every 128th", t_ray, n_ray),
    ):
        print(f"{name:<44}{seconds:>10.2f}{kept:>12}{seconds / t_sampled:>10.1f}")


if __name__ == "__main__":
    main()
