"""Benchmark of `lavida search` (issue 30): search time against the archive's size, and what the
clip embeddings cost the scan.

1. search: `lavida search OUT "…"` in a fresh process over OUTs of 20, 3,000 and 100,000 videos,
   best of 3 (a new description each time: a repeated one re-uses its results, timed apart as
   "again"), and the same with --exhaustive (today's behaviour: LAVIDA on every clip of every
   candidate) over the smallest OUT. The OUTs are written here as a scan writes them, without
   scanning 10^5 files: N hard links to one 64x64, 16-frame H.264 file (distinct uris, so the
   re-scored candidates are real decodes) and Delta tables with, per video, its `videos` row, 4
   `frames`, 1 `clips` row and 1 `embeddings` row (a random unit vector of the tiny model's 32
   dims) at --sample-interval 4 --frames-per-clip 4 with the tiny model.
2. embedding cost: per clip, LavidaDetector.detect_batch against embed_clips on the tiny model (in
   this process, best of 5); a real `lavida scan` with the tiny preset against the same preset
   without its search tower (bench_scan_share); and FLOPs of the paper preset's image tower (ViT-B/32, 8 frames at
   224x224, torch's flop counter) against LAVIDA's ~8.4 TFLOP per 8-frame clip; bytes per clip in
   the `embeddings` table, and what a month of 100 cameras comes to.

    python bench/bench_search.py                             # everything, sizes 20,3000,100000
    python bench/bench_search.py --sizes 20,3000 --skip-cost
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from jobs.out.tables import OutTables  # noqa: E402
from jobs.scan.job import ScanOptions, ScanSummary, profile_of, run_row  # noqa: E402
from jobs.scan.listing import list_videos  # noqa: E402
from schemas.tables import CLIPS_SCHEMA, EMBEDDINGS_SCHEMA, FRAMES_SCHEMA, RUNS_SCHEMA, VIDEOS_SCHEMA  # noqa: E402

INTERVAL, PER_CLIP, N_FRAMES, DIM = 4, 4, 16, 32
LINKS_PER_FILE = 50_000
DESCRIPTIONS = ["a person climbing a fence", "a red car driving fast", "smoke near the gate", "a bag left alone"]
PAPER_TFLOP_PER_CLIP = 8.4  # bench/RESULTS.md: LAVIDA at the paper preset, one 8-frame clip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="20,3000,100000", help="videos per OUT, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", default=None, help="where the archives and OUTs go (default: a temporary folder)")
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--skip-cost", action="store_true")
    return parser.parse_args()


def tiny_video(folder: Path) -> Path:
    from video_factory import write_video

    path = folder / "one.mp4"
    write_video(path, width=64, height=64, n_frames=N_FRAMES)
    return path


def make_out(workdir: Path, original: Path, n: int) -> Path:
    """An archive of `n` hard links to `original` and an OUT holding them as a tiny scan would."""
    archive, out = workdir / f"archive-{n}", workdir / f"out-{n}"
    if out.exists():
        return out
    archive.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        link = archive / f"cam{i // 1000:03d}" / f"clip{i:06d}.mp4"
        link.parent.mkdir(exist_ok=True)
        source = original.with_name(f"{original.stem}-{i // LINKS_PER_FILE}.mp4")  # a file takes ~65,000 links at most
        if not source.exists():
            shutil.copy2(original, source)
        if not link.exists():
            os.link(source, link)
    videos = list_videos(str(archive))
    options = ScanOptions(source=str(archive), out=str(out), sample_interval=INTERVAL, frames_per_clip=PER_CLIP, anomaly_types=("fire",))
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]
    started, today = datetime.now(UTC), date.today()
    summary = ScanSummary(run_id=run_id, n_ok=n, n_failed=0, n_skipped=0)
    rng = np.random.default_rng(n)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids, uris = [v.video_id for v in videos], [v.uri for v in videos]
    samples = np.arange(0, N_FRAMES, INTERVAL)  # [4]
    timestamps = samples / 25.0
    tables = OutTables(str(out))
    run = {**run_row(options, run_id, started, card=None, summary=summary, model_trained=False), "updated_at": datetime.now(UTC)}
    tables.append("runs", pa.Table.from_pylist([run], schema=RUNS_SCHEMA), run_id)
    k = len(samples)
    tables.append(
        "frames",
        pa.table(
            {
                "video_id": np.repeat(ids, k), "uri": np.repeat(uris, k), "clip_index": np.zeros(n * k, np.int64),
                "frame_index": np.tile(samples, n), "timestamp_s": np.tile(timestamps, n),
                "score": rng.random(n * k).astype(np.float32), "mask_rle": pa.array([None] * (n * k), FRAMES_SCHEMA.field("mask_rle").type),
                "run_id": [run_id] * (n * k), "scan_date": [today] * (n * k),
            },
            schema=FRAMES_SCHEMA,
        ),
        run_id,
    )  # fmt: skip
    common = {"video_id": ids, "uri": uris, "clip_index": np.zeros(n, np.int64), "run_id": [run_id] * n, "scan_date": [today] * n}
    tables.append(
        "clips",
        pa.table({**common, "frame_indices": [samples.tolist()] * n, "start_s": [timestamps[0]] * n, "end_s": [timestamps[-1]] * n,
                  "max_score": rng.random(n).astype(np.float32), "anomaly_types": [["fire"]] * n}, schema=CLIPS_SCHEMA),
        run_id,
    )  # fmt: skip
    tables.append(
        "embeddings",
        pa.table({**common, "first_frame": [int(samples[0])] * n, "last_frame": [int(samples[-1])] * n, "start_s": [timestamps[0]] * n,
                  "end_s": [timestamps[-1]] * n, "embedding": list(vectors), "dim": [DIM] * n, "embedding_model": ["tiny"] * n},
                 schema=EMBEDDINGS_SCHEMA),
        run_id,
    )  # fmt: skip
    profile = profile_of(options).profile_id
    rows = [
        {"video_id": v.video_id, "uri": v.uri, "status": "ok", "error": None, "n_frames": N_FRAMES, "fps": 25.0,
         "duration_s": N_FRAMES / 25,
         "width": 64, "height": 64, "run_id": run_id, "size_bytes": v.size_bytes, "version_tag": v.version_tag,
         "n_sampled_frames": k, "n_clips": 1, "committed_at": datetime.now(UTC), "run_ids": [run_id], "profile_id": profile,
         "scan_date": today}
        for v in videos
    ]  # fmt: skip
    tables.append("videos", pa.Table.from_pylist(rows, schema=VIDEOS_SCHEMA), run_id)
    return out


def timed_cli(*arguments: str) -> float:
    """Seconds `lavida ARGUMENTS` takes in a fresh process with its own Ray folder; exits on a failure."""
    env = {**os.environ, "RAY_TMPDIR": tempfile.mkdtemp(prefix="bs", dir="/tmp")}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "jobs.cli", *arguments], cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    shutil.rmtree(env["RAY_TMPDIR"], ignore_errors=True)
    if done.returncode != 0:
        raise SystemExit(f"lavida {arguments[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed


def timed_search(out: Path, description: str, *extra: str) -> float:
    return timed_cli("search", str(out), description, "--format", "csv", *extra)


def bench_search(workdir: Path, sizes: list[int], repeats: int) -> None:
    original = tiny_video(workdir)
    print(f"\n| videos in OUT | search (s), best of {repeats} | again, same description (s) | --exhaustive (s) |")
    print("|---:|---:|---:|---:|")
    baseline = None
    for n in sizes:
        started = time.perf_counter()
        out = make_out(workdir, original, n)
        made = time.perf_counter() - started
        token = uuid.uuid4().hex[:6]  # descriptions new to this OUT, also when it is kept in --workdir from an earlier run
        times = [timed_search(out, f"{DESCRIPTIONS[i % len(DESCRIPTIONS)]} #{token}-{i}") for i in range(repeats)]
        again = timed_search(out, f"{DESCRIPTIONS[0]} #{token}-0")
        exhaustive = (
            f"{min(timed_search(out, f'{DESCRIPTIONS[i]} #x{token}-{i}', '--exhaustive') for i in range(repeats)):.1f}" if n <= 20 else "-"
        )
        baseline = baseline or min(times)
        print(f"| {n:,} | {min(times):.1f} ({min(times) / baseline:.2f}x) | {again:.1f} | {exhaustive} |  (OUT written in {made:.0f} s)")


def bench_cost() -> None:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from lavida_core.config import RetrievalConfig
    from lavida_core.detector import LavidaDetector
    from lavida_core.modeling.clip_retrieval import ClipRetrieval

    detector = LavidaDetector.load("tiny")
    clips = [np.random.default_rng(i).integers(0, 256, (8, 240, 320, 3), dtype=np.uint8) for i in range(4)]
    detect = min(_timed(lambda: detector.detect_batch(clips, ["fire"])) for _ in range(5)) / len(clips)
    embed = min(_timed(lambda: detector.embed_clips(clips)) for _ in range(5)) / len(clips)
    print("\n| tiny model, per 8-frame 320x240 clip | ms |\n|---|---:|")
    print(f"| LAVIDA detect_batch | {detect * 1e3:.1f} |\n| embed_clips (CLIP image tower) | {embed * 1e3:.1f} ({embed / detect:.1%}) |")
    tower = ClipRetrieval(RetrievalConfig(), text_dim=512).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        tower.embed_images(torch.zeros(8, 3, 224, 224))
    tflop = counter.get_total_flops() / 1e12
    print(f"\npaper preset: image tower {tflop * 1e3:.1f} GFLOP per 8-frame clip = {tflop / PAPER_TFLOP_PER_CLIP:.2%} of LAVIDA's")
    print(f"  ~{PAPER_TFLOP_PER_CLIP} TFLOP per clip")


def bench_scan_share(workdir: Path, n_videos: int = 12, repeats: int = 2) -> None:
    """`lavida scan` of the same archive (320x240, 96 frames a video, the scan's defaults but
    --sample-interval 4) with the tiny preset and with the tiny preset without its search tower,
    fresh OUTs, fresh processes, best of `repeats`: what the embeddings cost a real scan (decode,
    detect, writes)."""
    from video_factory import write_video

    from lavida_core.checkpoint import build_lavida, save_lavida
    from lavida_core.config import preset

    archive = workdir / "share-archive"
    archive.mkdir(parents=True, exist_ok=True)
    for i in range(n_videos):
        if not (archive / f"v{i:02d}.mp4").exists():
            write_video(archive / f"v{i:02d}.mp4", width=320, height=240, n_frames=96)
    no_tower = workdir / "tiny-no-tower"
    if not (no_tower / "lavida.json").exists():
        save_lavida(build_lavida(preset("tiny").replace(retrieval=None), seed=0), no_tower)
    seconds = {}
    for label, model in (("tiny (with the search tower)", "tiny"), ("tiny without it", str(no_tower))):
        runs = []
        for _ in range(repeats):
            out = workdir / f"share-out-{uuid.uuid4().hex[:6]}"
            runs.append(timed_cli("scan", str(archive), "--out", str(out), "--model", model, "--sample-interval", "4"))
            shutil.rmtree(out, ignore_errors=True)
        seconds[label] = min(runs)
    (with_tower, without) = seconds.values()
    print(f"\n| lavida scan, {n_videos} videos of 96 frames at 320x240, --sample-interval 4, best of {repeats} | s |\n|---|---:|")
    for label, value in seconds.items():
        print(f"| {label} | {value:.1f} |")
    print(f"| the embeddings' share of the scan | {(with_tower - without) / without:+.1%} |")


def bytes_per_clip(out: Path) -> None:
    rows = OutTables(str(out)).table("embeddings").to_pyarrow_dataset().count_rows()
    size = sum(f.stat().st_size for f in (Path(out) / "embeddings").rglob("*.parquet"))
    per_clip_512 = size / rows * 512 / DIM  # the vector dominates; scaled to ViT-B/32's 512 dims
    clips = 100 * 30 * 24 * 3600 * 30 / (16 * 8)  # 100 cameras, 30 days, 30 fps, every 16th frame, 8 per clip
    print(f"\nembeddings table: {size / rows:.0f} bytes per clip at {DIM} dims; ~{per_clip_512:.0f} at 512 dims (paper)")
    print(f"a month of 100 cameras at the scan defaults: {clips / 1e6:.1f} M clips, ~{clips * per_clip_512 / 1e9:.0f} GB of embeddings")


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    args = parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-search-"))
    workdir.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"machine: {os.cpu_count()} CPUs; workdir {workdir}")
    if not args.skip_search:
        bench_search(workdir, sizes, args.repeats)
        bytes_per_clip(workdir / f"out-{max(sizes)}")
    if not args.skip_cost:
        bench_cost()
        bench_scan_share(workdir)


if __name__ == "__main__":
    main()
