"""Frames decoded at the model's input sizes (`--frames-at-model-size`, jobs/video/frame_scaling.py):
the sizes are fixed points of each tower's own resize (so the detector resizes nothing), the pixels are
close to the model's own resize of full-size frames, and masks still come back at the video's size."""

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from video_factory import write_video

from jobs.out.profile import ScanProfile
from jobs.scan.decode import DecodeConfig, decode_video
from jobs.scan.listing import list_videos
from jobs.video.frame_scaling import FrameScaler, centre_crop
from jobs.video.reader import open_video
from lavida_core import frames as frames_module
from lavida_core.config import preset
from lavida_core.frames import InputSizes, ScaledClip, clip_pixels, qwen_video_patches, sam_images

SOURCE_SIZES = [(1080, 1920), (240, 320), (48, 64), (37, 1000), (1000, 37)]  # (height, width)


@pytest.mark.parametrize("name", ["tiny", "paper"])
def test_the_decoded_sizes_are_what_each_tower_reads(name):
    sizes = InputSizes.of(preset(name))
    for height, width in SOURCE_SIZES:
        qh, qw = sizes.qwen(height, width)
        assert qh % sizes.factor == 0 and qw % sizes.factor == 0  # the min_pixels branch may pass max_pixels (the reference's rule)
        assert min(sizes.clip_resized(height, width)) == sizes.clip_size


def test_the_towers_resize_nothing_at_the_decoded_sizes(monkeypatch):
    """With the arrays at InputSizes (Qwen's read as sized), each tower's preprocessing gives what it
    gives with its resize replaced by 'return the input' (a resize to an array's own size is the identity)."""
    sizes = InputSizes.of(preset("tiny"))
    rng = np.random.default_rng(0)
    qh, qw = sizes.qwen(240, 320)
    qwen = rng.integers(0, 256, (4, qh, qw, 3), dtype=np.uint8)
    sam = rng.integers(0, 256, (4, sizes.sam_size, sizes.sam_size, 3), dtype=np.uint8)
    crop = rng.integers(0, 256, (4, sizes.clip_size, sizes.clip_size, 3), dtype=np.uint8)
    mllm = preset("tiny").mllm
    qwen_args = dict(patch_size=mllm.patch_size, temporal_patch_size=mllm.temporal_patch_size, merge_size=mllm.spatial_merge_size)
    budget = dict(min_pixels=sizes.min_pixels, max_pixels=sizes.max_pixels)

    def run():
        return (
            qwen_video_patches(qwen, **qwen_args, **budget, sized=True)[0],
            sam_images(sam, image_size=sizes.sam_size),
            clip_pixels(crop, image_size=sizes.clip_size),
        )

    resized = run()

    def no_resize(x, size, **_):
        assert tuple(size) == tuple(x.shape[-2:]), "a tower asked for another size"
        return x

    monkeypatch.setattr(frames_module.F, "interpolate", no_resize)
    for got, expected in zip(resized, run(), strict=True):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    monkeypatch.undo()
    # the towers skip a resize to an array's own size: it is the identity, in float and in uint8
    x = torch.from_numpy(qwen).permute(0, 3, 1, 2)
    for mode in ("bicubic", "bilinear"):
        for tensor in (x, x.float()):
            same = F.interpolate(tensor, size=tuple(x.shape[-2:]), mode=mode, align_corners=False, antialias=True)
            torch.testing.assert_close(same.float(), tensor.float(), rtol=0, atol=1e-3)


def _coloured_frames(n: int, height: int, width: int) -> np.ndarray:
    """uint8 [n, H, W, 3]: a red ramp across, a green ramp down, blue moving with t (a swapped channel,
    a flipped axis or a wrong size shows)."""
    y, x = np.mgrid[0:height, 0:width]
    frames = [np.stack([255 * x / width, 255 * y / height, (128 + 100 * np.sin(x / 9 + t)) + 0 * y], axis=-1) for t in range(n)]
    return np.clip(np.stack(frames), 0, 255).astype(np.uint8)


def _models_own_resize(frames: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=True)
    return x.clamp(0, 255).round().byte().permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("source", ["file", "folder"])
def test_decoded_at_model_size_is_close_to_the_models_own_resize(tmp_path, source):
    sizes = InputSizes.of(preset("tiny"))
    scaler = FrameScaler(sizes)
    pictures = _coloured_frames(20, 240, 320)
    if source == "file":
        path = tmp_path / "v.mp4"
        with av.open(str(path), mode="w") as container:
            stream = container.add_stream("libx264", rate=25, options={"crf": "18", "preset": "ultrafast"})
            stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
            for picture in pictures:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
            container.mux(stream.encode(None))
    else:
        path = tmp_path / "frames"
        path.mkdir()
        for i, picture in enumerate(pictures):
            Image.fromarray(picture).save(path / f"{i:04d}.png")
    indices = [0, 5, 10, 15, 19, 19]
    with open_video(str(path)) as video:
        full, timestamps = video.read(indices)
        scaled, scaled_timestamps = video.read(indices, scaler)
    assert isinstance(scaled, ScaledClip) and (scaled.height, scaled.width) == (240, 320)
    np.testing.assert_array_equal(scaled_timestamps, timestamps)
    qwen_size = sizes.qwen(240, 320)
    expected = {
        "qwen": _models_own_resize(full, qwen_size, "bicubic"),
        "sam": _models_own_resize(full, (sizes.sam_size, sizes.sam_size), "bilinear"),
        "clip": np.stack([centre_crop(f, sizes.clip_size) for f in _models_own_resize(full, sizes.clip_resized(240, 320), "bicubic")]),
    }
    for name, want in expected.items():
        got = getattr(scaled, name)
        assert got.shape == want.shape and got.dtype == np.uint8, name
        difference = np.abs(got.astype(int) - want.astype(int))
        assert difference.mean() < 0.5 and difference.max() <= 4, f"{name}: difference mean {difference.mean():.2f}, max {difference.max()}"


