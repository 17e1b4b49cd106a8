"""`lavida train --workers 2`: two Ray Train workers (gloo on CPU) on a local Ray started here."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from jobs.cli import main
from jobs.train.state import CHECKPOINTS_DIR, LOSS_CSV, MODEL_DIR
from lavida_core.checkpoint import load_lavida

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
STEPS = 3


def test_two_workers_take_the_configured_steps(local_ray, tmp_path):
    config = tmp_path / "train.json"
    config.write_text(
        json.dumps(
            {
                "model": "tiny",
                "synthetic_shapes": {"n_videos": 6, "n_frames": 4},
                "sampler": {"n_anomalies": 4, "frames_per_clip": 4},
                "train": {"steps": STEPS, "batch_size": 1, "grad_accum": 1, "checkpoint_every": 2, "log_every": 1},
            }
        )
    )
    out = tmp_path / "out"
    assert main(["train", "--config", str(config), "--out", str(out), "--workers", "2"]) == 0
    with open(out / LOSS_CSV, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == list(range(1, STEPS + 1))
    assert all(math.isfinite(float(r["total"])) for r in rows)
    assert sorted(p.name for p in (out / CHECKPOINTS_DIR).iterdir()) == ["step_000002", f"step_{STEPS:06d}"]
    state = json.loads((out / CHECKPOINTS_DIR / f"step_{STEPS:06d}" / "state.json").read_text())
    assert state["step"] == STEPS
    assert load_lavida(out / MODEL_DIR).trained
