"""jobs.decode without Ray: sampled frames, decoder timestamps, and the error kind of each bad file."""

import dataclasses
from fractions import Fraction

import av
import numpy as np
import pytest
from video_factory import (
    GOOD_VIDEOS,
    make_frames,
    write_audio_only,
    write_empty,
    write_no_frames,
    write_text,
    write_truncated,
    write_video,
)

from jobs.decode import DecodeConfig, decode_video
from jobs.listing import list_videos


def _decode(path, frames_per_clip=4, sample_interval=3):
    [video] = list_videos(str(path))
    config = DecodeConfig(frames_per_clip=frames_per_clip, sample_interval=sample_interval)
    return list(decode_video(dataclasses.asdict(video), config=config))


@pytest.mark.parametrize("name", sorted(GOOD_VIDEOS))
def test_sampled_clips_of_each_codec(tmp_path, name):
    spec = GOOD_VIDEOS[name]
    rows = _decode(write_video(tmp_path / name, **spec), frames_per_clip=4, sample_interval=3)
    n, fps = spec["n_frames"], spec["fps"]
    assert [r["row_kind"] for r in rows] == ["clip"] * len(rows)
    indices = np.concatenate([r["frame_indices"] for r in rows])
    np.testing.assert_array_equal(indices, np.arange(0, n, 3))  # only the sampled frames
    assert {r["n_clips"] for r in rows} == {len(rows)} and [r["clip_index"] for r in rows] == list(range(len(rows)))
    # timestamps from the decoder: constant-rate test videos, so index / fps (to the ms)
    timestamps = np.concatenate([r["timestamps"] for r in rows])
    np.testing.assert_allclose(timestamps, indices / fps, atol=1e-3)
    assert rows[0]["n_frames"] == n and rows[0]["fps"] == pytest.approx(fps)
    assert rows[0]["duration_s"] == pytest.approx(n / fps, abs=1e-3)
    # the decoded pixels are the encoded ones (lossy codecs: close, not equal)
    frames = np.concatenate([r["frames"] for r in rows])  # [N, H, W, 3]
    assert frames.shape == (len(indices), spec["height"], spec["width"], 3) and frames.dtype == np.uint8
    expected = make_frames(n, spec["height"], spec["width"])[indices]
    assert np.abs(frames.astype(int) - expected.astype(int)).mean() < 12


def test_timestamps_follow_the_container_not_the_index(tmp_path):
    """A variable-rate file: frame k shown at pts 0, 0.1, 0.5, 0.6, ... (not k / fps)."""
    path = tmp_path / "vfr.mkv"
    pts_ms = [0, 100, 500, 600, 1500, 1600]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuvj420p"
        stream.time_base = Fraction(1, 1000)
        for k, array in enumerate(make_frames(len(pts_ms), 32, 32)):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts, frame.time_base = pts_ms[k], Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    rows = _decode(path, frames_per_clip=8, sample_interval=1)
    np.testing.assert_allclose(np.concatenate([r["timestamps"] for r in rows]), np.array(pts_ms) / 1000, atol=1e-3)


@pytest.mark.parametrize(
    "writer, name, kind",
    [
        (write_empty, "empty.mp4", "empty"),
        (write_text, "text.mp4", "not_a_video"),
        (lambda p: write_truncated(p, keep=0.5, codec="h264", n_frames=30), "cut.mp4", "truncated"),
        (lambda p: write_truncated(p, keep=0.02, codec="mpeg4", n_frames=30), "cut.avi", "truncated"),
        (lambda p: write_truncated(p, keep=0.02, codec="vp9", n_frames=30), "cut.webm", "truncated"),
        (write_audio_only, "audio.mp4", "not_a_video"),
        (write_no_frames, "none.avi", "no_frames"),
    ],
)
def test_bad_files_become_one_error_row(tmp_path, writer, name, kind):
    rows = _decode(writer(tmp_path / name))
    assert len(rows) == 1
    assert rows[0]["row_kind"] == "error" and rows[0]["status"] == kind, rows[0]["error"]
    assert rows[0]["error"]


def test_unsupported_codec(tmp_path):
    if "libsvtav1" not in av.codecs_available:
        pytest.skip("this PyAV build cannot encode AV1, the codec decord's FFmpeg lacks")
    rows = _decode(write_video(tmp_path / "av1.mkv", codec="av1", n_frames=10))
    assert [(r["row_kind"], r["status"]) for r in rows] == [("error", "unsupported_codec")], rows[0]["error"]


def test_frames_the_decoder_cannot_return_are_a_decode_error(tmp_path):
    """decord 0.6 fails on 48-pixel-wide frames after opening the file fine."""
    rows = _decode(write_video(tmp_path / "narrow.mp4", width=48, height=48, n_frames=6))
    assert [(r["row_kind"], r["status"]) for r in rows] == [("error", "decode_error")]
    assert "cannot be decoded" in rows[0]["error"]


def test_missing_file_is_a_read_error(tmp_path):
    path = write_video(tmp_path / "gone.mp4", n_frames=5)
    [video] = list_videos(str(path))
    path.unlink()
    [row] = decode_video(dataclasses.asdict(video), config=DecodeConfig(frames_per_clip=4, sample_interval=1))
    assert (row["row_kind"], row["status"]) == ("error", "read_error")
