"""Benchmark: query cost over OUT as the number of videos grows, old layout (Parquet per video) vs new (Delta tables).

For each size (a fixed total of `frames` rows, default 1 M, spread over 10 .. 100 000 videos, plus one
OUT of 10 M rows over 10 000 videos) two synthetic OUTs are written with the same scores:

- old: lavida's schema version 2 (git commit 856e916): OUT/frames/<video_id>.parquet,
  OUT/videos/<video_id>.parquet, OUT/runs/<run_id>.parquet (no clips: nothing below reads them);
- new: this working tree's Delta tables, written the way nightly scans write them: one run a night
  (--nights), its videos committed in batches of --batch-videos (frames, events made by
  jobs.scan.write.default_events, videos; clips skipped), the run's first and last `runs` rows, and
  jobs.out.compact.compact at the end of every night.

Then, through the real CLI in a fresh subprocess each time (`python -m jobs.cli`, with the code of
856e916 from a git worktree for the old layout), the best wall time of --repeat runs of:

    lavida events OUT --format csv                         (the default thresholds)
    lavida query OUT "SELECT count(*) FROM frames"
    lavida events OUT --min-score 0.6 --format csv         (new only: computed by the events macro)
    lavida query OUT "SELECT count(*), avg(score) FROM frames WHERE scan_date = DATE '<last night>'"   (new only)
    lavida query OUT "SELECT count(*), avg(score) FROM frames"                                         (new only)

Every run must exit 0; the events are counted from the CSV, and count(*) must equal the rows written
in both layouts. Prints a Markdown table and the ratios (events over ~5 000 videos vs 10 videos;
events over 10 M rows) and writes the results as JSON (--json, default WORK/results.json). Generated
OUTs are cached under --work, keyed by (layout, rows, videos, nights, batch).

    python bench/bench_query_scale.py --total-rows 1000000 --videos 10 1000 5000 10000 100000 \
        --big-rows 10000000 --big-videos 10000 --nights 30 --batch-videos 1000 --repeat 3 --work /tmp/lavida-bench-query-scale
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import hashlib
import json
import logging
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from schemas.tables import EVENTS_SCHEMA, FRAMES_SCHEMA, MASK_RLE_TYPE, RUNS_SCHEMA, SCHEMA_VERSION, VIDEOS_SCHEMA  # noqa: E402

log = logging.getLogger("bench_query_scale")

OLD_COMMIT = "856e916"
OLD_ROOT = Path(f"/tmp/lavida-old-{OLD_COMMIT}")
SEED = 20260101
FPS, STEP, FRAMES_PER_CLIP = 30.0, 16, 8  # the scan's defaults: one sample every 16 frames at 30 fps, 8 samples a clip
FIRST_NIGHT = dt.date(2026, 10, 1)  # night k is FIRST_NIGHT + k days (in the past: compaction's grace has passed)
MASK = {"size": [720, 1280], "counts": "fVo=5Z;2N1O1N2O0O2N1O100O1O1N2N3L`Ub3"}  # a typical small RLE
ANOMALY_TYPES = ["fighting", "falling"]
MODEL = "tiny"

# Schema version 2 (git show 856e916:schemas/tables.py): the same fields as today's, less the ones
# version 3 added (frames.scan_date; videos.run_ids, profile_id, scan_date; runs.profile_id, updated_at).
OLD_COLUMNS = {
    "frames": ("video_id", "uri", "clip_index", "frame_index", "timestamp_s", "score", "mask_rle", "run_id"),
    "videos": (
        "video_id", "uri", "status", "error", "n_frames", "fps", "duration_s", "width", "height", "run_id",
        "size_bytes", "version_tag", "n_sampled_frames", "n_clips", "committed_at",
    ),
    "runs": (
        "run_id", "kind", "source", "out", "model", "model_trained", "anomaly_types", "sample_interval", "frames_per_clip",
        "device", "started_at", "finished_at", "n_ok", "n_failed", "n_skipped", "description", "schema_version", "model_card",
    ),
}  # fmt: skip
NEW_SCHEMAS = {"frames": FRAMES_SCHEMA, "videos": VIDEOS_SCHEMA, "runs": RUNS_SCHEMA}
OLD_SCHEMAS = {
    table: pa.schema([NEW_SCHEMAS[table].field(name) for name in names], metadata={"lavida_table": table, "lavida_schema_version": "2"})
    for table, names in OLD_COLUMNS.items()
}


# --- synthetic rows (identical in both layouts) ----------------------------------------------------


def synthetic_scores(rng: np.random.Generator, n: int) -> np.ndarray:
    """Background scores around 0.2 with anomalous episodes (about one per 500 samples), as bench_events.py."""
    scores = rng.beta(2.0, 8.0, size=n)  # [n]
    for start in np.flatnonzero(rng.random(n) < 1 / 500):
        length = int(rng.integers(1, 40))
        scores[start : start + length] = rng.uniform(0.55, 1.0, size=len(scores[start : start + length]))
    return scores.astype(np.float32)


def video_id_of(i: int) -> str:
    return hashlib.sha1(f"bench-video-{i}".encode()).hexdigest()[:20]


def uri_of(i: int) -> str:
    return f"s3://archive/cam{i % 97:02d}/{i:07d}.mp4"


def rows_per_video(total: int, videos: int) -> np.ndarray:
    """`total` rows over `videos` videos, as evenly as can be (sums to total exactly)."""
    counts = np.full(videos, total // videos, dtype=np.int64)
    counts[: total % videos] += 1
    return counts


def nights_of(videos: int, nights: int) -> np.ndarray:
    """The night (0..nights-1) each video is scanned in: consecutive videos, about as many each night."""
    return (np.arange(videos, dtype=np.int64) * nights) // videos


def night_date(night: int) -> dt.date:
    return FIRST_NIGHT + dt.timedelta(days=int(night))


def run_id_of(night: int) -> str:
    return f"{night_date(night):%Y%m%d}T220000Z-{hashlib.sha1(f'bench-run-{night}'.encode()).hexdigest()[:8]}"


def committed_at(night: int, i: int) -> dt.datetime:
    start = dt.datetime.combine(night_date(night), dt.time(22), tzinfo=dt.UTC)
    return start + dt.timedelta(milliseconds=int(i % 1_000_000) * 10)


def mask_column(hot: np.ndarray) -> pa.Array:
    """MASK on the hot frames (score >= 0.5), null elsewhere, built column-wise."""
    n = len(hot)
    sizes = pa.ListArray.from_arrays(
        pa.array(np.arange(0, 2 * n + 1, 2, dtype=np.int32)), pa.array(np.tile(np.array(MASK["size"], dtype=np.int32), n))
    )
    counts = pa.array(np.full(n, MASK["counts"], dtype=object), pa.string())
    return pa.StructArray.from_arrays([sizes, counts], fields=list(MASK_RLE_TYPE), mask=pa.array(~hot))


def frames_of(indices: np.ndarray, counts: np.ndarray, run_ids: list[str], schema: pa.Schema, scan_dates: list[dt.date] | None) -> pa.Table:
    """The frames rows of videos `indices` (counts[k] sampled frames for video indices[k]), in video order."""
    scores = np.concatenate([synthetic_scores(np.random.default_rng([SEED, int(i)]), int(c)) for i, c in zip(indices, counts)])
    owner = np.repeat(np.arange(len(indices)), counts)  # [rows] -> position in `indices`
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    frame_index = (np.arange(len(scores), dtype=np.int64) - np.repeat(starts, counts)) * STEP
    take = pa.array(owner)
    columns = {
        "video_id": pa.array([video_id_of(int(i)) for i in indices], pa.string()).take(take),
        "uri": pa.array([uri_of(int(i)) for i in indices], pa.string()).take(take),
        "clip_index": frame_index // (STEP * FRAMES_PER_CLIP),
        "frame_index": frame_index,
        "timestamp_s": frame_index / FPS,
        "score": scores,
        "mask_rle": mask_column(scores >= 0.5),
        "run_id": pa.array(run_ids, pa.string()).take(take),
    }
    if scan_dates is not None:
        columns["scan_date"] = pa.array(scan_dates, pa.date32()).take(take)
    return pa.table(columns, schema=schema)


def video_row(i: int, n_samples: int, night: int, *, new: bool) -> dict:
    n_frames = n_samples * STEP
    row = {
        "video_id": video_id_of(i),
        "uri": uri_of(i),
        "status": "ok",
        "error": None,
        "n_frames": n_frames,
        "fps": FPS,
        "duration_s": n_frames / FPS,
        "width": 1280,
        "height": 720,
        "run_id": run_id_of(night),
        "size_bytes": 1_000_000 + i,
        "version_tag": "1",
        "n_sampled_frames": n_samples,
        "n_clips": -(-n_samples // FRAMES_PER_CLIP),
        "committed_at": committed_at(night, i),
    }
    if new:
        row.update(run_ids=[run_id_of(night)], profile_id=profile_id(), scan_date=night_date(night))
    return row


@functools.cache
def profile_id() -> str:
    from jobs.out.profile import ScanProfile

    return ScanProfile(MODEL, tuple(ANOMALY_TYPES), STEP, FRAMES_PER_CLIP).profile_id


def run_row(night: int, out: Path, n_ok: int | None, *, new: bool) -> dict:
    started = dt.datetime.combine(night_date(night), dt.time(22), tzinfo=dt.UTC)
    finished = started + dt.timedelta(hours=6) if n_ok is not None else None
    row = {
        "run_id": run_id_of(night),
        "kind": "scan",
        "source": "s3://archive",
        "out": str(out),
        "model": MODEL,
        "model_trained": True if n_ok is not None else None,
        "anomaly_types": ANOMALY_TYPES,
        "sample_interval": STEP,
        "frames_per_clip": FRAMES_PER_CLIP,
        "device": "cuda",
        "started_at": started,
        "finished_at": finished,
        "n_ok": n_ok,
        "n_failed": 0 if n_ok is not None else None,
        "n_skipped": 0 if n_ok is not None else None,
        "description": None,
        "schema_version": SCHEMA_VERSION if new else 2,
        "model_card": "bench: synthetic scores",
    }
    if new:
        row.update(profile_id=profile_id(), updated_at=finished or started)
    return row


# --- the OUTs --------------------------------------------------------------------------------------


def _write_old_chunk(task: tuple[str, int, int, int, int, int]) -> int:
    """Worker: the per-video frames and videos files of videos start..stop-1 of an old-layout OUT."""
    out, total, videos, nights, start, stop = task
    counts = rows_per_video(total, videos)[start:stop]
    night = nights_of(videos, nights)[start:stop]
    indices = np.arange(start, stop)
    frames = frames_of(indices, counts, [run_id_of(int(k)) for k in night], OLD_SCHEMAS["frames"], None)
    offset = 0
    for i, c, k in zip(indices, counts, night):
        video_id = video_id_of(int(i))
        pq.write_table(frames.slice(offset, int(c)), f"{out}/frames/{video_id}.parquet", compression="zstd")
        row = video_row(int(i), int(c), int(k), new=False)
        pq.write_table(pa.Table.from_pylist([row], schema=OLD_SCHEMAS["videos"]), f"{out}/videos/{video_id}.parquet", compression="zstd")
        offset += int(c)
    return stop - start


def write_old(out: Path, total: int, videos: int, nights: int, workers: int) -> None:
    for table in ("frames", "videos", "runs"):
        (out / table).mkdir(parents=True, exist_ok=True)
    chunk = max(1, min(500, videos // (4 * workers) or 1))
    tasks = [(str(out), total, videos, nights, start, min(videos, start + chunk)) for start in range(0, videos, chunk)]
    done, last_log = 0, time.monotonic()
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for n in pool.imap_unordered(_write_old_chunk, tasks):
            done += n
            if time.monotonic() - last_log > 10 or done == videos:
                log.info("  old layout: %d / %d videos written", done, videos)
                last_log = time.monotonic()
    night = nights_of(videos, nights)
    for k in sorted(set(night.tolist())):
        row = run_row(k, out, int((night == k).sum()), new=False)
        pq.write_table(
            pa.Table.from_pylist([row], schema=OLD_SCHEMAS["runs"]), out / "runs" / f"{row['run_id']}.parquet", compression="zstd"
        )


def write_new(out: Path, total: int, videos: int, nights: int, batch_videos: int) -> None:
    """Nightly runs into Delta tables, committed in batches and compacted at each night's end, as the scan does."""
    from jobs.out.compact import DEFAULT_RETENTION_HOURS, compact
    from jobs.out.tables import OutTables
    from jobs.scan.write import default_events

    out.mkdir(parents=True, exist_ok=True)
    tables = OutTables(str(out))
    counts, night = rows_per_video(total, videos), nights_of(videos, nights)
    n_events = 0
    for k in sorted(set(night.tolist())):
        t0 = time.perf_counter()
        run_id = run_id_of(k)
        first = pa.Table.from_pylist([run_row(k, out, None, new=True)], schema=RUNS_SCHEMA)
        tables.append("runs", first, run_id)
        members = np.flatnonzero(night == k)
        for start in range(0, len(members), batch_videos):
            batch = members[start : start + batch_videos]
            frames = frames_of(batch, counts[batch], [run_id] * len(batch), FRAMES_SCHEMA, [night_date(k)] * len(batch))
            rows = pa.Table.from_pylist([video_row(int(i), int(counts[i]), k, new=True) for i in batch], schema=VIDEOS_SCHEMA)
            events = default_events(frames, rows, first)
            assert events.schema.equals(EVENTS_SCHEMA, check_metadata=False)
            n_events += events.num_rows
            tables.append("frames", frames, run_id)
            tables.append("events", events, run_id)
            tables.append("videos", rows, run_id)
        tables.append("runs", pa.Table.from_pylist([run_row(k, out, len(members), new=True)], schema=RUNS_SCHEMA), run_id)
        compact(tables, live=set(), retention_hours=DEFAULT_RETENTION_HOURS)
        log.info(
            "  new layout: night %s, %d videos committed and compacted in %.1f s", night_date(k), len(members), time.perf_counter() - t0
        )
    log.info("  new layout: %d events materialised", n_events)


