"""Indexed search against exhaustive search on held-out demo shapes: do LAVIDA's top-10 events over
the retrieved clips find the videos that re-scoring every clip finds? (issue 30)

    OMP_NUM_THREADS=2 python bench/search_coverage.py                       # demo model, seeds 5201 5202
    OMP_NUM_THREADS=2 python bench/search_coverage.py --seeds 5201 --normal-videos 40 --candidates 16

For each seed and kind (seen / novel colour-shape combinations), the set of bench/search_quality.py
(its anomaly videos planted as bench/demo_model_eval.py's test sets, plus videos without an anomaly,
all drawn with the set's own seed: nothing here trained or chose anything) is encoded as H.264 files
and scanned once with the model (sample interval 1, 8 frames a clip, as `lavida demo` scans; the
scan writes the clip index). Then, per anomaly type planted in the set, `lavida search` runs twice
through the search job, in this process: indexed (`--candidates K`) and `--exhaustive`, each printing
its top-10 events. Coverage = videos of the exhaustive top 10 that the indexed top 10 also holds /
videos of the exhaustive top 10; averaged over the types of each kind. Also: the share of the
planted videos each top 10 holds (hit rate), and the clips LAVIDA re-scored.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from search_quality import TestSet, make_set

from jobs.cli.demo import encode_mp4
from jobs.scan.job import ScanOptions, scan
from jobs.search.search import SearchOptions, search

TOP = 10


def top_videos(result) -> list[str]:
    """The videos of the top-10 events, best first, each once."""
    uri = result.columns.index("uri")
    videos: list[str] = []
    for row in result.rows:
        if Path(row[uri]).name not in videos:
            videos.append(Path(row[uri]).name)
    return videos


def measure_set(test_set: TestSet, *, model: str, candidates: int, work: Path) -> list[dict]:
    archive, out = work / test_set.name / "archive", work / test_set.name / "out"
    archive.mkdir(parents=True)
    planted: dict[str, set[str]] = {}
    for number, (frames, anomaly) in enumerate(test_set.videos):
        name = f"v{number:04d}.mp4"
        encode_mp4(frames, archive / name)
        if anomaly is not None:
            planted.setdefault(anomaly, set()).add(name)
    begun = time.monotonic()
    scan(ScanOptions(source=str(archive), out=str(out), model=model, anomaly_types=test_set.types, sample_interval=1, frames_per_clip=8))
    print(f"{test_set.name}: {len(test_set.videos)} videos, {len(test_set.clips)} clips scanned in {time.monotonic() - begun:.0f} s")
    rows = []
    for anomaly in test_set.types:
        answers = {}
        for exhaustive in (False, True):
            begun = time.monotonic()
            result = search(
                SearchOptions(out=str(out), description=anomaly, model=model, top_k=TOP, candidates=candidates, exhaustive=exhaustive)
            )
            answers[exhaustive] = (top_videos(result), result.n_rescored_clips, time.monotonic() - begun)
        (indexed, n_clips, indexed_s), (full, _, full_s) = answers[False], answers[True]
        coverage = len(set(indexed) & set(full)) / len(full) if full else float("nan")
        rows.append(
            {
                "set": test_set.name,
                "kind": test_set.kind,
                "type": anomaly,
                "coverage": coverage,
                "exhaustive_top": len(full),
                "hits_indexed": len(set(indexed) & planted[anomaly]) / len(planted[anomaly]),
                "hits_exhaustive": len(set(full) & planted[anomaly]) / len(planted[anomaly]),
                "rescored_clips": n_clips,
                "indexed_s": indexed_s,
                "exhaustive_s": full_s,
            }
        )
        print(f"  {anomaly}: coverage {coverage:.2f} ({len(full)} videos in the exhaustive top {TOP}); {indexed_s:.0f} s vs {full_s:.0f} s")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo", help="a model with a search image tower (default: the shipped demo)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[5201, 5202], help="held-out seeds (default 5201 5202)")
    parser.add_argument("--anomaly-videos", type=int, default=20)
    parser.add_argument("--normal-videos", type=int, default=80)
    parser.add_argument("--candidates", type=int, default=16, help="clips retrieved for LAVIDA (default 16)")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one, removed)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="search-coverage-"))
    rows = []
    try:
        for kind in ("seen", "novel"):
            for seed in args.seeds:
                test_set = make_set(seed, kind, anomaly_videos=args.anomaly_videos, normal_videos=args.normal_videos)
                rows += measure_set(test_set, model=args.model, candidates=args.candidates, work=work)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    n_clips = 2 * (args.anomaly_videos + args.normal_videos)
    print(
        f"\n{args.model}: indexed (--candidates {args.candidates} of {n_clips} clips a set) against --exhaustive; seeds "
        f"{' '.join(map(str, args.seeds))}; {args.anomaly_videos} anomaly + {args.normal_videos} normal videos a set; "
        f"{platform.machine()}\n"
    )
    print(
        "| kind | types x sets | top-10 coverage | planted videos in top 10: indexed | exhaustive | clips re-scored "
        "| indexed s | exhaustive s |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for kind in ("seen", "novel"):
        mine = [r for r in rows if r["kind"] == kind]
        cells = [np.nanmean([r[key] for r in mine]) for key in ("coverage", "hits_indexed", "hits_exhaustive", "rescored_clips")]
        times = [np.mean([r[key] for r in mine]) for key in ("indexed_s", "exhaustive_s")]
        print(f"| {kind} | {len(mine)} | **{cells[0]:.2f}** | {cells[1]:.2f} | {cells[2]:.2f} | {cells[3]:.0f} ", end="")
        print(f"| {times[0]:.0f} | {times[1]:.0f} |")


if __name__ == "__main__":
    main()
