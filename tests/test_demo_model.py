"""The shipped demo model (models/demo, trained by `lavida train --config models/demo_train.json`)
detects the anomaly in generated videos it never saw: its scores are higher on the frames that show
the named shape than on the normal frames."""

from __future__ import annotations

import json

import numpy as np
from sklearn.metrics import roc_auc_score

from jobs.demo import demo_shapes
from lavida_core.detector import LavidaDetector
from lavida_core.model_folders import SHIPPED_MODELS
from lavida_core.training.synthetic_shapes import disjoint_anomaly_videos

DEMO_MODEL = SHIPPED_MODELS["demo"]


def _scores(detector: LavidaDetector, videos) -> list[np.ndarray]:
    names = sorted({v.anomaly_type for v in videos})
    return [np.concatenate([detector.detect(v.frames[i : i + 8], names).scores for i in (0, 8)]) for v in videos]


def test_shipped_weights_are_a_trained_model_folder():
    meta = json.loads((DEMO_MODEL / "lavida.json").read_text())
    assert meta["trained"] is True and meta["config"]["name"] == "tiny"
    assert meta["card"]["warning"] == "synthetic coloured shapes: not for real footage"
    assert (DEMO_MODEL / "model.safetensors").stat().st_size < 8 * 2**20  # a few MB, committed in the repo


def _pooled(videos, scores) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([v.frame_labels for v in videos]), np.concatenate(scores)


def test_shipped_weights_score_anomalous_frames_above_normal_ones():
    detector = LavidaDetector.load("demo")
    assert detector.trained
    # Seed 31: videos that no training or evaluation set used; anomalies are seen colour-shape combinations.
    videos = disjoint_anomaly_videos(demo_shapes(n_frames=16, seed=31), 8, max_types=4)
    scores = _scores(detector, videos)
    gaps = [s[v.frame_labels].mean() - s[~v.frame_labels].mean() for v, s in zip(videos, scores)]
    assert sum(gap > 0 for gap in gaps) >= 6, gaps  # measured: 7 of 8, mean gap 0.31
    labels, pooled = _pooled(videos, scores)
    assert pooled[labels].mean() > pooled[~labels].mean() + 0.2
    assert roc_auc_score(labels, pooled) > 0.75  # measured 0.84 (lavida eval on 20 videos, seed 7: 0.95)


def test_shipped_weights_find_novel_combinations_too():
    """Names composed from words seen in training, never together: weaker, still above chance."""
    detector = LavidaDetector.load(str(DEMO_MODEL))
    videos = disjoint_anomaly_videos(demo_shapes(n_frames=16, seed=31), 8, novel=(True,), max_types=4)
    labels, pooled = _pooled(videos, _scores(detector, videos))
    assert roc_auc_score(labels, pooled) > 0.65  # measured 0.75 (lavida eval on 20 videos, seed 7: 0.83)
