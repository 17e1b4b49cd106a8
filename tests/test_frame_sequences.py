"""Frame-folder videos (jobs/video/frame_sequences.py): order, pixels, timestamps, listing fingerprint, decode rows."""

import os

import numpy as np
from PIL import Image

from jobs.scan.decode import DecodeConfig, decode_video
from jobs.scan.listing import describe_uris
from jobs.video.frame_sequences import FRAME_FOLDER_FPS, FrameSequence


def write_folder(folder, n, *, ext="jpg", mode="RGB"):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        value = 10 * i
        array = np.full((8, 16, 3), value, dtype=np.uint8) if mode == "RGB" else np.full((8, 16), value, dtype=np.uint8)
        Image.fromarray(array).save(folder / f"{i}.{ext}")  # unpadded: 10.jpg must come after 9.jpg
    return folder


def test_frames_in_numeric_order_with_index_timestamps(tmp_path):
    folder = write_folder(tmp_path / "v", 12, ext="png")
    (folder / ".hidden.png").write_bytes(b"x")
    (folder / "notes.txt").write_text("not a frame")
    sequence = FrameSequence.open(str(folder))
    assert len(sequence) == 12 and sequence.get_avg_fps() == FRAME_FOLDER_FPS
    frames = sequence.get_batch([9, 10, 11]).asnumpy()
    assert frames.shape == (3, 8, 16, 3) and frames[:, 0, 0, 0].tolist() == [90, 100, 110]
    stamps = sequence.get_frame_timestamp([0, 10])
    assert np.allclose(stamps, [[0, 1 / FRAME_FOLDER_FPS], [10 / FRAME_FOLDER_FPS, 11 / FRAME_FOLDER_FPS]])


def test_grayscale_tif_becomes_rgb(tmp_path):
    folder = write_folder(tmp_path / "ped", 3, ext="tif", mode="L")
    frames = FrameSequence.open(str(folder)).get_batch([2]).asnumpy()
    assert frames.shape == (1, 8, 16, 3) and (frames == 20).all()


def test_listing_fingerprints_a_folder_by_its_frames(tmp_path):
    folder = write_folder(tmp_path / "v", 4)
    [first] = describe_uris([str(folder)])
    assert first.uri == str(folder) and first.size_bytes == sum(os.path.getsize(folder / f"{i}.jpg") for i in range(4))
    assert describe_uris([str(folder)]) == [first]  # stable
    write_folder(tmp_path / "v", 5)  # one more frame
    [second] = describe_uris([str(folder)])
    assert second.video_id != first.video_id and second.video_id[:10] == first.video_id[:10]  # same uri key


def test_decode_stage_reads_a_folder_like_a_video(tmp_path):
    folder = write_folder(tmp_path / "v", 7)
    [video] = describe_uris([str(folder)])
    row = {"uri": video.uri, "size_bytes": video.size_bytes, "version_tag": video.version_tag, "video_id": video.video_id}
    rows = list(decode_video(row, config=DecodeConfig(frames_per_clip=2, sample_interval=3)))
    assert [r["row_kind"] for r in rows] == ["clip", "clip"]
    assert [r["frame_indices"].tolist() for r in rows] == [[0, 3], [6]]
    assert rows[0]["n_frames"] == 7 and rows[0]["fps"] == FRAME_FOLDER_FPS
    assert rows[0]["frames"].shape == (2, 8, 16, 3) and rows[1]["timestamps"].tolist() == [6 / FRAME_FOLDER_FPS]


def test_an_empty_folder_is_a_no_frames_row(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    [video] = describe_uris([str(folder)])
    row = {"uri": video.uri, "size_bytes": video.size_bytes, "version_tag": video.version_tag, "video_id": video.video_id}
    [error] = list(decode_video(row, config=DecodeConfig(frames_per_clip=2, sample_interval=1)))
    assert (error["row_kind"], error["status"]) == ("error", "no_frames")
