"""Loading a model folder never materialises weights a file will overwrite: parameters are created on
the meta device and each tensor is read straight to its device and dtype (lavida_core.checkpoint)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lavida_core.checkpoint import build_lavida, load_lavida, save_lavida
from lavida_core.config import preset
from lavida_core.detector import LavidaDetector

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from bench_load import measure, write_folder  # noqa: E402

# Host memory a load may add, over the loaded parameters' bytes: the issue's target is 1.15 on CPU
# (bench/RESULTS.md: 1.02 measured); generous here so that allocator noise never fails the suite.
LOAD_RSS_BOUND = 1.3


@pytest.mark.slow  # loads in a fresh subprocess, so that its peak RSS is the load's own
def test_loading_a_model_folder_adds_about_its_parameter_bytes(tmp_path):
    write_folder("small", tmp_path / "model")  # ~140 M parameters, float32
    new = measure(tmp_path / "model", "new")
    assert new["added_rss"] / new["param_bytes"] <= LOAD_RSS_BOUND
    old = measure(tmp_path / "model", "old")  # the measurement itself tells the two paths apart
    assert old["added_rss"] / old["param_bytes"] > 1.8


def test_a_folder_loads_straight_into_bfloat16_with_the_same_outputs(tmp_path):
    loaded = build_lavida(preset("tiny"))
    loaded.trained = True
    save_lavida(loaded, tmp_path / "m")
    half = load_lavida(tmp_path / "m", dtype=torch.bfloat16)
    assert {p.dtype for p in half.model.parameters()} == {torch.bfloat16}
    assert not any(p.is_meta for p in half.model.parameters())
    clip = np.random.default_rng(3).integers(0, 255, (4, 48, 64, 3), dtype=np.uint8)
    full = LavidaDetector(load_lavida(tmp_path / "m"), model_name="m").detect(clip, ["fire"])
    again = LavidaDetector(load_lavida(tmp_path / "m"), model_name="m").detect(clip, ["fire"])
    bf16 = LavidaDetector(half, model_name="m", dtype="bfloat16").detect(clip, ["fire"])
    np.testing.assert_array_equal(full.scores, again.scores)
    np.testing.assert_allclose(full.scores, bf16.scores, atol=2e-2)
