"""Benchmark: the approximate clip index (jobs/out/clip_index.py) and the retrieval over it
(jobs/search/retrieve.py), the real code path, on a real Delta OUT of synthetic CLIP-like clips.

For each size N (``--sizes``):

1. A synthetic OUT under WORK/out-N (cached: made once per N, ``--night-rows`` and ``--seed``): N clip
   embeddings (512-d float32, unit: the CLIP-like clustered vectors of bench/retrieval_bench.py) in
   "nights" of ``--night-rows`` rows. A night is one scan run: its `runs` row, then videos of
   ~650 clips (550..750) committed as the scan writer does, 64 videos a batch: the batch's `embeddings`
   rows, then its `videos` rows (status 'ok', run_ids [run], committed_at and scan_date of the night;
   nights are consecutive days). Written with OutTables.append, so duck.connect reads it as any OUT.
   The vectors come from a generator seeded per batch, so the ground truth makes them again rather
   than keeping a copy (10^7 x 512 float32 is 20 GB); memory stays at one batch (~40,000 rows).
2. The index, rebuilt from nothing on every run (OUT/clip_index is deleted first), night by night as a
   nightly job would: after night i, update_index(out, duck.connect(out, as_of=<videos version after
   night i>), ...) with ``--min-shard-rows``. A cached OUT holds every night, so each night's snapshot
   is read through --as-of; what it sees is what OUT held that night. The last nights may stay below
   the minimum and unindexed: the search reads those rows exactly.
3. Search latency in process, each query best of 3, mean over the queries, on one sandboxed
   duck.connect(out) (as `lavida search` makes): ANN = top_clips with ShardSet.load's shards (the
   load, with the mapping of each shard's faiss index, is timed on its own), exact = top_clips
   without shards (DuckDB array_cosine_similarity over every row; on the first ``--exact-queries``
   queries only, it is slow). ``coverage`` (which `lavida search` runs before every search) is timed too.
4. recall@64 of both against the exact ground truth (inner product of the unit vectors over all N
   rows in numpy; a clip is (video_id, clip_index)).
5. A fresh process (`python -c`: open OUT, connect, load the shards, one top_clips), timed as a whole.

Columns: N, shards, uncovered rows, per-night index s (mean / max over the nights), load ms, ANN
query ms, exact query ms, coverage ms, recall@64 ANN (clustered queries / random unit queries), recall
exact, fresh-process s, bytes of OUT/clip_index and of OUT/embeddings. Results are printed as a markdown
table and appended as JSON lines to WORK/results.jsonl.

    python bench/bench_clip_index.py                                   # 10^5 and 10^6 clips
    python bench/bench_clip_index.py --sizes 10000000                  # a month of 100 cameras
    python bench/bench_clip_index.py --sizes 300000 --night-rows 100000 --min-shard-rows 50000
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import retrieval_bench as rb  # noqa: E402  (sets the OMP / BLAS thread counts at import)

from jobs.out import duck  # noqa: E402
from jobs.out.clip_index import INDEX_FOLDER, ShardSet, update_index  # noqa: E402
from jobs.out.tables import OutTables  # noqa: E402
from jobs.search.retrieve import Scope, coverage, top_clips  # noqa: E402
from schemas.tables import EMBEDDINGS_SCHEMA, RUNS_SCHEMA, VIDEOS_SCHEMA  # noqa: E402

DIM, K = rb.DIM, rb.K
MODEL = "bench"
VIDEOS_PER_COMMIT = 64  # the scan writer's default batch (jobs/scan/options.py DEFAULT_COMMIT_EVERY)
CLIPS_PER_VIDEO = (550, 750)  # ~650 clips a video
FIRST_DAY = date(2026, 1, 1)
CAMERAS = 100
MANIFEST = "bench.json"

FRESH_PROCESS = """
import sys, numpy as np
from jobs.out import duck
from jobs.out.clip_index import ShardSet
from jobs.search.retrieve import Scope, top_clips
out = duck.open_out(sys.argv[1])
con = duck.connect(out, sandbox=True)
shards = ShardSet.load(out, sys.argv[2])
hits = top_clips(con, np.load(sys.argv[3]), model=sys.argv[2], scope=Scope(), k=int(sys.argv[4]), shards=shards)
assert len(hits) == int(sys.argv[4]), len(hits)
"""


# ----------------------------------------------------------------------------------------------------
# the synthetic OUT


def layout(n: int, night_rows: int, seed: int) -> list[list[int]]:
    """Clips per video, night by night: N clips in nights of `night_rows` (the last one shorter)."""
    rng = np.random.default_rng([seed, 7])
    nights, left = [], n
    while left > 0:
        videos, room = [], min(night_rows, left)
        while room > 0:
            clips = min(int(rng.integers(CLIPS_PER_VIDEO[0], CLIPS_PER_VIDEO[1] + 1)), room)
            videos.append(clips)
            room -= clips
        nights.append(videos)
        left -= sum(videos)
    return nights


def run_id_of(night: int) -> str:
    return f"night-{night:02d}"


def video_id_of(night: int, video: int) -> str:
    return f"{run_id_of(night)}-v{video:05d}"


def uri_of(night: int, video: int) -> str:
    day = FIRST_DAY + timedelta(days=night)
    return f"s3://bench-archive/cam{video % CAMERAS:03d}/{day.isoformat()}/{video:05d}.mp4"


def night_start(night: int) -> datetime:
    return datetime.combine(FIRST_DAY + timedelta(days=night), datetime.min.time(), UTC) + timedelta(minutes=30)


def runs_row(night: int, out: str) -> pa.Table:
    started = night_start(night)
    row = {
        "run_id": run_id_of(night),
        "kind": "scan",
        "source": "s3://bench-archive",
        "out": out,
        "model": MODEL,
        "model_trained": True,
        "anomaly_types": ["fire"],
        "sample_interval": 4,
        "frames_per_clip": 16,
        "device": "cpu",
        "started_at": started,
        "finished_at": started + timedelta(hours=6),
        "n_ok": None,
        "n_failed": None,
        "n_skipped": None,
        "description": None,
        "schema_version": 4,
        "model_card": None,
        "profile_id": "bench",
        "updated_at": started,
    }
    return pa.Table.from_pylist([row], schema=RUNS_SCHEMA)


def embeddings_rows(night: int, videos: list[tuple[int, int]], vectors: np.ndarray) -> pa.Table:
    """The rows of `videos` ((video number, clips)); `vectors` holds their clips in order."""
    video_ids, uris, clip_index = [], [], []
    for video, clips in videos:
        video_ids += [video_id_of(night, video)] * clips
        uris += [uri_of(night, video)] * clips
        clip_index.append(np.arange(clips, dtype=np.int64))
    clip_index = np.concatenate(clip_index)
    n = len(clip_index)
    offsets = pa.array(np.arange(0, (n + 1) * DIM, DIM, dtype=np.int32))
    embedding = pa.ListArray.from_arrays(offsets, pa.array(vectors.astype(np.float32).reshape(-1)))
    columns = {
        "video_id": pa.array(video_ids, pa.string()),
        "uri": pa.array(uris, pa.string()),
        "clip_index": pa.array(clip_index),
        "first_frame": pa.array(clip_index * 64),
        "last_frame": pa.array(clip_index * 64 + 60),
        "start_s": pa.array(clip_index * 2.56),
        "end_s": pa.array(clip_index * 2.56 + 2.4),
        "embedding": embedding,
        "dim": pa.array(np.full(n, DIM, dtype=np.int32)),
        "embedding_model": pa.array([MODEL] * n, pa.string()),
        "run_id": pa.array([run_id_of(night)] * n, pa.string()),
        "scan_date": pa.array([FIRST_DAY + timedelta(days=night)] * n, pa.date32()),
    }
    return pa.table(columns, schema=EMBEDDINGS_SCHEMA)


def videos_rows(night: int, videos: list[tuple[int, int]], batch: int) -> pa.Table:
    committed = night_start(night) + timedelta(minutes=10 * (batch + 1))
    rows = [
        {
            "video_id": video_id_of(night, video),
            "uri": uri_of(night, video),
            "status": "ok",
            "error": None,
            "n_frames": clips * 64,
            "fps": 25.0,
            "duration_s": clips * 2.56,
            "width": 1920,
            "height": 1080,
            "run_id": run_id_of(night),
            "size_bytes": clips * 1_000_000,
            "version_tag": "bench",
            "n_sampled_frames": clips * 16,
            "n_clips": clips,
            "committed_at": committed,
            "run_ids": [run_id_of(night)],
            "profile_id": "bench",
            "scan_date": FIRST_DAY + timedelta(days=night),
        }
        for video, clips in videos
    ]
    return pa.Table.from_pylist(rows, schema=VIDEOS_SCHEMA)


def batches(n: int, night_rows: int, seed: int):
    """(night, batch, [(video number, clips)], float32 vectors of their clips), in OUT's row order; the
    vectors come from a seeded generator, so the ground truth makes them again instead of storing them."""
    centres, sigmas = rb.make_centres(max(n // 200, 8), seed)
    for night, clips_per_video in enumerate(layout(n, night_rows, seed)):
        videos = list(enumerate(clips_per_video))
        for batch, start in enumerate(range(0, len(videos), VIDEOS_PER_COMMIT)):
            chunk = videos[start : start + VIDEOS_PER_COMMIT]
            rng = np.random.default_rng([seed, night, batch])
            yield night, batch, chunk, rb.sample_around(centres, sigmas, sum(clips for _, clips in chunk), rng)


def build_out(folder: Path, n: int, night_rows: int, seed: int) -> dict:
    """Write the synthetic OUT; returns the manifest (written last)."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    tables = OutTables(str(folder / "out"))
    nights, t0 = [], time.perf_counter()
    for night, batch, videos, vectors in batches(n, night_rows, seed):
        if batch == 0:
            tables.append("runs", runs_row(night, tables.root), run_id_of(night))
            nights.append({"run_id": run_id_of(night), "rows": 0})
        tables.append("embeddings", embeddings_rows(night, videos, vectors), run_id_of(night))
        tables.append("videos", videos_rows(night, videos, batch), run_id_of(night))
        nights[-1]["rows"] += len(vectors)
        nights[-1]["videos_version"] = tables.table("videos").version()
    print(f"#   {len(nights)} nights written in {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)
    manifest = {"n": n, "night_rows": night_rows, "seed": seed, "nights": nights}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def synthetic_out(work: Path, n: int, night_rows: int, seed: int) -> tuple[Path, dict]:
    """WORK/out-N, made unless it holds a finished OUT of the same N, night size and seed."""
    folder = work / f"out-{n}"
    manifest_path = folder / MANIFEST
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if (manifest["n"], manifest["night_rows"], manifest["seed"]) == (n, night_rows, seed):
            print(f"# N={n:,}: reusing {folder}", file=sys.stderr, flush=True)
            return folder, manifest
    print(f"# N={n:,}: writing a synthetic OUT into {folder}", file=sys.stderr, flush=True)
    return folder, build_out(folder, n, night_rows, seed)


def clip_ids(n: int, night_rows: int, seed: int) -> tuple[list[str], np.ndarray]:
    """(video_id of each video, first row of each video) in OUT's row order (that of `batches`)."""
    video_ids, sizes = [], []
    for night, clips_per_video in enumerate(layout(n, night_rows, seed)):
        video_ids += [video_id_of(night, video) for video in range(len(clips_per_video))]
        sizes += clips_per_video
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return video_ids, starts


# ----------------------------------------------------------------------------------------------------
# the index, night by night


def compact_videos(out: duck.Out) -> None:
    """The `videos` table in one file, as the compaction at the end of each scan keeps it (only that table:
    rewriting 10^7 embeddings would take long and changes nothing the search reads per query)."""
    from deltalake import DeltaTable

    DeltaTable(out.join("videos")).optimize.compact()  # no vacuum: the nights' versions stay readable (--as-of)


def index_nights(out: duck.Out, manifest: dict, min_rows: int) -> list[float]:
    """Rebuild OUT/clip_index night by night; returns the seconds update_index took each night."""
    if out.fs.exists(out.join(INDEX_FOLDER)):
        out.fs.rm(out.join(INDEX_FOLDER), recursive=True)
    seconds = []
    for night in manifest["nights"]:
        con = duck.connect(out, as_of=str(night["videos_version"]))
        t0 = time.perf_counter()
        indexed = update_index(out, con, MODEL, DIM, min_rows=min_rows)
        seconds.append(time.perf_counter() - t0)
        con.close()
        print(f"#   {night['run_id']}: update_index {seconds[-1]:.1f}s, {indexed:,} rows into new shards", file=sys.stderr, flush=True)
    return seconds


# ----------------------------------------------------------------------------------------------------
# search


def ground_truth(n: int, night_rows: int, seed: int, q: np.ndarray) -> np.ndarray:
    """Row numbers (in OUT's row order) of each query's K best rows by inner product, over the same
    float32 vectors OUT holds, made again batch by batch."""
    best_s = np.empty((len(q), 0), np.float32)
    best_i = np.empty((len(q), 0), np.int64)
    start = 0
    for *_, x in batches(n, night_rows, seed):
        s = q @ x.T
        i = np.broadcast_to(np.arange(start, start + len(x)), s.shape)
        best_s, best_i = rb.merge_topk(np.concatenate([best_s, s], 1), np.concatenate([best_i, i], 1), K)
        start += len(x)
    return best_i


def truth_sets(rows: np.ndarray, video_ids: list[str], starts: np.ndarray) -> list[set]:
    """Each query's best rows as {(video_id, clip_index)}."""
    sets = []
    for found in rows:
        videos = np.searchsorted(starts, found, side="right") - 1
        sets.append({(video_ids[v], int(r - starts[v])) for v, r in zip(videos, found)})
    return sets


def timed_search(search, q: np.ndarray) -> tuple[float, list[set]]:
    """(mean over queries of each one's best-of-3 seconds, each query's hits as {(video_id, clip_index)})."""
    seconds, found = [], []
    for vector in q:
        best, hits = rb.best_of(lambda vector=vector: search(vector))
        seconds.append(best)
        found.append({(hit.video_id, hit.clip_index) for hit in hits})
    return float(np.mean(seconds)), found


def recall(found: list[set], truth: list[set]) -> float:
    return float(np.mean([len(f & t) / K for f, t in zip(found, truth)]))


def fresh_process_s(out: duck.Out, vector: np.ndarray, work: Path) -> float:
    path = work / "query.npy"
    np.save(path, vector.astype(np.float32))
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, out.root, MODEL, str(path), str(K)], cwd=REPO, capture_output=True, text=True
    )
    seconds = time.perf_counter() - t0
    if done.returncode != 0:  # its stderr otherwise stays out of the table (DuckDB draws a progress bar there)
        raise RuntimeError(f"the fresh process failed:\n{done.stderr}")
    return seconds


