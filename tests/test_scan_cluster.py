"""`lavida scan` (the CLI, in a subprocess) on a local Ray cluster of two nodes started by the test.

The head and the worker node have one CPU each: the detector actor holds one CPU for the whole run,
so the decode tasks must run on the other node, and a run finishes only if both nodes work. The
worker also declares a (LOGICAL) GPU: a scan with --gpus-per-actor 1 puts its detector there and its
decoding on the CPU-only head, as cluster.yaml's gpu_workers and cpu_worker split a real cluster.
The driver is a separate process, so the test can kill -9 it mid-run like a crashed nightly job.
"""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from ray_cluster import start_head
from video_factory import make_archive, write_video

from jobs.common.errors import EXIT_FAILED_VIDEOS, EXIT_OK
from jobs.out import duck
from jobs.out.tables import OutTables

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
FAKE = ["--detector-class", "fake_detector:BrightDetector"]  # FAKE detector: deterministic rows to compare
SLOW = ["--detector-class", "fake_detector:SlowBrightDetector"]  # FAKE, DELAY_S seconds a clip: a kill lands mid-run
DELAY_S = 0.2


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    # the detector actors read the delay (and where to record their placement) from their raylet's
    # environment (cluster.env), not the driver's
    placements = tmp_path_factory.mktemp("placements")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LAVIDA_FAKE_DELAY_S", str(DELAY_S))
        env.setenv("LAVIDA_FAKE_GPU_LOG", str(placements))
        cluster = start_head(num_cpus=1)  # cluster.env: this environment, for every node of the cluster
    cluster.placements = placements
    try:
        cluster.add_worker(num_cpus=1, num_gpus=1)  # a GPU node whose one CPU a detector actor holds
        yield cluster
    finally:
        cluster.stop()


def scan_command(source, out, *extra):
    return [sys.executable, "-m", "jobs.cli", "scan", str(source), "--out", str(out), *extra]


