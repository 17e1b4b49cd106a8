"""Benchmark of decoding sampled frames (issue 31): source frames per second per core, 1080p H.264.

A camera-like video (a static textured scene, a moving block, 30 fps, 40 s) is encoded once per GOP
length (1 s, 2 s, 8 s). On one thread, in this process, best of `--repeats`:
  every frame     PyAV decodes every frame in order, converting none (the floor for reading all)
  every + rgb     every frame decoded and converted to RGB (what decord's sequential reading does)
  old reader      decord `get_batch` of each planned clip (the scan's reader before issue 31: a seek
                  back to a keyframe for each sample)
  reader          jobs/video/reader.py now: in order where samples are denser than keyframes, seeking
                  where they are sparser, converting only the sampled frames
  keyframes       `--sample-interval keyframes`: the reader, the decoder skipping all but the keyframes
Figures: source frames per second (the video's frames / wall seconds, one thread), and each reader's
time against `every frame` (<= 1.0: never slower than decoding everything).

    python bench/bench_decode.py                      # 1080p, 40 s, GOP 1/2/8 s, intervals 4/16/128
    python bench/bench_decode.py --seconds 10 --width 640 --height 360   # a quick look
    python bench/bench_decode.py --archive-minutes 10     # a 10-minute 1080p file through `lavida scan`
    python bench/bench_decode.py --preprocess             # CPU per clip at the paper preset, both frame paths

With --archive-minutes M: one M-minute video (GOP 2 s) is scanned by the real CLI in a fresh process
(tiny model, CPU, default sampling), against decoding its planned clips alone with the reader (one
thread), and the cores one GPU would need at the paper preset: an H100 scores ~47 clips/s (8.4 TFLOP
per 8-frame clip at 40 % of 989 bf16 TFLOPS), one core decodes (clips / decode-only seconds); once with
the default frames and once with `--frames-at-model-size` (frames scaled by the decoder to the tiny
preset's sizes).

With --preprocess: what one 8-frame 1080p clip costs the CPU at the paper preset's input sizes, one
thread, on each frame path: the decode task (reading the sampled frames: full-size RGB, or scaled by
FFmpeg to each tower's size) and the detector's process (building the towers' pixel inputs: Qwen2-VL's
patches, SAM2's and CLIP's images, which resize full-size frames, or nothing), and the cores one GPU
needs for both at ~47 clips/s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

import av  # noqa: E402
import decord  # noqa: E402
import numpy as np  # noqa: E402

from jobs.video.reader import open_video  # noqa: E402
from lavida_core.clips import SAMPLE_KEYFRAMES, plan_clips  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--gops", type=float, nargs="+", default=[1.0, 2.0, 8.0], help="seconds between keyframes")
    parser.add_argument("--intervals", type=int, nargs="+", default=[4, 16, 128])
    parser.add_argument("--frames-per-clip", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--archive-minutes", type=float, help="scan one video this long instead (see above)")
    parser.add_argument("--preprocess", action="store_true", help="CPU per clip at the paper preset's sizes instead (see above)")
    return parser.parse_args()


PAPER_CLIPS_PER_GPU_SECOND = 47.0  # 989e12 * 0.4 / 8.4e12


def scan_archive(args: argparse.Namespace) -> None:
    import os
    import shutil
    import subprocess

    from jobs.scan.options import DEFAULT_FRAMES_PER_CLIP, DEFAULT_SAMPLE_INTERVAL

    args.seconds = args.archive_minutes * 60
    with tempfile.TemporaryDirectory(prefix="bench-decode-scan-") as folder:
        archive = Path(folder) / "archive"
        archive.mkdir()
        path = write_camera_video(archive / "camera.mp4", args, round(2 * args.fps))
        clips = plan_clips(int(args.seconds * args.fps), DEFAULT_FRAMES_PER_CLIP, DEFAULT_SAMPLE_INTERVAL)
        rows = []
        from jobs.video.frame_scaling import scaler_for

        for frames, extra, scaler in [("full size", [], None), ("at model size", ["--frames-at-model-size"], scaler_for("tiny"))]:
            decode = best_of(1, new_reader, path, clips, scaler=scaler)
            env = {**os.environ, "RAY_TMPDIR": tempfile.mkdtemp(prefix="bd", dir="/tmp")}
            out = str(Path(folder) / f"out{len(rows)}")
            command = [sys.executable, "-m", "jobs.cli", "scan", str(archive), "--out", out, "--model", "tiny", *extra]
            start = time.perf_counter()
            done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
            scanned = time.perf_counter() - start
            shutil.rmtree(env["RAY_TMPDIR"], ignore_errors=True)
            if done.returncode != 0:
                raise SystemExit(f"lavida scan failed: {done.stderr[-2000:]}")
            rows.append((frames, scanned, decode))
    sampling = f"every {DEFAULT_SAMPLE_INTERVAL}th frame: {len(clips)} clips"
    print(f"{args.width}x{args.height} H.264, {args.archive_minutes:g} min, GOP 2 s, {sampling}")
    print("| frames | lavida scan (s) | decode only, one thread (s) | clips/s per core |")
    print("|---|---:|---:|---:|")
    for frames, scanned, decode in rows:
        print(f"| {frames} | {scanned:.1f} | {decode:.1f} | {len(clips) / decode:.1f} |")


def preprocess(args: argparse.Namespace) -> None:
    """CPU seconds per 8-frame clip at the paper preset's sizes: decode task and detector process."""
    import torch

    from jobs.scan.options import DEFAULT_SAMPLE_INTERVAL
    from jobs.video.frame_scaling import scaler_for
    from lavida_core.config import preset
    from lavida_core.frames import clip_frames, clip_pixels, qwen_frames, qwen_video_patches, sam_frames, sam_images

    torch.set_num_threads(1)
    config = preset("paper")
    mllm = config.mllm
    scaler = scaler_for("paper")

    def towers(clip, sized: bool) -> None:  # what build_inputs does to the pixels (the text side costs the same on both paths)
        qwen_video_patches(
            qwen_frames(clip), patch_size=mllm.patch_size, temporal_patch_size=mllm.temporal_patch_size,
            merge_size=mllm.spatial_merge_size, min_pixels=mllm.min_pixels, max_pixels=mllm.max_pixels, sized=sized,
        )  # fmt: skip
        sam_images(sam_frames(clip), image_size=config.image_encoder.image_size)
        clip_pixels(clip_frames(clip), image_size=config.retrieval.image_size)

    def prepare_all(read: list, *, sized: bool) -> int:
        for clip in read:
            towers(clip, sized)
        return len(read)

    with tempfile.TemporaryDirectory(prefix="bench-preprocess-") as folder:
        path = write_camera_video(Path(folder) / "camera.mp4", args, round(2 * args.fps))
        clips = plan_clips(int(args.seconds * args.fps), args.frames_per_clip, DEFAULT_SAMPLE_INTERVAL)[:8]
        print(f"{args.width}x{args.height} H.264, {len(clips)} clips of {args.frames_per_clip} frames (every {DEFAULT_SAMPLE_INTERVAL}th), "
              f"one thread, best of {args.repeats}; seconds per clip")  # fmt: skip
        print("| frames | bytes per clip | decode task (s) | detector's preprocessing on CPU (s) | both (s) | cores/GPU at 47 clips/s |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, scaler_or_none in [("full size (default)", None), ("at model size", scaler)]:
            decode = best_of(args.repeats, new_reader, path, clips, scaler=scaler_or_none) / len(clips)
            with open_video(str(path), num_threads=1) as video:
                read = [video.read(c, scaler_or_none)[0] for c in clips]
            actor = best_of(args.repeats, prepare_all, read, sized=scaler_or_none is not None) / len(clips)
            total = decode + actor
            size = sum(a.nbytes for a in ([read[0]] if scaler_or_none is None else [read[0].qwen, read[0].sam, read[0].clip]))
            cores = PAPER_CLIPS_PER_GPU_SECOND * total
            print(f"| {name} | {size / 2**20:.1f} MiB | {decode:.3f} | {actor:.3f} | {total:.3f} | {cores:.1f} |")
            sys.stdout.flush()


def write_camera_video(path: Path, args: argparse.Namespace, gop_frames: int) -> Path:
    """A static textured scene with a bright block moving across it and a small changing corner."""
    rng = np.random.default_rng(0)
    height, width = args.height, args.width
    scene = rng.integers(0, 255, (height // 8, width // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)  # [H, W, 3]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(args.fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "28", "g": str(gop_frames), "keyint_min": str(gop_frames), "sc_threshold": "0"}
        block = height // 5
        for t in range(int(args.seconds * args.fps)):
            frame = scene.copy()
            left = (t * 13) % (width - block)
            frame[height // 3 : height // 3 + block, left : left + block] = 255
            frame[: 8 * (t % 100 + 1), :16] = (t * 7) % 255
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def every_frame(path: Path, *, convert: bool) -> int:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type, stream.thread_count = "SLICE", 1  # one thread, as the readers below
        n = 0
        for frame in container.decode(stream):
            if convert:
                frame.to_ndarray(format="rgb24")
            n += 1
    return n


def old_reader(path: Path, clips: list[np.ndarray]) -> int:
    reader = decord.VideoReader(str(path), num_threads=1)
    return sum(len(reader.get_batch(c.tolist()).asnumpy()) for c in clips)


def new_reader(path: Path, clips: list[np.ndarray], scaler=None) -> int:
    with open_video(str(path), num_threads=1) as video:
        return sum(len(video.read(c, scaler)[0]) for c in clips)


def keyframes_only(path: Path, frames_per_clip: int) -> int:
    """`--sample-interval keyframes`: the reader with the decoder skipping all but the keyframes."""
    with open_video(str(path), num_threads=1, keyframes_only=True) as video:
        return sum(len(video.read(c)[0]) for c in video.plan(frames_per_clip, SAMPLE_KEYFRAMES))


def best_of(repeats: int, fn: Callable[..., int], *args, **kwargs) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args, **kwargs)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    args = parse_args()
    if args.archive_minutes:
        scan_archive(args)
        return
    if args.preprocess:
        preprocess(args)
        return
    n_frames = int(args.seconds * args.fps)
    print(f"{args.width}x{args.height} H.264, {args.fps} fps, {args.seconds:g} s ({n_frames} frames), one thread, best of {args.repeats}")
    header = f"{'GOP':>5} {'interval':>8} {'method':<12} {'seconds':>8} {'src fps':>8} {'vs every':>8}"
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory(prefix="bench-decode-") as folder:
        for gop in args.gops:
            gop_frames = max(1, round(gop * args.fps))
            path = write_camera_video(Path(folder) / f"gop{gop_frames}.mp4", args, gop_frames)
            every = best_of(args.repeats, every_frame, path, convert=False)
            rows = [("-", "every frame", every), ("-", "every + rgb", best_of(args.repeats, every_frame, path, convert=True))]
            for interval in args.intervals:
                clips = plan_clips(n_frames, args.frames_per_clip, interval)
                rows.append((str(interval), "old reader", best_of(args.repeats, old_reader, path, clips)))
                rows.append((str(interval), "reader", best_of(args.repeats, new_reader, path, clips)))
            rows.append(("key", "keyframes", best_of(args.repeats, keyframes_only, path, args.frames_per_clip)))
            for interval, method, seconds in rows:
                print(f"{gop:>4g}s {interval:>8} {method:<12} {seconds:8.2f} {n_frames / seconds:8.0f} {seconds / every:7.2f}x")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