# ----------------------------------------------------------------------------------------------------
# one size


def bench_size(n: int, args) -> dict:
    folder, manifest = synthetic_out(args.work, n, args.night_rows, args.seed)
    out = duck.open_out(str(folder / "out"))
    if args.compact_videos:
        compact_videos(out)
    if args.keep_index and out.fs.exists(out.join(INDEX_FOLDER)):
        print(f"# N={n:,}: searching the index already built (--keep-index)", file=sys.stderr, flush=True)
        night_s = [float("nan")]
    else:
        print(f"# N={n:,}: indexing {len(manifest['nights'])} nights", file=sys.stderr, flush=True)
        night_s = index_nights(out, manifest, args.min_shard_rows)

    q = rb.unit(rb.queries(n, args.seed, args.queries, args.random_queries))
    t0 = time.perf_counter()
    video_ids, starts = clip_ids(n, args.night_rows, args.seed)
    truth = truth_sets(ground_truth(n, args.night_rows, args.seed, q), video_ids, starts)
    print(f"# N={n:,}: ground truth in {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)

    con = duck.connect(out, sandbox=True)
    t0 = time.perf_counter()
    shards = ShardSet.load(out, MODEL)
    for shard in shards.shards:
        shard.index  # noqa: B018  (maps the faiss index, if ShardSet.load left that to the first search)
    load_ms = (time.perf_counter() - t0) * 1e3
    uncovered = n - shards.n_vectors
    t0 = time.perf_counter()
    covered = coverage(con, MODEL, Scope(), shards)
    coverage_ms = (time.perf_counter() - t0) * 1e3
    assert covered.n_missing == 0, covered

    ann_s, ann_found = timed_search(lambda v: top_clips(con, v, model=MODEL, scope=Scope(), k=K, shards=shards), q)
    print(f"# N={n:,}: ANN {ann_s * 1e3:.0f} ms a query", file=sys.stderr, flush=True)
    n_exact = min(args.exact_queries, len(q))
    exact_s, exact_found = float("nan"), []
    if n_exact:
        exact_s, exact_found = timed_search(lambda v: top_clips(con, v, model=MODEL, scope=Scope(), k=K, shards=None), q[:n_exact])
        print(f"# N={n:,}: exact {exact_s * 1e3:.0f} ms a query", file=sys.stderr, flush=True)
    fresh_s = fresh_process_s(out, q[0], args.work)

    nc = args.queries
    return {
        "N": n,
        "night_rows": args.night_rows,
        "min_shard_rows": args.min_shard_rows,
        "nights": len(night_s),
        "shards": len(shards.shards),
        "uncovered": uncovered,
        "night_index_s_mean": float(np.mean(night_s)),
        "night_index_s_max": float(np.max(night_s)),
        "load_ms": load_ms,
        "ann_ms": ann_s * 1e3,
        "exact_ms": exact_s * 1e3,
        "coverage_ms": coverage_ms,
        "recall_ann": recall(ann_found[:nc], truth[:nc]),
        "recall_ann_random": recall(ann_found[nc:], truth[nc:]) if len(q) > nc else None,
        "recall_exact": recall(exact_found, truth[:n_exact]) if n_exact else float("nan"),
        "videos_compacted": args.compact_videos,
        "exact_queries": n_exact,
        "fresh_process_s": fresh_s,
        "index_bytes": rb.dir_bytes(Path(out.join(INDEX_FOLDER))),
        "embeddings_bytes": rb.dir_bytes(Path(out.join("embeddings"))),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


# ----------------------------------------------------------------------------------------------------
# output


def markdown(rows: list[dict]) -> str:
    lines = [
        "| N | nights | shards | uncovered rows | index s/night (mean / max) | load ms | ANN query ms | exact query ms "
        "| coverage ms | recall@64 ANN (clustered / random q) | recall@64 exact | fresh process s | clip_index bytes | embeddings bytes |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['N']:,} | {r['nights']} | {r['shards']} | {r['uncovered']:,} "
            f"| {r['night_index_s_mean']:.1f} / {r['night_index_s_max']:.1f} | {r['load_ms']:.0f} | {r['ann_ms']:.0f} "
            f"| {r['exact_ms']:.0f} | {r['coverage_ms']:.0f} | {r['recall_ann']:.3f} / {rb.fmt(r['recall_ann_random'], '.3f')} "
            f"| {r['recall_exact']:.3f} | {r['fresh_process_s']:.1f} | {r['index_bytes']:,} | {r['embeddings_bytes']:,} |"
        )
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated N values (clips in OUT)")
    parser.add_argument("--night-rows", type=int, default=333_000, help="clips a night (333,000: 100 cameras, 10^7 a month)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_clip_index"))
    parser.add_argument("--queries", type=int, default=20, help="clustered queries (made like the data)")
    parser.add_argument("--random-queries", type=int, default=4, help="random unit queries (far from every cluster)")
    parser.add_argument("--exact-queries", type=int, default=5, help="of the queries, those the exact search is timed on")
    parser.add_argument("--min-shard-rows", type=int, default=50_000, help="update_index's min_rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep-index", action="store_true", help="search the shards a previous run built instead of rebuilding them")
    parser.add_argument(
        "--compact-videos", action="store_true",
        help="first compact OUT's `videos` table to one file, as a scan's end compaction leaves it (the bench writes one file a commit)",
    )  # fmt: skip
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in (int(size) for size in args.sizes.split(",")):
        row = bench_size(n, args)
        rows.append(row)
        print(markdown([row]), file=sys.stderr, flush=True)
        with open(args.work / "results.jsonl", "a") as results:
            results.write(json.dumps(row) + "\n")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
