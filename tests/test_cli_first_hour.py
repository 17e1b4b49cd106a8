"""What a new or hurried user runs, through the real CLI in a subprocess (from a folder outside the
clone): one-line errors and documented exit codes, Ctrl-C then resume, `--model demo` with its model
card in `runs` and in the report, the report's event player, and Ray addresses that do not answer."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from video_factory import write_text, write_video

from jobs.common.errors import EXIT_FAILED_VIDEOS, EXIT_INTERRUPTED, EXIT_OK, EXIT_USER_ERROR

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def lavida(*args: object, cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "jobs.cli", *map(str, args)]
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout)


def one_line_error(result: subprocess.CompletedProcess, code: int, *words: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert all(word in last for word in words), last


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("archive")
    write_video(folder / "cam1.mp4", width=64, height=48, n_frames=24)
    write_text(folder / "notes.mp4")  # not a video: a failed `videos` row
    return folder


def test_bad_paths_are_one_line_errors(archive, tmp_path):
    a_file = tmp_path / "some_file.txt"
    a_file.write_text("x")
    one_line_error(lavida("scan", archive, "--out", a_file, cwd=tmp_path), EXIT_USER_ERROR, "--out", "is a file")
    one_line_error(lavida("scan", archive, "--out", archive, cwd=tmp_path), EXIT_USER_ERROR, "not a lavida OUT")
    for command in (["events", archive], ["query", archive, "SELECT 1"], ["report", archive, "--to", tmp_path / "r"]):
        one_line_error(lavida(*command, cwd=tmp_path), EXIT_USER_ERROR, "is not a lavida OUT")
    assert not (tmp_path / "r").exists()


def test_a_dead_ray_address_fails_at_once_and_a_leftover_one_is_ignored(archive, tmp_path):
    out = tmp_path / "out"
    one_line_error(lavida("scan", archive, "--out", out, "--ray-address", "127.0.0.1:9", cwd=tmp_path, timeout=60),
                   EXIT_USER_ERROR, "127.0.0.1:9", "no Ray cluster answers")  # fmt: skip
    assert not out.exists()  # refused before anything was written
    # a cluster address left in the environment (as an earlier `ray start` leaves): a scan without
    # --ray-address runs on its own local Ray instead of trying to join it; and a normal run is quiet
    good = tmp_path / "good"
    good.mkdir()
    write_video(good / "cam1.mp4", width=64, height=48, n_frames=12)
    result = lavida("scan", good, "--out", out, "--anomaly", "x", cwd=tmp_path, env={"RAY_ADDRESS": "127.0.0.1:9"})
    assert result.returncode == EXIT_OK, result.stderr
    assert "\x1b[" not in result.stderr  # no colour codes in a redirected log
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line or " E " in line]
    assert all("core_worker" in line and "constructor arguments" in line for line in errors), errors  # Ray's own, see README


def test_failed_videos_exit_3_and_the_demo_model_card_shows_everywhere(archive, tmp_path):
    out, report = tmp_path / "out", tmp_path / "report"
    result = lavida(
        "scan", archive, "--out", out, "--model", "demo", "--anomaly", "red circle", "--sample-interval", "2", "--dtype", "bfloat16",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == EXIT_FAILED_VIDEOS, result.stderr
    assert "1 ok, 1 failed" in result.stdout and "WHERE status <> 'ok'" in result.stdout  # how to list them
    assert "not for real footage" in result.stderr  # the model card in the log

    query = lavida("query", out, "SELECT model, model_trained, model_card FROM runs", "--format", "json", cwd=tmp_path)
    [run] = json.loads(query.stdout)
    assert (run["model"], run["model_trained"]) == ("demo", True)
    assert "trained weights: yes" in run["model_card"] and "synthetic coloured shapes: not for real footage" in run["model_card"]

    assert lavida("report", out, "--to", report, "--min-score", "0", "--min-duration", "0", cwd=tmp_path).returncode == EXIT_OK
    page = (report / "index.html").read_text(encoding="utf-8")
    assert "synthetic coloured shapes: not for real footage" in page
    events = json.loads(lavida("events", out, "--min-score", "0", "--min-duration", "0", "--format", "json", cwd=tmp_path).stdout)
    players = _players(page)
    assert players and players[0]["src"] == f"{(archive / 'cam1.mp4').as_uri()}#t={events[0]['start_s']:.3f},{events[0]['end_s']:.3f}"


def test_sigint_mid_scan_stops_cleanly_and_a_rerun_resumes(tmp_path):
    folder, out = tmp_path / "archive", tmp_path / "out"
    folder.mkdir()
    for k in range(6):
        write_video(folder / f"v{k}.mp4", width=64, height=48, n_frames=40)
    # FAKE detector that takes 0.3 s a clip (60 clips): the run is still going when the signal comes.
    # --plan-bytes 0: each video decoded by tasks of its own, so videos reach the detector (and OUT) one
    # by one; small files are otherwise decoded 8 to a task and all six would commit together
    command = [sys.executable, "-m", "jobs.cli", "scan", folder, "--out", out, "--sample-interval", "1", "--frames-per-clip", "4",
               "--batch-size", "1", "--anomaly", "x", "--commit-every", "1", "--plan-bytes", "0",
               "--detector-class", "fake_detector:SlowBrightDetector"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}", "OMP_NUM_THREADS": "1", "LAVIDA_FAKE_DELAY_S": "0.3"}
    # the default SIGINT disposition in the child, whatever this process inherited (a shell's background
    # job ignores SIGINT, and so would the scan, which then never sees the Ctrl-C this test sends)
    scan = subprocess.Popen(list(map(str, command)), cwd=tmp_path, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    for line in scan.stderr:  # the first video committed
        if "[1/6" in line:
            break
    scan.send_signal(signal.SIGINT)
    stopped = time.monotonic()
    stdout, stderr = scan.communicate(timeout=60)
    assert scan.returncode == EXIT_INTERRUPTED, stderr
    assert time.monotonic() - stopped < 30  # "within seconds", generously
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert "interrupted" in last and "run the same command again to resume" in last and "of 6 videos were committed" in last
    assert re.search(r"\b[1-5] of 6 videos were committed", last), last  # the signal landed mid-run

    # the same command again; its detector need not be slow now (FAKE scores do not depend on the delay)
    rerun = subprocess.run(list(map(str, command)), cwd=tmp_path, env={**env, "LAVIDA_FAKE_DELAY_S": "0"}, capture_output=True, text=True,
                           timeout=300)  # fmt: skip
    assert rerun.returncode == EXIT_OK, rerun.stderr
    assert "skipped" in rerun.stdout and " 0 skipped" not in rerun.stdout  # what the first run committed was kept
    sql = "SELECT count(DISTINCT video_id) AS v, count(*) AS f, count(DISTINCT (video_id, frame_index)) AS k FROM frames"
    counts = lavida("query", out, sql, "--format", "json", cwd=tmp_path)
    assert json.loads(counts.stdout) == [{"v": 6, "f": 6 * 40, "k": 6 * 40}]  # every frame once


class _Players(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.players: list[dict] = []

    def handle_starttag(self, tag, attrs):
        if tag == "video":
            self.players.append(dict(attrs))


def _players(page: str) -> list[dict]:
    parser = _Players()
    parser.feed(page)
    return parser.players
