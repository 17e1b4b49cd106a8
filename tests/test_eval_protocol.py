"""`lavida eval --protocol`: each choice of the reference protocol against a hand-computed number
(issue 14, items 13-17), through jobs.eval.evaluate.metrics_of (pure: no OUT, no Ray) and the readers.

Hand computations are in the comments next to each expectation; AUC = the share of (anomalous,
normal) frame pairs ranked the right way, ties counting one half.
"""

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from benchmark_layouts import Spec, write_shanghaitech, write_ubnormal, write_ucsd_ped2

from jobs.eval.evaluate import EvalResult, ScoredVideo, format_result, metrics_of
from jobs.eval.vad_datasets import BENCHMARKS, Benchmark, BenchmarkVideo, ExplicitLabels
from lavida_core.vad_metrics import NO_OBJECT_LOGIT, reference_pixel_logits, reference_pixel_truth


@dataclass(frozen=True)
class GivenMasks:
    """Ground-truth masks held in memory: bool [T, H, W]."""

    values: np.ndarray

    def masks(self, frame_indices):
        return self.values[list(frame_indices)]


def bench(*, sample_interval=1, paper_metric="frame AUC"):
    return Benchmark(
        title="Hand", reader=lambda root, protocol: [], sample_interval=sample_interval, anomaly_types=("x",),
        paper_metric=paper_metric, paper_value=50.0, has_pixel_masks=True,
    )  # fmt: skip


def video(name, labels, masks=None):
    return BenchmarkVideo(name, f"/{name}", ExplicitLabels(np.array(labels, dtype=np.int8)), masks)


def scored(n_frames, indices, *, scores=None, logits=None, pixel_logits=None, size=(2, 2)):
    logits = None if logits is None else np.array(logits, dtype=np.float64)
    if scores is None:
        scores = 1 / (1 + np.exp(-logits))
    return ScoredVideo(
        n_frames, np.array(indices), np.array(scores, dtype=np.float64), [None] * len(indices), *size,
        score_logits=logits, pixel_logits=pixel_logits,
    )  # fmt: skip


# --- 15: clip tails ---------------------------------------------------------------------------


def test_reference_keeps_whole_windows_only_and_skips_videos_shorter_than_one():
    # interval 2, 2 frames per clip: windows of 4 frames. Video a: 10 frames, sampled 0, 2, 4, 6, 8;
    # its tail (frames 8, 9: normal, scored 0.95) is dropped by the reference. Video b: 3 frames < 4.
    a = video("a", [0, 0, 0, 0, 1, 1, 1, 1, 0, 0])
    b = video("b", [0, 0, 0])
    results = {
        "/a": scored(10, [0, 2, 4, 6, 8], scores=[0.1, 0.2, 0.9, 0.8, 0.95]),
        "/b": scored(3, [0, 2], scores=[0.05, 0.05]),
    }
    reference = metrics_of(bench(sample_interval=2), [a, b], results, protocol="reference", sample_interval=2, frames_per_clip=2)
    assert (reference.n_scored, reference.n_too_short, reference.n_frames) == (1, 1, 8)
    assert reference.frame_auc == 1.0  # frames 0..7: every anomalous frame above every normal one
    ours = metrics_of(bench(sample_interval=2), [a, b], results, protocol="lavida", sample_interval=2, frames_per_clip=2)
    assert (ours.n_scored, ours.n_too_short, ours.n_frames) == (2, 0, 13)
    # positives .9 .9 .8 .8 and the end point 1; negatives .1 .1 .2 .2 .95 .95 .05 .05 .05 and the end
    # point 0: each of the four beats 8 of 10, the end point all 10 -> (4 * 8 + 10) / (5 * 10)
    assert ours.frame_auc == pytest.approx(42 / 50)


# --- 16: frame scores, per-video mean ---------------------------------------------------------

LOGITS = [-0.5, 2.0, 0.5, 1.5]  # labels 0 0 1 1: the normal frame at 2.0 is above the end point 1


def test_reference_ranks_raw_logits_against_the_0_and_1_end_points():
    v = video("v", [0, 0, 1, 1])
    with_logits = {"/v": scored(4, [0, 1, 2, 3], logits=LOGITS)}
    # logits + end points: negatives 0, -0.5, 2.0; positives 0.5, 1.5, 1 -> each beats 2 of 3 -> 6 / 9
    assert metrics_of(bench(), [v], with_logits, protocol="reference", frames_per_clip=4).frame_auc == pytest.approx(6 / 9)
    # sigmoid + end points: negatives 0, .38, .88; positives .62, .82, 1.0 -> 2 + 2 + 3 -> 7 / 9
    assert metrics_of(bench(), [v], with_logits, protocol="lavida", frames_per_clip=4).frame_auc == pytest.approx(7 / 9)
    # from OUT only the float32 sigmoid is kept: the logits are recovered from it, same ranking
    from_scores = {"/v": scored(4, [0, 1, 2, 3], scores=(1 / (1 + np.exp(-np.array(LOGITS)))).astype(np.float32))}
    assert metrics_of(bench(), [v], from_scores, protocol="reference", frames_per_clip=4).frame_auc == pytest.approx(6 / 9)