def run_scan(env, source, out, *extra, timeout=300, status=EXIT_OK):
    result = subprocess.run(scan_command(source, out, *extra), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == status, result.stderr[-4000:]
    return result.stdout.strip().splitlines()[-1]  # "run <id>: N ok, N failed, N skipped[; list the failed videos with: …]"


def sql(out, query):
    return duck.connect(str(out)).sql(query).fetchall()


def committed_videos(out) -> int:
    """Videos committed so far, read from the Delta table while the scan writes it."""
    table = OutTables(str(out)).table("videos")
    return 0 if table is None else table.to_pyarrow_table(columns=["video_id"]).num_rows


COMPARED = {
    "frames": "select video_id, uri, clip_index, frame_index, timestamp_s, score, mask_rle from frames order by 1, 4",
    "clips": "select video_id, clip_index, frame_indices, start_s, end_s, max_score, anomaly_types from clips order by 1, 2",
    "videos": (
        "select video_id, uri, status, error, n_frames, fps, duration_s, width, height, n_sampled_frames, n_clips from videos order by 1"
    ),
}


def test_two_node_rows_equal_single_node(cluster, tmp_path):
    archive = tmp_path / "archive"
    expected = make_archive(archive)
    options = ["--sample-interval", "3", "--frames-per-clip", "4", "--anomaly", "fire", *FAKE]
    # single node: the CLI starts its own local Ray (2 CPUs) in its own temp dir
    ray_tmp = tempfile.mkdtemp(prefix="lvl", dir="/tmp")  # short: Ray's socket paths must stay short
    try:
        single = run_scan({**cluster.env, "RAY_TMPDIR": ray_tmp}, archive, tmp_path / "single", *options, status=EXIT_FAILED_VIDEOS)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    # two nodes: the detector (one GPU and the one CPU of the GPU node) on the worker, decoding on the
    # head, the only node with a CPU left: the split of cluster.yaml's GPU and CPU-only nodes
    on_gpu = ["--gpus-per-actor", "1", "--detector-class", "fake_detector:PlacementDetector"]  # FAKE: BrightDetector's rows
    two = run_scan(cluster.env, archive, tmp_path / "two", *options, *on_gpu, "--ray-address", cluster.address, status=EXIT_FAILED_VIDEOS)
    placed = [json.loads(path.read_text()) for path in cluster.placements.glob("*.json")]
    assert placed and all(p["node"] == {"CPU": 1.0, "GPU": 1.0} and p["held"] == {"CPU": 1.0, "GPU": 1.0} for p in placed), placed
    n_ok = sum(s == "ok" for s in expected.values())
    for line in (single, two):
        assert f"{n_ok} ok, {len(expected) - n_ok} failed, 0 skipped; list the failed videos with" in line, line
    for name, query in COMPARED.items():
        rows = sql(tmp_path / "two", query)
        assert rows == sql(tmp_path / "single", query), name
        assert rows, name


def test_kill_driver_mid_run_then_rerun(cluster, tmp_path):
    archive = tmp_path / "archive"
    archive.mkdir()
    n_videos, n_frames, interval = 10, 60, 2
    for k in range(n_videos):
        write_video(archive / f"cam{k:02d}.mp4", width=64, height=48, n_frames=n_frames)
    out = tmp_path / "out"
    # --plan-bytes 0: videos reach the detector one by one (small files are otherwise decoded 8 to a task)
    options = ["--sample-interval", str(interval), "--frames-per-clip", "4", "--batch-size", "1", "--ray-address", cluster.address,
               "--commit-every", "2", "--plan-bytes", "0"]  # fmt: skip
    # SlowBrightDetector: 8 clips a video at DELAY_S each, a batch of 2 videos takes >= 3.2 s on any machine
    log = tmp_path / "killed.log"
    with open(log, "w") as stderr:
        command = scan_command(archive, out, *options, *SLOW)
        driver = subprocess.Popen(command, cwd=ROOT, env=cluster.env, stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + 240
    while not committed_videos(out):  # the first batch of 2 is committed: the next one is under way
        assert driver.poll() is None, "the scan ended before its first commit: " + log.read_text()[-3000:]
        assert time.monotonic() < deadline, "no commit within 240 s"
        time.sleep(0.05)
    assert driver.poll() is None, "the scan ended before the kill"
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    committed = committed_videos(out)
    assert 0 < committed < n_videos, f"the kill did not land mid-run ({committed} of {n_videos} committed)"

    line = run_scan(cluster.env, archive, out, *options, *FAKE)
    assert line.endswith(f"{n_videos - committed} ok, 0 failed, {committed} skipped"), line
    per_video = math.ceil(n_frames / interval)
    assert sql(out, "select count(*), count(distinct (video_id, frame_index)), count(distinct video_id) from frames") == [
        (n_videos * per_video, n_videos * per_video, n_videos)
    ]
    assert sql(out, "select count(*) from frames where frame_index % 2 <> 0") == [(0,)]
    assert sql(out, "select count(*), count(distinct video_id) from videos where status = 'ok'") == [(n_videos, n_videos)]
    assert sql(out, "select count(*), count(finished_at) from runs") == [(2, 1)]  # the killed run is there, never finished


def test_fractional_gpu_actors_share_one_gpu(tmp_path, monkeypatch):
    """Two detector actors of half a GPU each on a node with one (LOGICAL: the machine has none, Ray
    only schedules on it): both start, both are given GPU 0, and the scan completes."""
    archive = tmp_path / "archive"
    archive.mkdir()
    for k in range(4):
        write_video(archive / f"cam{k}.mp4", width=64, height=48, n_frames=24)
    records = tmp_path / "gpus"
    records.mkdir()
    monkeypatch.setenv("LAVIDA_FAKE_GPU_LOG", str(records))  # the head's workers inherit it
    head = start_head(num_cpus=4, num_gpus=1)  # CPUs for the decode tasks beside the actors
    try:
        fake = ["--detector-class", "fake_detector:GpuShareDetector"]
        options = ["--anomaly", "fire", "--ray-address", head.address, "--num-actors", "2", "--gpus-per-actor", "0.5", *fake]
        command = scan_command(archive, tmp_path / "out", *options)
        result = subprocess.run(command, cwd=ROOT, env=head.env, capture_output=True, text=True, timeout=300)
        # 4 actors of a quarter GPU would take all 4 CPUs and leave none to decode: refused, not a hang
        crowded = [*options, "--num-actors", "4", "--gpus-per-actor", "0.25"]
        refused = subprocess.run(
            scan_command(archive, tmp_path / "out2", *crowded), cwd=ROOT, env=head.env, capture_output=True, text=True, timeout=120
        )
    finally:
        head.stop()
    assert refused.returncode == 2 and "take one CPU each" in refused.stderr.strip().splitlines()[-1], refused.stderr[-2000:]
    assert result.returncode == EXIT_OK, result.stderr[-4000:]
    assert "4 ok, 0 failed, 0 skipped" in result.stdout
    actors = {path.stem: path.read_text() for path in records.glob("*.txt")}
    assert len(actors) >= 2 and set(actors.values()) == {"gpu_ids=[0] cuda_visible=0"}, actors