def ensure_out(work: Path, layout: str, total: int, videos: int, args: argparse.Namespace) -> Path:
    """The OUT of (layout, total, videos), written unless a complete one is cached under `work`."""
    nights = min(args.nights, videos)
    key = f"{layout}-rows{total}-videos{videos}-nights{nights}" + (f"-batch{args.batch_videos}" if layout == "new" else "")
    out, done = work / key, work / f"{key}.done"
    if done.exists() and out.exists():
        return out
    if out.exists():
        shutil.rmtree(out)
    log.info("writing %s (%d rows over %d videos, %d nights)", out, total, videos, nights)
    t0 = time.perf_counter()
    if layout == "old":
        write_old(out, total, videos, nights, args.workers)
    else:
        write_new(out, total, videos, nights, args.batch_videos)
    done.write_text(json.dumps({"seconds": time.perf_counter() - t0}))
    log.info("%s written in %.1f s", out, time.perf_counter() - t0)
    return out


def ensure_old_root(root: Path) -> Path:
    if not (root / "jobs" / "cli.py").exists():
        log.info("creating a git worktree of %s at %s", OLD_COMMIT, root)
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(root), OLD_COMMIT], check=True)
    return root


# --- timing ----------------------------------------------------------------------------------------


LIMITS = {"seconds": 300.0, "memory_gb": 12.0}  # per CLI run (--timeout, --memory-gb): a run past them is "did not finish"