def test_decode_stage_rows_carry_each_towers_frames_and_the_videos_size(tmp_path):
    write_video(tmp_path / "a.mp4", width=96, height=48, n_frames=12)
    sizes = InputSizes.of(preset("tiny"))
    config = DecodeConfig(frames_per_clip=3, sample_interval=4, scaler=FrameScaler(sizes))
    rows = [row for video in list_videos(str(tmp_path)) for row in decode_video(video.__dict__, config=config)]
    assert [row["clip_index"] for row in rows] == [0]
    (row,) = rows
    assert (row["height"], row["width"]) == (48, 96)
    assert row["frames"].shape == (3, *sizes.qwen(48, 96), 3)
    assert row["sam_frames"].shape == (3, sizes.sam_size, sizes.sam_size, 3)
    assert row["clip_frames"].shape == (3, sizes.clip_size, sizes.clip_size, 3)
    plain = next(decode_video(list_videos(str(tmp_path))[0].__dict__, config=DecodeConfig(frames_per_clip=3, sample_interval=4)))
    assert plain["frames"].shape == (3, 48, 96, 3) and plain["sam_frames"].shape[0] == 0 and plain["clip_frames"].shape[0] == 0


def test_the_profile_of_a_scan_at_model_size_is_its_own_and_others_keep_their_ids():
    import hashlib
    import json

    plain = ScanProfile("tiny", ("fire",), 16, 8)
    before = hashlib.sha256(json.dumps(["tiny", ["fire"], 16, 8]).encode()).hexdigest()[:16]  # the id before the option
    scaled = ScanProfile("tiny", ("fire",), 16, 8, frames_at_model_size=True)
    assert plain.profile_id == before and scaled.profile_id != before
    assert "--frames-at-model-size" in plain.differences(scaled) and "--frames-at-model-size" in scaled.differences(plain)
    assert plain.differences(plain) == ""


@pytest.mark.slow  # builds the tiny preset (~3 s of CPU)
def test_the_detector_reads_a_scaled_clip_and_returns_masks_at_the_videos_size():
    from lavida_core.detector import LavidaDetector

    detector = LavidaDetector.load("tiny")
    frames = np.random.default_rng(1).integers(0, 256, (3, 90, 160, 3), dtype=np.uint8)
    scaled = FrameScaler(InputSizes.of(detector.config)).scale_rgb(frames)
    plain, at_model_size = detector.detect_batch([frames, scaled], ["fire"])
    assert at_model_size.masks.shape == plain.masks.shape == (3, 90, 160)
    np.testing.assert_allclose(at_model_size.scores, plain.scores, atol=1e-3)
    assert (detector.embed_clips([scaled]) @ detector.embed_clips([frames]).T).item() > 0.99


@pytest.mark.slow  # builds the tiny preset (~3 s of CPU)
def test_eval_rescores_in_process_on_the_frames_the_scan_scored(tmp_path):
    """`lavida eval --frames-at-model-size` with the reference's pixel AUC scores videos again in process
    for their logits: on scaled frames too, masks still at the video's size."""
    from jobs.eval.evaluate import score_in_process
    from jobs.video.frame_scaling import scaler_for
    from lavida_core.detector import LavidaDetector

    path = str(write_video(tmp_path / "v.mp4", width=96, height=48, n_frames=12))
    detector = LavidaDetector.load("tiny")
    asked = dict(anomaly_types=["fire"], frames_per_clip=3, sample_interval=4)
    plain = score_in_process(detector, path, **asked)
    scaled = score_in_process(detector, path, **asked, scaler=scaler_for("tiny"))
    assert (scaled.height, scaled.width) == (plain.height, plain.width) == (48, 96)
    np.testing.assert_array_equal(scaled.frame_indices, plain.frame_indices)
    np.testing.assert_allclose(scaled.scores, plain.scores, atol=1e-3)


def test_only_lavidas_detector_scans_at_model_size(tmp_path):
    from jobs.common.errors import UserError
    from jobs.scan.job import ScanOptions, validate

    options = ScanOptions(
        source=str(tmp_path), out=str(tmp_path / "out"), frames_at_model_size=True, detector_class="fake_detector:BrightDetector"
    )
    with pytest.raises(UserError, match="--frames-at-model-size works with LAVIDA's detector only"):
        validate(options)