def test_reference_video_mean_keeps_single_class_videos():
    v = video("v", [0, 0, 1, 1])
    normal = video("n", [0, 0, 0, 0])
    results = {"/v": scored(4, [0, 1, 2, 3], logits=LOGITS), "/n": scored(4, [0, 1, 2, 3], logits=[2.0] * 4)}
    reference = metrics_of(bench(), [v, normal], results, protocol="reference", frames_per_clip=4)
    # n with end points: negatives 0, 2, 2, 2, 2 and one positive (the end point 1) above 0 only: 1 / 5
    assert reference.video_mean == pytest.approx((6 / 9 + 1 / 5) / 2) and reference.n_videos_skipped == 0
    ours = metrics_of(bench(), [v, normal], results, protocol="lavida", frames_per_clip=4)
    assert ours.video_mean == pytest.approx(7 / 9) and ours.n_videos_skipped == 1


def test_shanghaitech_labels_from_pixel_masks_in_the_reference(tmp_path):
    write_shanghaitech(tmp_path, [Spec("01_0014", 6, ((2, 3),))])
    # the frame labels disagree with the pixel masks on frames 4 and 5 (as the published files do in places)
    np.save(tmp_path / "testing/test_frame_mask/01_0014.npy", np.array([0, 0, 1, 1, 1, 1]))
    shanghaitech = BENCHMARKS["shanghaitech"]
    [reference] = shanghaitech.read(str(tmp_path), "reference")
    [ours] = shanghaitech.read(str(tmp_path), "lavida")
    assert reference.labels.for_frames(6).tolist() == [0, 0, 1, 1, 0, 0]  # any pixel of test_pixel_mask
    assert ours.labels.for_frames(6).tolist() == [0, 0, 1, 1, 1, 1]  # test_frame_mask


# --- 13: UBnormal's test split ----------------------------------------------------------------


def test_ubnormal_reference_evaluates_the_abnormal_test_videos_only(tmp_path):
    specs = [
        Spec("abnormal_scene_1_scenario_1", 4, ((1, 2),)),
        Spec("normal_scene_2_scenario_3", 4),
        Spec("abnormal_scene_3_scenario_2", 4, ((0, 1),)),
    ]
    write_ubnormal(tmp_path, specs)
    ubnormal = BENCHMARKS["ubnormal"]
    reference = [v.name for v in ubnormal.read(str(tmp_path), "reference")]
    assert reference == ["abnormal_scene_1_scenario_1", "abnormal_scene_3_scenario_2"]  # abnormal_test_video_names.txt
    ours = [v.name for v in ubnormal.read(str(tmp_path), "lavida")]
    assert ours == [*reference, "normal_scene_2_scenario_3"]  # + normal_test_video_names.txt


# --- 14: the reference's UCSD root: Ped1 and Ped2 ----------------------------------------------


def test_ucsd_reference_walks_ped1_and_ped2_and_takes_unannotated_videos_as_normal(tmp_path):
    write_ucsd_ped2(tmp_path, [Spec("a", 4, ((1, 2),)), Spec("b", 3, ((0, 0),))], folder="UCSDped1", without_gt=(2,))
    write_ucsd_ped2(tmp_path, [Spec("c", 5, ((3, 4),))])
    ucsd = BENCHMARKS["ucsd"]
    reference = {v.name: v for v in ucsd.read(str(tmp_path), "reference")}
    assert list(reference) == ["UCSDped1/Test001", "UCSDped1/Test002", "UCSDped2/Test001"]
    assert reference["UCSDped1/Test001"].labels.for_frames(4).tolist() == [0, 1, 1, 0]  # from its masks
    assert reference["UCSDped1/Test002"].labels.for_frames(3).tolist() == [0, 0, 0]  # no _gt folder: all normal
    assert not reference["UCSDped1/Test002"].pixel_masks.masks([0, 2]).any()
    assert reference["UCSDped2/Test001"].labels.for_frames(5).tolist() == [0, 0, 0, 1, 1]
    assert [v.name for v in ucsd.read(str(tmp_path), "lavida")] == ["UCSDped1/Test001", "UCSDped2/Test001"]
    assert [v.name for v in BENCHMARKS["ucsd_ped1"].read(str(tmp_path))] == ["Test001", "Test002"]
    assert [v.name for v in BENCHMARKS["ucsd_ped2"].read(str(tmp_path))] == ["Test001"]


