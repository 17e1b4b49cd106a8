"""Benchmark of the scan's per-file overhead (issue 31): an archive of many short files.

A 64x64, 16-frame H.264 file copied N times (default 5,000) is scanned by the real CLI in a fresh
process, `lavida scan A --out O --model tiny --device cpu --sample-interval 4`, with its own Ray.
Printed: the whole scan's seconds, seconds until the first video's progress line, and seconds per file.
Before OUT became Delta tables this scan took 126 s on the 2-core box; 722 s when issue 31 was filed.

    python bench/bench_many_files.py                  # 5,000 files
    python bench/bench_many_files.py --files 500 --keep /tmp/many   # keep the archive and OUT
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from video_factory import write_video  # noqa: E402

PROGRESS = re.compile(r"\[1/\d+, ")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--keep", type=Path, help="a folder to keep the archive and OUT in (default: a temporary one)")
    parser.add_argument("extra", nargs="*", help="more `lavida scan` arguments (after --)")
    return parser.parse_args()


def make_archive(folder: Path, n_files: int) -> Path:
    archive = folder / "archive"
    if archive.exists() and len(os.listdir(archive)) == n_files:
        return archive
    shutil.rmtree(archive, ignore_errors=True)
    archive.mkdir(parents=True)
    original = write_video(folder / "original.mp4", width=64, height=64, n_frames=16)
    for i in range(n_files):
        shutil.copyfile(original, archive / f"clip_{i:06d}.mp4")
    return archive


def timed_scan(archive: Path, out: Path, extra: list[str]) -> tuple[float, float | None, str]:
    """(seconds in all, seconds until the first video's progress line, the summary line)."""
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "RAY_TMPDIR": tempfile.mkdtemp(prefix="bm", dir="/tmp")}
    command = [sys.executable, "-m", "jobs.cli", "scan", str(archive), "--out", str(out)]
    command += ["--model", "tiny", "--device", "cpu", "--sample-interval", "4", *extra]
    started = time.perf_counter()
    first = None
    tail: list[str] = []
    with subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
        for line in process.stdout:
            if first is None and PROGRESS.search(line):
                first = time.perf_counter() - started
            tail = (tail + [line.rstrip()])[-5:]
    elapsed = time.perf_counter() - started
    shutil.rmtree(env["RAY_TMPDIR"], ignore_errors=True)
    if process.returncode != 0:
        raise SystemExit(f"lavida scan failed ({process.returncode}):\n" + "\n".join(tail))
    return elapsed, first, tail[-1] if tail else ""


def main() -> None:
    args = parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-many-"))
    folder.mkdir(parents=True, exist_ok=True)
    archive = make_archive(folder, args.files)
    elapsed, first, summary = timed_scan(archive, folder / "out", args.extra)
    print(summary)
    print("| files | scan (s) | first progress line (s) | per file (ms) | vs 126 s before Delta |")
    print("|---:|---:|---:|---:|---:|")
    first_text = f"{first:.1f}" if first is not None else "-"
    per_file_ms = elapsed / args.files * 1000
    against_before = elapsed / 126 * 5000 / args.files  # scaled to 5,000 files
    print(f"| {args.files:,} | {elapsed:.1f} | {first_text} | {per_file_ms:.0f} | {against_before:.2f}x |")
    if args.keep is None:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
