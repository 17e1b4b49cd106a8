"""The reader's in-order decoding (jobs/video/frame_decoder.py through jobs/video/reader.py): the frames and
timestamps it returns are those of decoding every frame, on irregular GOPs, B-frames and variable-rate
files, whether it decodes through or seeks; and it seeks only where that skips frames."""

import av
import decord
import numpy as np
import pytest
from video_factory import GOOD_VIDEOS, write_gop_video, write_video

from jobs.video.reader import open_video
from lavida_core.clips import SAMPLE_KEYFRAMES

KEYFRAMES = [0, 7, 30, 31, 55]  # irregular GOPs: 7, 23, 1, 24 and 25 frames
VFR_MS = [k * 40 + (k % 3) * 10 for k in range(80)]  # shown at 0, 50, 100, 120, 170, ... ms


def every_frame(path) -> tuple[np.ndarray, np.ndarray]:
    """All frames in presentation order, uint8 [N, H, W, 3], and their start times float64 [N]."""
    with av.open(str(path)) as container:
        frames = [(frame.to_ndarray(format="rgb24"), float(frame.time)) for frame in container.decode(video=0)]
    return np.stack([f for f, _ in frames]), np.asarray([t for _, t in frames])


@pytest.fixture(scope="module")
def gop_videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gop")
    return {
        "irregular GOPs, B-frames, 25 fps (mp4)": write_gop_video(folder / "cfr.mp4", keyframes=KEYFRAMES, n_frames=80),
        "irregular GOPs, B-frames, variable rate (mkv)": write_gop_video(
            folder / "vfr.mkv", keyframes=KEYFRAMES, n_frames=80, pts_ms=VFR_MS
        ),
    }


@pytest.mark.parametrize("name", ["irregular GOPs, B-frames, 25 fps (mp4)", "irregular GOPs, B-frames, variable rate (mkv)"])
@pytest.mark.parametrize(
    "clips",
    [
        [list(range(0, 80, 1))],  # every frame
        [list(range(s, s + 16, 2)) for s in range(0, 64, 16)],  # dense clips, in order
        [[0, 40], [41, 79], [6, 7, 8]],  # sparse, then back to an earlier GOP
        [[79, 3, 3, 31, 30]],  # any order, repeats
    ],
    ids=["all", "dense", "sparse-and-back", "unordered"],
)
def test_frames_and_timestamps_are_those_of_decoding_every_frame(gop_videos, name, clips):
    path = gop_videos[name]
    all_frames, all_times = every_frame(path)
    with open_video(str(path)) as video:
        assert video.info.n_frames == len(all_frames) == 80
        for indices in clips:
            frames, timestamps = video.read(indices)
            np.testing.assert_array_equal(frames, all_frames[indices])
            np.testing.assert_allclose(timestamps, all_times[indices], atol=1e-6)
        assert video._in_order, "the in-order decoder must have read them, not decord's fallback"
    if name.endswith("(mkv)"):
        assert all_times[:4].tolist() == [0.0, 0.05, 0.1, 0.12]  # the file is variable-rate indeed


@pytest.mark.parametrize("name", ["gops.mp4", *sorted(GOOD_VIDEOS)])
def test_same_frames_as_decords_get_batch(gop_videos, tmp_path, name):
    """The frames the scan returned before the in-order decoder (decord's get_batch, one seek per
    sample), bit for bit, for each codec and container of the test archive."""
    if name == "gops.mp4":
        path, n_frames = gop_videos["irregular GOPs, B-frames, 25 fps (mp4)"], 80
    else:
        path, n_frames = write_video(tmp_path / name, **GOOD_VIDEOS[name]), GOOD_VIDEOS[name]["n_frames"]
    indices = list(range(0, n_frames, 3))
    expected = decord.VideoReader(str(path), num_threads=1).get_batch(indices).asnumpy()
    with open_video(str(path)) as video:
        frames, _ = video.read(indices)
        assert video._in_order
    np.testing.assert_array_equal(frames, expected)


@pytest.mark.parametrize(
    ("indices", "seeks"),
    [
        (list(range(0, 80, 2)), 1),  # dense: decodes through every keyframe, no seek but the first
        ([0, 40], 2),  # 40 is 9 frames past keyframe 31: seek there instead of decoding 1..30
        ([0, 5, 60], 2),  # 5 before keyframe 7: in order; 60: seek to 55
        ([50, 10], 2),  # backwards: seek again
    ],
)
def test_it_seeks_only_where_that_skips_frames(gop_videos, indices, seeks):
    with open_video(str(gop_videos["irregular GOPs, B-frames, 25 fps (mp4)"])) as video:
        for index in indices:
            video.read([index])
        assert video._decoder.seeks == seeks


def test_decords_48_pixel_bug_is_gone(tmp_path):
    """decord 0.6 cannot copy 48-pixel-wide frames out; the in-order decoder reads them."""
    path = write_video(tmp_path / "narrow.mp4", width=48, height=48, n_frames=6)
    all_frames, _ = every_frame(path)
    with open_video(str(path)) as video:
        frames, _ = video.read([0, 3, 5])
    np.testing.assert_array_equal(frames, all_frames[[0, 3, 5]])


@pytest.mark.parametrize("name", ["irregular GOPs, B-frames, 25 fps (mp4)", "irregular GOPs, B-frames, variable rate (mkv)"])
def test_keyframe_sampling_reads_the_irregular_keyframes(gop_videos, name):
    """`--sample-interval keyframes`: clips of the file's keyframes wherever they are, the decoder
    skipping every other frame; the frames and timestamps are those of decoding every frame."""
    path = gop_videos[name]
    all_frames, all_times = every_frame(path)
    with open_video(str(path), keyframes_only=True) as video:
        clips = video.plan(2, SAMPLE_KEYFRAMES)
        assert [c.tolist() for c in clips] == [[0, 7], [30, 31], [55]]
        for indices in clips:
            frames, timestamps = video.read(indices)
            np.testing.assert_array_equal(frames, all_frames[indices])
            np.testing.assert_allclose(timestamps, all_times[indices], atol=1e-6)
        assert video._in_order and video._decoder.keyframes_only
        with pytest.raises(ValueError, match="not keyframes"):
            video.read([8])  # a frame the decoder skips is refused, never a wrong frame


def test_keyframes_of_a_frame_folder_are_all_its_frames(tmp_path):
    from PIL import Image

    for k in range(5):
        Image.fromarray(np.full((8, 8, 3), k * 40, dtype=np.uint8)).save(tmp_path / f"{k:03d}.png")
    with open_video(str(tmp_path), keyframes_only=True) as video:
        assert [c.tolist() for c in video.plan(3, SAMPLE_KEYFRAMES)] == [[0, 1, 2], [3, 4]]
        frames, _ = video.read([4])
        assert frames[0, 0, 0, 0] == 160


def test_frame_threads_return_the_same_frames(gop_videos):
    """--decode-cpus 2: FFmpeg decodes with two threads (frame threading), in order and across seeks."""
    path = gop_videos["irregular GOPs, B-frames, 25 fps (mp4)"]
    all_frames, _ = every_frame(path)
    with open_video(str(path), num_threads=2) as video:
        for indices in ([0, 2, 4, 40, 41], [79, 3], [30, 56]):
            frames, _ = video.read(indices)
            np.testing.assert_array_equal(frames, all_frames[indices])
        assert video._in_order and video._decoder.stream.thread_count == 2
