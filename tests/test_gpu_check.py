"""bench/gpu_check.py, the one command for a GPU machine, runs its same code on a reduced config on the
CPU (`--preset small --device cpu`), so that it cannot rot between the sessions that get a GPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a subprocess with its own local Ray

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_small_on_cpu_prints_its_three_tables():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "bench/gpu_check.py", "--preset", "small", "--device", "cpu", "--repeats", "1"]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    for title in ("detect (clips of 8 frames)", "scan", "train (5 steps, gradient checkpointing on)"):
        assert title in lines, result.stdout
    detect = lines[lines.index("detect (clips of 8 frames)") + 2 : lines.index("scan") - 1]
    assert [row.split(" | ")[0] for row in detect] == ["1", "2", "4"]  # one row per batch size
    assert all(float(row.split(" | ")[1]) > 0 for row in detect)  # clips/s measured
    scan = lines[lines.index("scan") + 2].split(" | ")
    assert scan[0] == "4" and scan[-1] == "4"  # 4 generated videos, all scanned ok
