"""The documented cluster path: a head started as cluster.yaml starts it (dashboard and job server on),
and a scan submitted with `ray job submit --working-dir .`, which runs on that cluster."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from ray_cluster import ray_binary, start_head
from video_factory import write_video

from jobs.out import duck

pytestmark = pytest.mark.slow  # a Ray head with its dashboard, and a submitted job

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def head():
    cluster = start_head(num_cpus=3, dashboard=True)
    yield cluster
    cluster.stop()


def test_ray_job_submit_runs_the_scan_on_the_cluster(head, tmp_path):
    archive, out = tmp_path / "archive", tmp_path / "out"
    archive.mkdir()
    write_video(archive / "cam1.mp4", width=64, height=48, n_frames=12)
    submit = [
        ray_binary(), "job", "submit", "--address", head.dashboard_url, "--working-dir", str(ROOT), "--",
        sys.executable, "-m", "jobs.cli", "scan", str(archive), "--out", str(out), "--anomaly", "fire",
        "--detector-class", "fake_detector:BrightDetector",
    ]  # fmt: skip
    result = subprocess.run(submit, cwd=ROOT, env=head.env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert "1 ok, 0 failed, 0 skipped" in result.stdout
    assert "succeeded" in result.stdout
    assert "Ray: the cluster of this submitted job" in result.stdout  # not a local Ray inside the job
    assert duck.connect(str(out)).sql("select count(*) from videos").fetchall() == [(1,)]
