"""lavida_core/vad_metrics.py against sklearn on hand-made score/label arrays."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, roc_auc_score

from lavida_core.errors import InputError
from lavida_core.vad_metrics import (
    PixelAuc,
    extended_score,
    logits_from_scores,
    micro_score,
    nearest_resize,
    per_video_mean,
    pixel_auc,
    scores_to_frames,
)


def test_scores_repeat_sample_interval_times_and_the_tail_to_the_end():
    # 10 frames sampled every 4: frames 0, 4, 8; the last sample covers 8..9 (the video's end)
    frames = scores_to_frames(np.array([0, 4, 8]), np.array([0.1, 0.5, 0.9]), 10)
    assert frames.tolist() == [0.1] * 4 + [0.5] * 4 + [0.9] * 2
    # same as the reference's repeat_interleave(scores, s) cut to the video's length
    scores = np.array([0.3, 0.7, 0.2, 0.4])
    assert np.array_equal(scores_to_frames(np.arange(0, 13, 4), scores, 13), np.repeat(scores, 4)[:13])


def test_scores_to_frames_repeats_the_last_clip_when_samples_stop_early():
    # the decoder gave fewer frames than the labels cover: the last score goes on to the end
    frames = scores_to_frames(np.array([2, 0]), np.array([0.8, 0.2]), 6)  # any order
    assert frames.tolist() == [0.2, 0.2, 0.8, 0.8, 0.8, 0.8]
    assert scores_to_frames(np.array([3]), np.array([0.5]), 2).tolist() == [0.5, 0.5]  # before the first sample
    assert scores_to_frames(np.zeros(0), np.zeros(0), 0).shape == (0,)
    with pytest.raises(InputError):
        scores_to_frames(np.zeros(0), np.zeros(0), 3)


def test_extended_score_appends_a_zero_and_a_one():
    labels = np.array([0, 0, 1, 1, 0])
    scores = np.array([0.2, 0.9, 0.8, 0.3, 0.1])
    expected = roc_auc_score([0, 0, 0, 1, 1, 0, 1], [0.0, 0.2, 0.9, 0.8, 0.3, 0.1, 1.0])
    assert extended_score(labels, scores) == pytest.approx(expected)
    assert extended_score(labels, scores) != pytest.approx(roc_auc_score(labels, scores))  # the end points count
    expected_ap = average_precision_score([0, 0, 0, 1, 1, 0, 1], [0.0, 0.2, 0.9, 0.8, 0.3, 0.1, 1.0])
    assert extended_score(labels, scores, "ap") == pytest.approx(expected_ap)
    # a single-class video still has a value: the end points supply the other class
    assert extended_score(np.zeros(3), np.array([0.1, 0.5, 0.9])) == pytest.approx(roc_auc_score([0, 0, 0, 0, 1], [0, 0.1, 0.5, 0.9, 1]))


def test_micro_score_pools_frames_of_all_videos():
    a = (np.array([0, 1, 1, 0]), np.array([0.1, 0.7, 0.6, 0.65]))
    b = (np.array([0, 0, 0]), np.array([0.9, 0.2, 0.3]))  # a normal video with a false alarm
    pooled_labels = np.concatenate(([0], a[0], b[0], [1]))
    pooled_scores = np.concatenate(([0], a[1], b[1], [1]))
    assert micro_score([a, b]) == pytest.approx(roc_auc_score(pooled_labels, pooled_scores))
    assert micro_score([a, b], "ap") == pytest.approx(average_precision_score(pooled_labels, pooled_scores))
    # not the mean of per-video AUCs
    assert micro_score([a, b]) != pytest.approx((extended_score(*a) + extended_score(*b)) / 2)
    with pytest.raises(InputError):
        micro_score([])


def test_per_video_mean_skips_single_class_videos_and_says_how_many():
    a = (np.array([0, 1, 1, 0]), np.array([0.1, 0.7, 0.6, 0.65]))
    c = (np.array([1, 0, 0, 1, 0]), np.array([0.5, 0.4, 0.6, 0.9, 0.1]))
    normal = (np.array([0, 0, 0]), np.array([0.9, 0.2, 0.3]))
    anomalous = (np.array([1, 1]), np.array([0.9, 0.2]))
    result = per_video_mean([a, normal, c, anomalous])
    assert (result.n_used, result.n_skipped) == (2, 2)
    assert result.mean == pytest.approx((extended_score(*a) + extended_score(*c)) / 2)
    assert per_video_mean([normal]).mean is None


def test_per_video_mean_over_all_videos_as_the_reference():
    normal = (np.array([0, 0, 0]), np.array([0.9, 0.2, 0.3]))
    a = (np.array([0, 1, 1, 0]), np.array([0.1, 0.7, 0.6, 0.65]))
    result = per_video_mean([a, normal], skip_single_class=False)
    # normal with end points: the appended 1 (label 1, score 1) above all four negatives: AUC 1
    assert (result.n_used, result.n_skipped) == (2, 0) and result.mean == pytest.approx((extended_score(*a) + 1.0) / 2)


def test_logits_from_scores_inverts_the_float32_sigmoid_and_saturates_finitely():
    logits = np.array([-12.0, -1.5, 0.0, 0.75, 9.0])
    scores = (1 / (1 + np.exp(-logits))).astype(np.float32)
    np.testing.assert_allclose(logits_from_scores(scores), logits, atol=1e-3)  # float32 steps near 1 are ~6e-8
    assert np.all(np.diff(logits_from_scores(scores)) > 0)  # the ranking is kept
    assert logits_from_scores(np.array([0.0, 1.0])).tolist() == [-1e4, 1e4]


def test_pixel_auc_of_continuous_maps_merged_in_many_chunks(monkeypatch):
    from lavida_core import vad_metrics

    monkeypatch.setattr(vad_metrics, "PENDING_VALUES", 50)  # force many pending merges
    rng = np.random.default_rng(2)
    chunks = [(rng.normal(size=(2, 5, 5)), rng.random((2, 5, 5)) > 0.6) for _ in range(30)]  # nearly all values distinct
    expected = roc_auc_score(np.concatenate([t.reshape(-1) for _, t in chunks]), np.concatenate([p.reshape(-1) for p, _ in chunks]))
    assert pixel_auc(chunks) == pytest.approx(expected, abs=1e-12)


def test_nearest_resize_matches_torch_nearest():
    import torch

    rng = np.random.default_rng(0)
    maps = rng.random((2, 5, 7)).astype(np.float32)
    for size in [(10, 14), (3, 4), (5, 7), (8, 3)]:
        expected = torch.nn.functional.interpolate(torch.from_numpy(maps)[:, None], size=size, mode="nearest")[:, 0].numpy()
        assert np.array_equal(nearest_resize(maps, size), expected)


def test_pixel_auc_pools_all_pixels_after_resize_like_sklearn():
    rng = np.random.default_rng(1)
    truth = [rng.random((3, 8, 12)) > 0.7, rng.random((2, 6, 6)) > 0.5]  # ground truth at two sizes
    predicted = [rng.random((3, 4, 6)).round(1), (rng.random((2, 6, 6)) * 3).round()]  # ties on purpose
    expected = roc_auc_score(
        np.concatenate([t.reshape(-1) for t in truth]),
        np.concatenate([nearest_resize(p, t.shape[1:]).reshape(-1) for p, t in zip(predicted, truth)]),
    )
    assert pixel_auc(zip(predicted, truth)) == pytest.approx(expected, abs=1e-12)
    accumulator = PixelAuc()
    for p, t in zip(predicted, truth):
        accumulator.add(p, t)
    assert accumulator.n_pixels == 3 * 8 * 12 + 2 * 6 * 6


def test_pixel_auc_of_binary_masks_and_perfect_maps():
    truth = np.zeros((1, 4, 4), dtype=bool)
    truth[0, 1:3, 1:3] = True
    assert pixel_auc([(truth.astype(float), truth)]) == 1.0
    assert pixel_auc([(1.0 - truth, truth)]) == 0.0
    assert pixel_auc([(np.zeros((1, 2, 2)), truth)]) == 0.5  # all tied
    with pytest.raises(InputError):
        pixel_auc([(np.zeros((1, 2, 2)), np.zeros((1, 4, 4)))])  # no anomalous pixel


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_pixel_auc_equals_sklearn_property(data):
    n = data.draw(st.integers(2, 60))
    labels = np.array(data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    scores = np.array(data.draw(st.lists(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9, 1.0]), min_size=n, max_size=n)))
    if labels.min() == labels.max():
        labels[0] = 1 - labels[0]
    value = pixel_auc([(scores.reshape(1, 1, n), labels.reshape(1, 1, n))])
    assert value == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