# --- 14: pixel AUC ----------------------------------------------------------------------------


def test_reference_pixel_auc_pools_logit_maps_with_no_object_frames_at_minus_1024():
    # ground truth 2 x 2: frame 0 anomalous in its left column, frame 1 all normal. The model: frame 0
    # logits 2.0 everywhere, frame 1 no object (NO_OBJECT_LOGIT everywhere).
    truth = np.zeros((2, 2, 2), dtype=bool)
    truth[0, :, 0] = True
    v = video("v", [1, 0], GivenMasks(truth))
    maps = reference_pixel_logits(np.stack([np.full((4, 4), 2.0), np.full((4, 4), NO_OBJECT_LOGIT)]))  # [2, 158, 238]
    result = metrics_of(
        bench(), [v], {"/v": scored(2, [0, 1], logits=[1.0, -1.0], pixel_logits=maps)}, protocol="reference", pixel=True, frames_per_clip=2
    )
    # at 158 x 238, columns 0..118 map to the left ground-truth column (floor(floor(j * 1024 / 238) * 2 / 1024) = 0).
    # positives: 158 x 119 pixels at 2.0; negatives: 158 x 119 at 2.0 (ties) and 158 x 238 at -1024 (below)
    # AUC = (238 + 119 / 2) / (119 + 238) = 5 / 6
    assert result.pixel_auc == pytest.approx(5 / 6)


def test_reference_pixel_maps_are_torch_bilinear_to_1024_then_nearest_to_158_x_238():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 16, 16)).astype(np.float32)
    logits[1] = NO_OBJECT_LOGIT
    up = torch.nn.functional.interpolate(torch.from_numpy(logits)[:, None], size=(1024, 1024), mode="bilinear", align_corners=False)
    expected = torch.nn.functional.interpolate(up, size=(158, 238), mode="nearest")[:, 0].numpy()
    np.testing.assert_allclose(reference_pixel_logits(logits), expected, rtol=1e-5, atol=1e-5)
    truth = rng.random((2, 240, 360)) > 0.5  # a Ped2-sized ground truth
    up_truth = torch.nn.functional.interpolate(torch.from_numpy(truth[:, None].astype(np.float32)), size=(1024, 1024), mode="nearest")
    expected_truth = torch.nn.functional.interpolate(up_truth, size=(158, 238), mode="nearest")[:, 0].numpy() > 0.5
    assert np.array_equal(reference_pixel_truth(truth), expected_truth)


# --- 17: XD-Violence: AP (paper) vs AUC (reference) -------------------------------------------


def test_xd_violence_reports_the_papers_ap_and_the_references_auc_and_says_which_is_which():
    xd = bench(paper_metric="frame AP")
    v = video("v", [0, 0, 1, 1])
    results = {"/v": scored(4, [0, 1, 2, 3], logits=LOGITS)}
    reference = metrics_of(xd, [v], results, protocol="reference", frames_per_clip=4)
    # logits + end points, by score: 2.0 (0), 1.5 (1), 1 (1), 0.5 (1), 0 (0), -0.5 (0):
    # precision at each positive 1/2, 2/3, 3/4 -> AP = (1/2 + 2/3 + 3/4) / 3 = 23/36
    assert reference.frame_ap == pytest.approx(23 / 36) and reference.frame_auc == pytest.approx(6 / 9)
    assert reference.video_metric == "auc" and reference.video_mean == pytest.approx(6 / 9)  # its switch never picks AP
    ours = metrics_of(xd, [v], results, protocol="lavida", frames_per_clip=4)
    # sigmoid: 1.0 (1), .88 (0), .82 (1), .62 (1), .38 (0), 0 (0) -> (1 + 2/3 + 3/4) / 3 = 29/36
    assert ours.frame_ap == pytest.approx(29 / 36) and ours.video_metric == "ap" and ours.video_mean == pytest.approx(29 / 36)

    table = format_result(_result(reference, "reference"))
    rows = {line.split("  ")[0]: line for line in table.splitlines()}
    assert "paper (the reference never computes it)" in rows["frame AP (micro, all frames)"]
    assert "reference (the paper reports AP)" in rows["frame AUC (micro, all frames)"]
    assert "reference (the paper reports AP)" in next(line for name, line in rows.items() if name.startswith("video mean AUC"))


