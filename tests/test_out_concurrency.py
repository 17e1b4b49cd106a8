"""OUT under real trouble: `lavida scan` (the CLI, in subprocesses, each starting its own local Ray)
killed with -9 mid-batch, two scans into one OUT at once, a one-hour video killed mid-scan.

Scores come from FAKE detectors (tests/fake_detector.py): SlowBrightDetector sleeps per clip so
that a kill or an overlap lands mid-run on any machine; rows are compared with BrightDetector runs.
Scans "at once" into different folders use RendezvousSlowDetector (tests/rendezvous_detector.py), which
starts scoring in both at the same moment, and check that their commits did interleave.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from video_factory import write_video

from jobs.common.errors import EXIT_OK, UserError
from jobs.out import clip_index, duck
from jobs.out.tables import OutTables

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
SLOW = ["--detector-class", "fake_detector:SlowBrightDetector"]
FAST = ["--detector-class", "fake_detector:BrightDetector"]
MEET = ["--detector-class", "rendezvous_detector:RendezvousSlowDetector"]  # SLOW, both scans' scoring starts together
KEYS = "SELECT video_id, frame_index, score FROM frames ORDER BY 1, 2"
# Each video planned and decoded by tasks of its own, so that videos reach the detector, and OUT, one by
# one, as a kill, an outage or the other scan's commits need: files under --plan-bytes (16 MiB) are
# otherwise decoded up to 8 to a task and reach the detector, and OUT, together.
ONE_BY_ONE = ["--plan-bytes", "0"]


class Scan:
    """One `lavida scan` subprocess with its own local Ray (and Ray temp dir)."""

    def __init__(self, source: Path, out: Path, *extra: str, delay_s: float = 0.2, env: dict | None = None) -> None:
        self.ray_tmp = tempfile.mkdtemp(prefix="lvc", dir="/tmp")  # short: Ray's socket paths must stay short
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{TESTS}", "RAY_TMPDIR": self.ray_tmp, "OMP_NUM_THREADS": "1",
               "LAVIDA_FAKE_DELAY_S": str(delay_s), **(env or {})}  # fmt: skip
        env.pop("RAY_ADDRESS", None)
        command = [sys.executable, "-m", "jobs.cli", "scan", str(source), "--out", str(out), "--anomaly", "fire",
                   "--sample-interval", "2", "--frames-per-clip", "4", "--batch-size", "1", *extra]  # fmt: skip
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish(self, timeout: float = 300) -> tuple[int, str, str]:
        try:
            stdout, stderr = self.process.communicate(timeout=timeout)
        finally:
            shutil.rmtree(self.ray_tmp, ignore_errors=True)
        return self.process.returncode, stdout, stderr

    def kill(self) -> None:
        """kill -9 the driver, then end the local Ray it had started (found by its temp dir)."""
        self.process.send_signal(signal.SIGKILL)
        self.process.communicate()
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if self.ray_tmp.encode() in cmdline.read_bytes():
                    os.kill(int(cmdline.parent.name), signal.SIGKILL)
            except (OSError, ValueError):
                continue
        shutil.rmtree(self.ray_tmp, ignore_errors=True)


def reference(source: Path, out: Path):
    """The rows an uninterrupted FAST scan of `source` writes, scanned in this process on the session's
    Ray (the same job as the CLI's, without starting a Ray of its own: ~20 s less each); its summary."""
    from jobs.scan.job import ScanOptions, scan

    options = ScanOptions(source=str(source), out=str(out), anomaly_types=("fire",), sample_interval=2, frames_per_clip=4, batch_size=1,
                          detector_class="fake_detector:BrightDetector")  # fmt: skip
    summary = scan(options)
    assert summary.n_failed == 0 and summary.n_ok > 0, summary
    return summary


def scanned(source: Path, out: Path, *extra: str) -> str:
    status, stdout, stderr = Scan(source, out, *extra).finish()
    assert status == EXIT_OK, stderr[-4000:]
    return stdout.strip().splitlines()[-1]


def archive(folder: Path, names: list[str], n_frames: int = 24) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        write_video(folder / f"{name}.mp4", width=64, height=48, n_frames=n_frames)
    return folder


def rows(out: Path, query: str = KEYS) -> list[tuple]:
    return duck.connect(str(out)).sql(query).fetchall()


def committed(out: Path | str, table: str = "videos", storage_options: dict | None = None) -> int:
    delta = OutTables(str(out), storage_options).table(table)
    return 0 if delta is None else delta.to_pyarrow_table(columns=["video_id"]).num_rows


def wait_for(condition, process: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, "the scan ended before the moment the test waits for"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def meeting(folder: Path, label: str) -> dict:
    """The environment of a MEET scan called `label`, meeting the other one in `folder`."""
    folder.mkdir(exist_ok=True)
    return {"LAVIDA_FAKE_RENDEZVOUS": str(folder), "LAVIDA_FAKE_RENDEZVOUS_AS": label, "LAVIDA_FAKE_RENDEZVOUS_N": "2"}


def run_id_of(stdout: str) -> str:
    return re.match(r"run (\S+): ", stdout.strip().splitlines()[-1]).group(1)


def assert_runs_overlapped(out: str, run_ids: list[str], storage_options: dict | None = None) -> None:
    """Each run started before the other finished (the `runs` table): not one after the other."""
    _, found = duck.fetch(duck.connect(out, storage_options=storage_options), "SELECT run_id, started_at, finished_at FROM runs")
    times = {run_id: (started, finished) for run_id, started, finished in found}
    (start_a, end_a), (start_b, end_b) = times[run_ids[0]], times[run_ids[1]]
    assert start_a < end_b and start_b < end_a, times


def assert_commits_interleaved(tables: OutTables, run_ids: list[str]) -> None:
    """Each run's first `videos` commit comes before the other's last (Delta versions: one total order)."""
    versions = {run_id: [] for run_id in run_ids}
    for entry in tables.versions("videos"):
        if entry.get("lavida_run_id") in versions:
            versions[entry["lavida_run_id"]].append(int(entry["version"]))
    a, b = (versions[run_id] for run_id in run_ids)
    assert a and b and min(a) < max(b) and min(b) < max(a), versions


# every clip's embedding exactly once, and none without its clip
EMBEDDINGS_ONCE = """
    SELECT count(*), count(DISTINCT (e.video_id, e.clip_index)), count(*) FILTER (WHERE c.clip_index IS NULL)
    FROM embeddings AS e LEFT JOIN clips AS c USING (video_id, clip_index)
"""


def test_kill_9_mid_batch_then_rerun_has_the_rows_of_an_uninterrupted_run(local_ray, tmp_path, monkeypatch):
    source = archive(tmp_path / "archive", [f"cam{k}" for k in range(8)])
    out = tmp_path / "out"
    scan = Scan(source, out, *SLOW, *ONE_BY_ONE, "--commit-every", "2", delay_s=0.5)
    wait_for(lambda: committed(out) >= 2, scan.process)  # the next batch is under way: clips scored, not committed
    scan.kill()
    done = committed(out)
    assert 2 <= done < 8, done
    monkeypatch.setattr(clip_index, "DEFAULT_MIN_ROWS", 0)  # a scan's end puts every embedding into an index shard
    rerun = reference(source, out)  # the rerun: the same job, in this process on the session's Ray
    assert (rerun.n_ok, rerun.n_failed, rerun.n_skipped) == (8 - done, 0, done), rerun
    reference(source, tmp_path / "uninterrupted")
    assert rows(out) == rows(tmp_path / "uninterrupted")
    assert rows(out, "SELECT count(*), count(DISTINCT (video_id, frame_index)) FROM frames") == [(8 * 12, 8 * 12)]
    assert rows(out, EMBEDDINGS_ONCE) == [(8 * 3, 8 * 3, 0)]  # each clip's embedding once, with its clip
    # the index holds the killed run's kept rows and the rerun's, each clip once, as the uninterrupted
    # scan's shard does (if the killed run's lease was still live when the rerun ended, the rerun left
    # the index to it, as it does compaction, and `lavida index`'s update here builds it)
    root = duck.open_out(str(out))
    clip_index.update_index(root, duck.connect(root), "tiny")
    for folder in (out, tmp_path / "uninterrupted"):
        shards = clip_index.ShardSet.load(duck.open_out(str(folder)), "tiny")
        held = shards.search(np.ones(shards.dim, np.float32) / np.sqrt(shards.dim), 100).to_pylist()
        assert len(shards.shards) == 1 and len(held) == len({(h["video_id"], h["clip_index"]) for h in held}) == 8 * 3


def test_two_scans_of_different_folders_into_one_out_at_once(local_ray, tmp_path):
    first = archive(tmp_path / "north", ["n0", "n1", "n2", "n3"])
    second = archive(tmp_path / "south", ["s0", "s1", "s2", "s3"])
    out = tmp_path / "out"
    # 1.5 s a video once both score: 4 commits each, over 6 s
    scans = [
        Scan(folder, out, *MEET, *ONE_BY_ONE, "--commit-every", "1", delay_s=0.5, env=meeting(tmp_path / "meet", folder.name))
        for folder in (first, second)
    ]
    results = [scan.finish() for scan in scans]
    for status, stdout, stderr in results:
        assert status == EXIT_OK, stderr[-4000:]
        assert stdout.strip().endswith("4 ok, 0 failed, 0 skipped"), stdout
    run_ids = [run_id_of(stdout) for _, stdout, _ in results]
    assert_runs_overlapped(str(out), run_ids)
    assert_commits_interleaved(OutTables(str(out)), run_ids)  # at once, not one after the other
    reference(first, tmp_path / "alone-n")
    reference(second, tmp_path / "alone-s")
    assert rows(out) == sorted(rows(tmp_path / "alone-n") + rows(tmp_path / "alone-s"))
    assert rows(out, "SELECT count(*) FROM clips") == [(8 * 3,)]
    assert rows(out, EMBEDDINGS_ONCE) == [(8 * 3, 8 * 3, 0)]
    assert rows(out, "SELECT count(DISTINCT run_id) FROM videos") == [(2,)]


def test_two_scans_of_the_same_folder_at_once_score_each_video_once(local_ray, tmp_path):
    source = archive(tmp_path / "archive", [f"cam{k}" for k in range(6)])
    out = tmp_path / "out"
    scans = [Scan(source, out, *SLOW, "--commit-every", "1") for _ in range(2)]
    results = [scan.finish() for scan in scans]
    counts = []
    for status, stdout, stderr in results:
        assert status == EXIT_OK, stderr[-4000:]
        assert "Traceback" not in stderr
        ok, failed, skipped = map(int, re.search(r"(\d+) ok, (\d+) failed, (\d+) skipped", stdout).groups())
        counts.append((ok, skipped))
    assert sum(ok for ok, _ in counts) == 6 and all(ok + skipped == 6 for ok, skipped in counts), counts
    run_ids = [run_id_of(stdout) for _, stdout, _ in results]
    assert_runs_overlapped(str(out), run_ids)
    # at once: the videos a run skipped were left to the other while it ran, not found done after it
    for (_, _, stderr), (_ok, skipped), other in zip(results, counts, reversed(run_ids), strict=True):
        if skipped:
            assert f"videos are being scanned by another run right now ({other})" in stderr, stderr[-3000:]
    raw = OutTables(str(out)).table("videos").to_pyarrow_table(columns=["video_id"])
    assert raw.num_rows == 6 == len(set(raw["video_id"].to_pylist()))  # no video was scored twice
    reference(source, tmp_path / "alone")
    assert rows(out) == rows(tmp_path / "alone")
    assert rows(out, EMBEDDINGS_ONCE) == [(6 * 3, 6 * 3, 0)]


def test_a_one_hour_video_killed_mid_scan_resumes_from_its_committed_segments(tmp_path):
    # one hour at 2 frames a second (small frames keep the encode short): 7,200 frames, 900 clips of
    # 4 samples at interval 2, cut into segments of 50 clips that commit every second as they finish.
    # --plan-bytes 0: this small file is planned first and its segments decode in parallel tasks (under
    # 16 MiB it would be decoded whole by one task, its clips reaching the detector all at once)
    source = tmp_path / "archive"
    source.mkdir()
    write_video(source / "day.mp4", codec="mpeg4", width=64, height=48, fps=2, n_frames=7200)
    out = tmp_path / "out"
    options = ("--clips-per-segment", "50", "--commit-seconds", "1", "--batch-size", "10", "--plan-bytes", "0")
    scan = Scan(source, out, *SLOW, *options, delay_s=0.01)
    wait_for(lambda: committed(out, "clips") >= 300, scan.process)
    scan.kill()
    kept = committed(out, "clips")
    assert 300 <= kept < 900 and committed(out) == 0
    status, stdout, stderr = Scan(source, out, *FAST, *options).finish()
    assert status == EXIT_OK, stderr[-4000:]
    reported = re.search(r"keeping (\d+) clips of 1 videos", stderr)
    assert reported and int(reported.group(1)) == kept and kept % 50 == 0, stderr[-3000:]  # whole segments kept
    print(f"one-hour video: {reported.group(1)} of 900 clips kept from the killed run, {900 - int(reported.group(1))} redone")
    assert rows(out, "SELECT count(*), count(DISTINCT frame_index), min(frame_index), max(frame_index) FROM frames") == [
        (3600, 3600, 0, 7198)
    ]
    assert rows(out, "SELECT count(*), count(DISTINCT clip_index) FROM clips") == [(900, 900)]
    assert rows(out, EMBEDDINGS_ONCE) == [(900, 900, 0)]  # the kept segments' embeddings too
    assert rows(out, "SELECT len(run_ids) FROM videos") == [(2,)]


# --- OUT on a real S3 server (SeaweedFS on loopback) ----------------------------------------------


@pytest.fixture
def s3(tmp_path):
    """A SeaweedFS of the test's own: the outage test stops and restarts it."""
    from s3_server import start_s3_server

    server = start_s3_server(tmp_path / "s3")
    server.make_bucket("results")
    try:
        yield server
    finally:
        server.stop()


def s3_args(server) -> list[str]:
    return [f"--storage-option={key}={value}" for key, value in server.storage_options.items()]


def s3_rows(server, url: str, query: str = KEYS) -> list[tuple]:
    return duck.connect(url, storage_options=server.storage_options).sql(query).fetchall()


def s3_committed(server, url: str) -> int:
    """Videos committed so far: the `videos` Delta table alone (a DuckDB connection over every view
    reads each table's log from the store: seconds a poll on 2 cores)."""
    try:
        return committed(url, storage_options=server.storage_options)
    except UserError:  # no OUT there yet
        return 0


def test_two_scans_into_one_s3_out_at_once(s3_server, local_ray, tmp_path):
    s3 = s3_server  # the session's SeaweedFS (this test's bucket: concurrency)
    s3.make_bucket("concurrency")
    first = archive(tmp_path / "north", ["n0", "n1", "n2"])
    second = archive(tmp_path / "south", ["s0", "s1", "s2"])
    url = "s3://concurrency/shared"
    scans = [
        Scan(folder, url, *MEET, *ONE_BY_ONE, *s3_args(s3), "--commit-every", "1", delay_s=0.5, env=meeting(tmp_path / "meet", folder.name))
        for folder in (first, second)
    ]
    results = [scan.finish() for scan in scans]
    for status, stdout, stderr in results:
        assert status == EXIT_OK, stderr[-4000:]
        assert stdout.strip().endswith("3 ok, 0 failed, 0 skipped"), stdout
    run_ids = [run_id_of(stdout) for _, stdout, _ in results]
    assert_runs_overlapped(url, run_ids, s3.storage_options)
    assert_commits_interleaved(OutTables(url, s3.storage_options), run_ids)  # at once, not one after the other
    reference(first, tmp_path / "alone-n")
    reference(second, tmp_path / "alone-s")
    assert s3_rows(s3, url) == sorted(rows(tmp_path / "alone-n") + rows(tmp_path / "alone-s"))


def test_an_s3_outage_mid_run_is_one_line_and_a_rerun_loses_and_repeats_nothing(s3, local_ray, tmp_path):
    source = archive(tmp_path / "archive", [f"cam{k}" for k in range(6)])
    url = "s3://results/out"
    scan = Scan(source, url, *SLOW, *ONE_BY_ONE, *s3_args(s3), "--commit-every", "1", delay_s=1.0)
    wait_for(lambda: s3_committed(s3, url) >= 1, scan.process)
    s3.stop()  # the outage (SIGTERM, then SIGKILL after 3 s: SeaweedFS's own shutdown takes ~25 s)
    status, stdout, stderr = scan.finish(timeout=240)
    last = stderr.strip().splitlines()[-1]
    # one line naming OUT: the commit it could not make, or the store that stopped answering (whichever met the outage first)
    said = re.match(r"lavida scan: error: (cannot .*|s3://results/out: the S3 endpoint does not answer)", last)
    assert status == 2 and said and url in last, stderr[-3000:]
    # ... and what the run kept, and what to do
    assert re.search(r"; [1-5] of 6 videos were committed by this run .* run the same command again to resume", last), last
    assert "Traceback" not in stderr
    s3.restart()
    done = s3_committed(s3, url)
    line = scanned(source, url, *FAST, *s3_args(s3))
    assert line.endswith(f"{6 - done} ok, 0 failed, {done} skipped"), line
    reference(source, tmp_path / "uninterrupted")
    assert s3_rows(s3, url) == rows(tmp_path / "uninterrupted")  # 0 lost, 0 duplicated
