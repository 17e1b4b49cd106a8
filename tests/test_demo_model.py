"""The shipped demo model (models/demo, trained by `lavida train --config models/demo_train.json`)
detects the anomaly in generated videos it never saw: its scores are higher on the frames that show
the named shape than on the normal frames."""

from __future__ import annotations

import json

import numpy as np
from sklearn.metrics import roc_auc_score

from jobs.demo import DEMO_MODEL, demo_shapes
from lavida_core.detector import LavidaDetector
from lavida_core.synthetic_shapes import disjoint_anomaly_videos


def _scores(detector: LavidaDetector, videos) -> list[np.ndarray]:
    names = sorted({v.anomaly_type for v in videos})
    return [np.concatenate([detector.detect(v.frames[i : i + 8], names).scores for i in (0, 8)]) for v in videos]


def test_shipped_weights_are_a_trained_model_folder():
    meta = json.loads((DEMO_MODEL / "lavida.json").read_text())
    assert meta["trained"] is True and meta["config"]["name"] == "tiny"
    assert (DEMO_MODEL / "model.safetensors").stat().st_size < 8 * 2**20  # a few MB, committed in the repo


def test_shipped_weights_score_anomalous_frames_above_normal_ones():
    detector = LavidaDetector.load(str(DEMO_MODEL))
    assert detector.trained
    # Seed 31: videos no training or evaluation set used; the anomaly is a seen colour-shape combination.
    videos = disjoint_anomaly_videos(demo_shapes(n_frames=16, seed=31), 8, max_types=4)
    scores = _scores(detector, videos)
    for video, score in zip(videos, scores):
        assert score[video.frame_labels].mean() > score[~video.frame_labels].mean(), video.video_id
    pooled = roc_auc_score(np.concatenate([v.frame_labels for v in videos]), np.concatenate(scores))
    assert pooled > 0.85


def test_shipped_weights_find_novel_combinations_too():
    """Names composed from words seen in training, never together: weaker, still well above chance."""
    detector = LavidaDetector.load(str(DEMO_MODEL))
    videos = disjoint_anomaly_videos(demo_shapes(n_frames=16, seed=31), 8, novel=(True,), max_types=4)
    scores = _scores(detector, videos)
    pooled = roc_auc_score(np.concatenate([v.frame_labels for v in videos]), np.concatenate(scores))
    assert pooled > 0.7