def _result(metrics, protocol):
    return EvalResult(
        dataset="xd_violence", title="XD-Violence", protocol=protocol, model="m", model_trained=True, sample_interval=1,
        frames_per_clip=4, anomaly_types=["x"], n_videos=1, n_scored=metrics.n_scored, n_failed=0, n_too_short=0,
        n_frames=metrics.n_frames, frame_auc=metrics.frame_auc, frame_ap=metrics.frame_ap, video_mean=metrics.video_mean,
        video_metric=metrics.video_metric, n_videos_skipped=0, pixel_auc=None, paper_metric="frame AP", paper_value=90.62,
        ours_for_paper=100 * metrics.frame_ap,
    )  # fmt: skip


def test_score_in_process_keeps_the_logits_of_whole_windows(tmp_path):
    from logit_detector import LogitBrightDetector

    from jobs.eval.evaluate import score_in_process

    write_ucsd_ped2(tmp_path, [Spec("x", 10, ((2, 5),))])
    [x] = BENCHMARKS["ucsd_ped2"].read(str(tmp_path))
    detector = LogitBrightDetector("fake")
    # interval 2, 3 frames per clip: clips [0, 2, 4] and the short [6, 8], which the reference never scores
    whole = score_in_process(detector, x.uri, anomaly_types=["x"], frames_per_clip=3, sample_interval=2)
    assert whole.frame_indices.tolist() == [0, 2, 4] and whole.n_frames == 10 and (whole.height, whole.width) == (48, 64)
    assert whole.pixel_logits.shape == (3, 158, 238) and whole.score_logits.shape == (3,)
    assert (whole.score_logits[1:] > 0).all() and whole.score_logits[0] < 0  # the square is in frames 2..5
    assert (whole.pixel_logits[0] == NO_OBJECT_LOGIT).all()  # no object: -1024 everywhere
    every = score_in_process(detector, x.uri, anomaly_types=["x"], frames_per_clip=3, sample_interval=2, whole_windows_only=False)
    assert every.frame_indices.tolist() == [0, 2, 4, 6, 8]


def test_the_detector_gives_the_logits_its_scores_and_masks_come_from():
    from lavida_core.detector import LavidaDetector

    detector = LavidaDetector.load("tiny")
    frames = np.random.default_rng(0).integers(0, 255, size=(2, 40, 56, 3), dtype=np.uint8)
    [found] = detector.detect_batch([frames], ["a car"])
    assert found.score_logits.shape == (2,) and found.mask_logits.ndim == 3 and len(found.mask_logits) == 2
    np.testing.assert_allclose(found.scores, 1 / (1 + np.exp(-found.score_logits)), rtol=1e-6)
    maps = reference_pixel_logits(found.mask_logits)
    assert maps.shape == (2, 158, 238) and maps.dtype == np.float32
    # the masks are the mask logits, upsampled (bilinear) to the frame's size, > 0, pixel by pixel
    assert found.masks.shape == (2, 40, 56) and found.masks.dtype == bool
    np.testing.assert_array_equal(found.masks, _upsampled(found.mask_logits, 40, 56) > 0)
    # the tiny preset (seed 0) finds no object in these frames: logits NO_OBJECT_LOGIT everywhere, masks empty
    assert (found.score_logits <= 0).all() and (found.mask_logits == NO_OBJECT_LOGIT).all() and not found.masks.any()
    # a seed whose random weights do find an object, so that the masks are neither empty nor full
    found = _first_detection_with_an_object(frames)
    assert (found.score_logits > 0).any()
    assert 0 < found.masks.mean() < 1 and 0 < (found.mask_logits > 0).mean() < 1
    np.testing.assert_array_equal(found.masks, _upsampled(found.mask_logits, 40, 56) > 0)
    np.testing.assert_allclose(found.scores, 1 / (1 + np.exp(-found.score_logits)), rtol=1e-6)


def _upsampled(mask_logits: np.ndarray, height: int, width: int) -> np.ndarray:
    """[T, h, w] -> [T, height, width]: bilinear, corners not aligned (as the detector's masks are made)."""
    tensor = torch.from_numpy(mask_logits)[:, None]
    return torch.nn.functional.interpolate(tensor, size=(height, width), mode="bilinear", align_corners=False)[:, 0].numpy()


def _first_detection_with_an_object(frames):
    from lavida_core.checkpoint import build_lavida
    from lavida_core.config import preset
    from lavida_core.detector import LavidaDetector

    for seed in range(1, 33):  # about half the seeds give a positive object logit on these frames
        detector = LavidaDetector(build_lavida(preset("tiny"), seed=seed), model_name="tiny")
        [found] = detector.detect_batch([frames], ["a car"])
        if 0 < (found.mask_logits > 0).mean() < 1:  # chosen by its logits: the masks are what is checked
            return found
    raise AssertionError("no seed of the tiny preset found an object in the frames")