class DidNotFinish(RuntimeError):
    """A CLI run past LIMITS (killed at the time limit, or out of memory under the address-space cap)."""


def _cap_memory() -> None:
    limit = int(LIMITS["memory_gb"] * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def run_cli(root: Path, argv: list[str]) -> tuple[float, str]:
    """`lavida ARGV` with the code under `root`, in a fresh process: (wall seconds, stdout); raises when it fails."""
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONWARNINGS": "ignore"}
    t0 = time.perf_counter()
    try:
        child = subprocess.run(
            [sys.executable, "-m", "jobs.cli", *argv], cwd=root, env=env, capture_output=True, text=True,
            timeout=LIMITS["seconds"], preexec_fn=_cap_memory,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise DidNotFinish(f"> {LIMITS['seconds']:.0f} s (killed)") from None
    seconds = time.perf_counter() - t0
    if child.returncode != 0:
        if "memory" in child.stderr.lower():
            raise DidNotFinish(f"out of memory (> {LIMITS['memory_gb']:.0f} GB) after {seconds:.0f} s")
        raise RuntimeError(f"lavida {' '.join(argv)} (in {root}) exited {child.returncode}: {child.stderr.strip()[-2000:]}")
    return seconds, child.stdout


def csv_rows(stdout: str) -> int:
    """Rows of a CSV answer (the header line not counted)."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    return max(0, len(lines) - 1)


def first_int(stdout: str) -> int:
    """The first value of a one-row CSV answer (a count)."""
    return int(stdout.strip().splitlines()[1].split(",")[0])


def best(root: Path, argv: list[str], repeat: int, check) -> tuple[float, object]:
    """Best wall time of `repeat` runs; `check(stdout)` gives the answer, which must be the same every run."""
    times, answers = [], set()
    for _ in range(repeat):
        seconds, stdout = run_cli(root, argv)
        times.append(seconds)
        answers.add(check(stdout))
    if len(answers) != 1:
        raise RuntimeError(f"lavida {' '.join(argv)}: different answers across runs: {answers}")
    return min(times), answers.pop()


def measure(root: Path, out: Path, layout: str, total: int, videos: int, nights: int, repeat: int) -> dict:
    result: dict = {"rows": total, "videos": videos, "layout": layout, "out": str(out)}
    try:
        return _measure(result, root, out, layout, total, videos, nights, repeat)
    except DidNotFinish as failure:
        result["did_not_finish"] = str(failure)
        log.warning("%s layout, %d videos: %s", layout, videos, failure)
        return result


def _measure(result: dict, root: Path, out: Path, layout: str, total: int, videos: int, nights: int, repeat: int) -> dict:
    n = best(root, ["query", str(out), "SELECT count(*) FROM frames", "--format", "csv"], 1, first_int)[1]
    if n != total:
        raise RuntimeError(f"{out}: count(*) FROM frames = {n}, {total} rows were written")
    result["events_s"], result["events"] = best(root, ["events", str(out), "--format", "csv"], repeat, csv_rows)
    result["count_s"], _ = best(root, ["query", str(out), "SELECT count(*) FROM frames", "--format", "csv"], repeat, lambda s: s)
    if layout == "new":
        result["events_06_s"], result["events_06"] = best(
            root, ["events", str(out), "--min-score", "0.6", "--format", "csv"], repeat, csv_rows
        )
        last = night_date(int(nights_of(videos, nights)[-1]))
        night_sql = f"SELECT count(*), avg(score) FROM frames WHERE scan_date = DATE '{last.isoformat()}'"
        result["night_s"], night_rows = best(root, ["query", str(out), night_sql, "--format", "csv"], repeat, first_int)
        result["night_rows"], result["night"] = night_rows, last.isoformat()
        whole_sql = "SELECT count(*), avg(score) FROM frames"
        result["whole_s"], whole_rows = best(root, ["query", str(out), whole_sql, "--format", "csv"], repeat, first_int)
        if whole_rows != total:
            raise RuntimeError(f"{out}: {whole_sql} counted {whole_rows} rows, {total} were written")
        expected_night = int(rows_per_video(total, videos)[nights_of(videos, nights) == nights_of(videos, nights)[-1]].sum())
        if night_rows != expected_night:
            raise RuntimeError(f"{out}: night {last} has {night_rows} frames rows, {expected_night} were written")
    log.info("%s", result)
    return result


# --- report ----------------------------------------------------------------------------------------


def _s(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def report(results: list[dict], sizes: list[int], total: int, big: tuple[int, int] | None) -> str:
    lines = [
        "| rows | videos | layout | events s | count(*) s | events --min-score 0.6 s | one night s | whole archive s "
        "| events | events (0.6) | night rows |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if "did_not_finish" in r:
            lines.append(
                f"| {r['rows']:,} | {r['videos']:,} | {r['layout']} | did not finish: {r['did_not_finish']} |  |  |  |  |  |  |  |"
            )
            continue
        lines.append(
            f"| {r['rows']:,} | {r['videos']:,} | {r['layout']} | {_s(r['events_s'])} | {_s(r['count_s'])} | {_s(r.get('events_06_s'))} "
            f"| {_s(r.get('night_s'))} | {_s(r.get('whole_s'))} | {r['events']:,} | {r.get('events_06', '')} | {r.get('night_rows', '')} |"
        )
    by = {(r["rows"], r["videos"], r["layout"]): r for r in results if "did_not_finish" not in r}
    lines += [
        "",
        f"Events (default thresholds) over {total:,} rows, relative to {sizes[0]:,} videos (target: new within 2x at ~5,000 videos):",
    ]
    for layout in ("old", "new"):
        base = by.get((total, sizes[0], layout))
        if base is None:
            continue
        ratios = [
            f"{v:,} videos {by[(total, v, layout)]['events_s'] / base['events_s']:.2f}x" for v in sizes[1:] if (total, v, layout) in by
        ]
        below = [v for v in sizes if v <= 5000]
        above = [v for v in sizes if v >= 5000]
        bracket = ""
        if below and above and (total, max(below), layout) in by and (total, min(above), layout) in by:
            lo, hi = by[(total, max(below), layout)], by[(total, min(above), layout)]
            if lo is hi:
                bracket = f"; at 5,000 videos: {lo['events_s'] / base['events_s']:.2f}x"
            else:
                low_ratio, high_ratio = lo["events_s"] / base["events_s"], hi["events_s"] / base["events_s"]
                bracket = f"; ~5,000 videos between {low_ratio:.2f}x ({max(below):,}) and {high_ratio:.2f}x ({min(above):,})"
        lines.append(f"- {layout}: {'; '.join(ratios)}{bracket}")
    if big is not None:
        rows, videos = big
        parts = [f"{layout} {by[(rows, videos, layout)]['events_s']:.2f} s" for layout in ("old", "new") if (rows, videos, layout) in by]
        lines.append(f"- events over {rows:,} rows ({videos:,} videos): {', '.join(parts)} (target for new: <= 2 s)")
    lines.append(f"- load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (on {os.cpu_count()} CPUs)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, nargs="+", default=[10, 1000, 10000, 100000], help="OUT sizes, in videos")
    parser.add_argument("--total-rows", type=int, default=1_000_000, help="frames rows of each of those OUTs (default 1 M)")
    parser.add_argument("--big-rows", type=int, default=10_000_000, help="rows of the extra big OUT; 0: none (default 10 M)")
    parser.add_argument("--big-videos", type=int, default=10_000, help="videos of the extra big OUT (default 10 000)")
    parser.add_argument("--nights", type=int, default=30, help="scan dates the videos are spread over, one run each (default 30)")
    parser.add_argument("--batch-videos", type=int, default=1000, help="videos per commit in the new layout (default 1000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each command, each a fresh process; the best is reported")
    parser.add_argument("--work", default="/tmp/lavida-bench-query-scale", help="where the synthetic OUTs are written (and cached)")
    parser.add_argument("--old-root", default=str(OLD_ROOT), help=f"a checkout of {OLD_COMMIT} (a git worktree is made there if missing)")
    parser.add_argument("--layouts", nargs="+", choices=["old", "new"], default=["old", "new"])
    parser.add_argument("--workers", type=int, default=max(1, os.cpu_count() or 1), help="processes writing old-layout files")
    parser.add_argument("--json", help="where to write the results (default WORK/results.json)")
    parser.add_argument("--timeout", type=float, default=LIMITS["seconds"], help="seconds a CLI run may take (default 300)")
    parser.add_argument("--memory-gb", type=float, default=LIMITS["memory_gb"], help="address space a CLI run may use (default 12)")
    args = parser.parse_args()
    LIMITS.update(seconds=args.timeout, memory_gb=args.memory_gb)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("jobs").setLevel(logging.WARNING)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    roots = {"new": REPO, "old": ensure_old_root(Path(args.old_root)) if "old" in args.layouts else None}
    outs = [(args.total_rows, v) for v in args.videos]
    big = (args.big_rows, args.big_videos) if args.big_rows > 0 else None
    if big is not None and big not in outs:
        outs.append(big)
    results = []
    for total, videos in outs:
        if total < videos:
            raise SystemExit(f"{total} rows cannot fill {videos} videos (one sampled frame each at least)")
        for layout in args.layouts:
            out = ensure_out(work, layout, total, videos, args)
            results.append(measure(roots[layout], out, layout, total, videos, min(args.nights, videos), args.repeat))
        pair = [r for r in results if r["rows"] == total and r["videos"] == videos and "events" in r]
        if len({r["events"] for r in pair}) > 1:
            log.warning("%d rows / %d videos: the layouts disagree on the number of events: %s", total, videos, [r["events"] for r in pair])
    table = report(results, args.videos, args.total_rows, big)
    print(table)
    path = Path(args.json) if args.json else work / "results.json"
    path.write_text(json.dumps({"args": vars(args), "results": results, "table": table}, indent=1, default=str))
    log.info("results written to %s", path)


if __name__ == "__main__":
    main()
