"""Benchmark: the `events` macro over synthetic frames tables of 1 M to 10 M rows.

Writes one synthetic OUT per size (scan layout: one Parquet file per video, 10 000 sampled frames a
video, so 1 M rows = 100 videos and 10 M rows = 1 000 videos), then, for each size, in a fresh child
process: opens the views (jobs/duck.py) and fetches all events with the default thresholds. Prints
wall time of the events query (best and median of --repeat runs) and its CPU time (user + system,
all DuckDB threads; less sensitive than wall time to other load on the machine), of a plain scan of
the frames view for reference, and the child's peak RSS (ru_maxrss), with its RSS before the queries.

    python bench/bench_events.py --sizes 1000000 2000000 5000000 10000000 --work /tmp/lavida-bench-events
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from schemas.tables import SCHEMA_VERSION, SCHEMAS  # noqa: E402

log = logging.getLogger("bench_events")

SAMPLES_PER_VIDEO = 10_000
FPS, STEP = 30.0, 16  # the scan's defaults: one sample every 16 frames at 30 fps
EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
MASK = {"size": [720, 1280], "counts": "fVo=5Z;2N1O1N2O0O2N1O100O1O1N2N3L`Ub3"}  # a typical small RLE


def synthetic_scores(rng: np.random.Generator, n: int) -> np.ndarray:
    """Background scores around 0.2 with anomalous episodes (about one per 500 samples)."""
    scores = rng.beta(2.0, 8.0, size=n)  # [n]
    starts = np.flatnonzero(rng.random(n) < 1 / 500)
    for start in starts:
        length = int(rng.integers(1, 40))
        scores[start : start + length] = rng.uniform(0.55, 1.0, size=len(scores[start : start + length]))
    return scores.astype(np.float32)


def frames_of_video(rng: np.random.Generator, video_id: str) -> pa.Table:
    n = SAMPLES_PER_VIDEO
    scores = synthetic_scores(rng, n)
    frame_index = np.arange(n, dtype=np.int64) * STEP
    masks = pa.array([MASK if s >= 0.5 else None for s in scores], type=SCHEMAS["frames"].field("mask_rle").type)
    uri = f"s3://archive/cam/{video_id}.mp4"
    return pa.table(
        {
            "video_id": pa.array([video_id] * n),
            "uri": pa.array([uri] * n),
            "clip_index": frame_index // (STEP * 8),
            "frame_index": frame_index,
            "timestamp_s": frame_index / FPS,
            "score": scores,
            "mask_rle": masks,
            "run_id": pa.array(["bench"] * n),
        },
        schema=SCHEMAS["frames"],
    )


def video_row(video_id: str) -> dict:
    n_frames = SAMPLES_PER_VIDEO * STEP
    return {
        "video_id": video_id,
        "uri": f"s3://archive/cam/{video_id}.mp4",
        "status": "ok",
        "error": None,
        "n_frames": n_frames,
        "fps": FPS,
        "duration_s": n_frames / FPS,
        "width": 1280,
        "height": 720,
        "run_id": "bench",
        "size_bytes": 1,
        "version_tag": "1",
        "n_sampled_frames": SAMPLES_PER_VIDEO,
        "n_clips": SAMPLES_PER_VIDEO // 8,
        "committed_at": EPOCH,
    }


def write_archive(out: Path, n_videos: int) -> None:
    """OUT with n_videos committed videos (idempotent: reuses files already written)."""
    for table in ("frames", "videos", "runs"):
        (out / table).mkdir(parents=True, exist_ok=True)
    for i in range(n_videos):
        video_id = f"v{i:05d}"
        frames_path = out / "frames" / f"{video_id}.parquet"
        if not frames_path.exists():
            pq.write_table(frames_of_video(np.random.default_rng(i), video_id), frames_path)
            pq.write_table(pa.Table.from_pylist([video_row(video_id)], schema=SCHEMAS["videos"]), out / "videos" / f"{video_id}.parquet")
    run = {
        "run_id": "bench",
        "kind": "scan",
        "source": "s3://archive/cam",
        "out": str(out),
        "model": "tiny",
        "model_trained": False,
        "anomaly_types": ["fighting"],
        "sample_interval": STEP,
        "frames_per_clip": 8,
        "device": "cpu",
        "started_at": EPOCH,
        "finished_at": None,
        "n_ok": n_videos,
        "n_failed": 0,
        "n_skipped": 0,
        "description": None,
        "schema_version": SCHEMA_VERSION,
    }
    pq.write_table(pa.Table.from_pylist([run], schema=SCHEMAS["runs"]), out / "runs" / "bench.parquet")


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(out: str, repeat: int) -> dict:
    """In this process: time the frames scan and the events query over OUT (best of `repeat`), and the peak RSS."""
    from jobs import duck
    from jobs.events import fetch_events
    from schemas.views import EVENT_COLUMNS

    con = duck.connect(out)
    rss_before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    scan_s, events_s, events_cpu_s = [], [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        _, [(n_rows,)] = duck.fetch(con, "SELECT count(*) FROM frames")
        t1, cpu1 = time.perf_counter(), _cpu_s()
        _, rows = fetch_events(con, columns=EVENT_COLUMNS)
        t2, cpu2 = time.perf_counter(), _cpu_s()
        scan_s.append(t1 - t0)
        events_s.append(t2 - t1)
        events_cpu_s.append(cpu2 - cpu1)
    return {
        "rows": n_rows,
        "events": len(rows),
        "scan_s": min(scan_s),
        "events_s": min(events_s),
        "events_median_s": sorted(events_s)[len(events_s) // 2],
        "events_cpu_s": min(events_cpu_s),
        "rss_before_mb": rss_before_mb,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 2_000_000, 5_000_000, 10_000_000])
    parser.add_argument("--work", default="/tmp/lavida-bench-events", help="where the synthetic OUTs are written")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each query; the best is reported (default 3)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: measure this OUT, print JSON
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.repeat)))
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    results = []
    for size in args.sizes:
        out = Path(args.work) / f"out-{size}"
        t0 = time.perf_counter()
        write_archive(out, size // SAMPLES_PER_VIDEO)
        log.info("OUT with %d rows ready in %.1f s", size, time.perf_counter() - t0)
        child = subprocess.run(
            [sys.executable, __file__, "--measure", str(out), "--repeat", str(args.repeat)],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        results.append(json.loads(child.stdout.strip().splitlines()[-1]))
    print_table(results)


def print_table(results: list[dict]) -> None:
    base = results[0]
    print(
        f"{'rows':>11} {'events':>7} {'frames scan s':>14} {'events s':>9} {'median s':>9} {'CPU s':>7} "
        f"{'x vs first':>10} {'rows/s (M)':>10} {'RSS before MB':>14} {'peak RSS MB':>12}"
    )
    for r in results:
        print(
            f"{r['rows']:>11,} {r['events']:>7} {r['scan_s']:>14.2f} {r['events_s']:>9.2f} {r['events_median_s']:>9.2f} "
            f"{r['events_cpu_s']:>7.2f} {r['events_s'] / base['events_s']:>10.2f} "
            f"{r['rows'] / r['events_s'] / 1e6:>10.2f} {r['rss_before_mb']:>14.0f} {r['peak_rss_mb']:>12.0f}"
        )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (on {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
