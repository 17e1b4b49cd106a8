"""jobs.scan.decode without Ray: sampled frames, decoder timestamps, and the error kind of each bad file."""

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
    write_gop_video,
    write_no_frames,
    write_text,
    write_truncated,
    write_video,
)

from jobs.scan.decode import DecodeConfig, decode_segment, decode_video, plan_video, planned, whole_video
from jobs.scan.listing import list_videos
from lavida_core.clips import SAMPLE_KEYFRAMES
from schemas.stage_rows import ROW_WHOLE, DecodedRow, PlannedRow


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
    """A file that opens but whose middle is zeroed: the clips before it, then one decode_error row.
    (It was a 48-pixel-wide file, which decord 0.6 could not copy out; tests/test_frame_decoder.py
    checks the in-order decoder reads that one.)"""
    path = write_video(tmp_path / "hole.mp4", n_frames=60)
    data = bytearray(path.read_bytes())
    mdat = data.find(b"mdat")
    start, end = mdat + (len(data) - mdat) // 3, mdat + (len(data) - mdat) // 2
    data[start:end] = bytes(end - start)
    path.write_bytes(bytes(data))
    rows = _decode(path)
    assert [(r["row_kind"], r["status"]) for r in rows] == [("clip", "ok"), ("error", "decode_error")]
    assert "cannot be decoded" in rows[-1]["error"]


def test_missing_file_is_a_read_error(tmp_path):
    path = write_video(tmp_path / "gone.mp4", n_frames=5)
    [video] = list_videos(str(path))
    path.unlink()
    [row] = decode_video(dataclasses.asdict(video), config=DecodeConfig(frames_per_clip=4, sample_interval=1))
    assert (row["row_kind"], row["status"]) == ("error", "read_error")


def test_a_long_video_is_planned_in_segments_that_leave_out_the_kept_clips(tmp_path):
    write_video(tmp_path / "long.mp4", n_frames=40)  # interval 2, 4 frames a clip: 20 samples, 5 clips
    [video] = list_videos(str(tmp_path))
    config = DecodeConfig(frames_per_clip=4, sample_interval=2, clips_per_segment=2)
    plan = [PlannedRow.from_row(r) for r in plan_video({**dataclasses.asdict(video), "kept_clips": [1]}, config=config)]
    assert [(p.segment_index, p.clip_indices.tolist(), p.n_clips) for p in plan] == [(0, [0, 2], 5), (1, [3, 4], 5)]
    rows = [DecodedRow.from_row(r) for p in plan for r in decode_segment(p.as_row(), config=config)]
    assert [(r.segment_index, r.segment_clips, r.clip_index) for r in rows] == [(0, 2, 0), (0, 2, 2), (1, 2, 3), (1, 2, 4)]
    assert rows[2].frame_indices.tolist() == [24, 26, 28, 30]


def test_a_remote_video_is_decoded_whole_by_one_task_with_the_same_segments(tmp_path):
    """ROW_WHOLE (what plan_video makes of an s3:// video, to download it once) labels its clips with
    the segments a local plan would make; a local file stands in for the download here."""
    write_video(tmp_path / "long.mp4", n_frames=40)
    [video] = list_videos(str(tmp_path))
    config = DecodeConfig(frames_per_clip=4, sample_interval=2, clips_per_segment=2)
    whole = planned(video, None, ROW_WHOLE, kept_clips=np.array([1], dtype=np.int64))
    rows = [DecodedRow.from_row(r) for r in decode_segment(whole.as_row(), config=config)]
    assert [(r.segment_index, r.segment_clips, r.clip_index, r.n_clips) for r in rows] == [
        (0, 2, 0, 5), (0, 2, 2, 5), (1, 2, 3, 5), (1, 2, 4, 5)
    ]  # fmt: skip
    everything_kept = planned(video, None, ROW_WHOLE, kept_clips=np.arange(5, dtype=np.int64))
    [kept] = [DecodedRow.from_row(r) for r in decode_segment(everything_kept.as_row(), config=config)]
    assert (kept.row_kind, kept.n_clips, kept.n_frames, kept.height, kept.width) == ("kept", 5, 40, 48, 64)
    [local] = plan_video({**dataclasses.asdict(video), "kept_clips": list(range(5))}, config=config)
    assert (local["row_kind"], local["height"], local["width"]) == ("kept", 48, 64)


def test_keyframe_sampling_plans_and_decodes_the_keyframes(tmp_path):
    """sample_interval SAMPLE_KEYFRAMES: clips of the keyframes (irregular GOPs), planned and decoded
    through both paths (a planned segment, and a video decoded whole)."""
    path = write_gop_video(tmp_path / "gops.mp4", keyframes=[0, 7, 30, 31, 55], n_frames=80)
    rows = _decode(path, frames_per_clip=2, sample_interval=SAMPLE_KEYFRAMES)
    assert [r["frame_indices"].tolist() for r in rows] == [[0, 7], [30, 31], [55]]
    np.testing.assert_allclose(np.concatenate([r["timestamps"] for r in rows]), [0.0, 0.28, 1.2, 1.24, 2.2])
    [video] = list_videos(str(path))
    config = DecodeConfig(frames_per_clip=2, sample_interval=SAMPLE_KEYFRAMES)
    whole = list(decode_segment(whole_video(video, kept_clips=[1], only_clips=[]).as_row(), config=config))
    assert [r["frame_indices"].tolist() for r in whole] == [[0, 7], [55]]  # clip 1 kept from a killed run
    np.testing.assert_array_equal(np.concatenate([r["frames"] for r in whole]), np.concatenate([rows[0]["frames"], rows[2]["frames"]]))
