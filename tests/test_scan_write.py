"""jobs.write without Ray: the per-video commit protocol, leftovers of killed runs, row assembly."""

import duckdb
import numpy as np
import pyarrow.parquet as pq
from pycocotools import mask as mask_utils

from jobs.write import OutStore, Video, VideoAssembler, clips_table, frames_table, video_table
from lavida_core.rle import encode_rles, join_counts
from schemas.stage_rows import DetectedRow
from schemas.tables import FRAMES_SCHEMA, VIDEOS_SCHEMA

VIDEO = {"video_id": "aaaaaaaaaa0000000001", "uri": "/archive/a.mp4", "size_bytes": 100, "version_tag": "mtime:1.0",
         "n_frames": 9, "fps": 3.0, "duration_s": 3.0, "height": 4, "width": 6}  # fmt: skip


def clip_row(clip_index, indices, n_clips=2, video=VIDEO):
    masks = np.zeros((len(indices), video["height"], video["width"]), dtype=bool)  # [T, H, W]
    masks[0, 1:3, 2:5] = True  # first frame of each clip has a mask, the others none
    return DetectedRow(
        **video, row_kind="clip", status="ok", error="", n_clips=n_clips, clip_index=clip_index,
        frame_indices=np.array(indices, dtype=np.int64), timestamps=np.array(indices) / video["fps"],
        scores=np.linspace(0.1, 0.9, len(indices), dtype=np.float32), mask_counts=join_counts(encode_rles(masks)),
        model_trained=False,
    )  # fmt: skip


def error_row(status="truncated", video=VIDEO):
    fields = {**video, "n_frames": -1, "fps": float("nan"), "duration_s": float("nan"), "height": -1, "width": -1}
    return DetectedRow(**fields, row_kind="error", status=status, error="cut short", n_clips=0, clip_index=-1,
                       frame_indices=np.zeros(0, np.int64), timestamps=np.zeros(0), scores=np.zeros(0, np.float32),
                       mask_counts="", model_trained=False)  # fmt: skip


def test_assembler_waits_for_every_clip_in_any_order():
    assembler = VideoAssembler()
    assert assembler.add(clip_row(1, [6, 8])) is None
    video = assembler.add(clip_row(0, [0, 2, 4]))
    assert video.status == "ok" and [c.clip_index for c in video.clips] == [0, 1]
    assert not assembler.pending


def test_assembler_error_row_ends_the_video_and_late_clips_are_dropped():
    assembler = VideoAssembler()
    assert assembler.add(clip_row(0, [0, 2, 4])) is None
    video = assembler.add(error_row())
    assert (video.status, video.clips) == ("truncated", [])
    assert assembler.add(clip_row(1, [6, 8])) is None and not assembler.pending


def test_tables_follow_the_schemas_and_masks_decode_to_frame_size():
    video = Video(meta=clip_row(0, [0, 2, 4]), clips=[clip_row(0, [0, 2, 4]), clip_row(1, [6, 8])], status="ok", error=None)
    frames = frames_table(video, "run1")
    assert frames.schema.equals(FRAMES_SCHEMA)
    assert frames["frame_index"].to_pylist() == [0, 2, 4, 6, 8]
    assert frames["clip_index"].to_pylist() == [0, 0, 0, 1, 1]
    masks = frames["mask_rle"].to_pylist()
    assert [m is None for m in masks] == [False, True, True, False, True]
    decoded = mask_utils.decode({"size": masks[0]["size"], "counts": masks[0]["counts"]})
    assert decoded.shape == (4, 6) and decoded.sum() == 6
    clips = clips_table(video, "run1", ["fire"])
    assert clips["frame_indices"].to_pylist() == [[0, 2, 4], [6, 8]]
    assert clips["max_score"].to_pylist() == [np.float32(0.9)] * 2
    row = video_table(video, "run1").to_pylist()[0]
    assert (row["n_sampled_frames"], row["n_clips"], row["width"], row["height"]) == (5, 2, 6, 4)


def test_failed_video_row_has_nulls_for_unknowns():
    row = video_table(Video(meta=error_row(), clips=[], status="truncated", error="cut short"), "run1")
    assert row.schema.equals(VIDEOS_SCHEMA)
    got = row.to_pylist()[0]
    assert (got["status"], got["n_frames"], got["fps"], got["width"], got["n_clips"]) == ("truncated", None, None, None, 0)


def _commit(store, video_id, status="ok", run="r1"):
    row = clip_row(0, [0, 2, 4], n_clips=1, video={**VIDEO, "video_id": video_id})
    video = Video(meta=row, clips=[row], status=status, error=None)
    store.commit_video(video_id, frames=frames_table(video, run), clips=clips_table(video, run, ["x"]), video=video_table(video, run))


def test_commit_twice_replaces_never_duplicates(tmp_path):
    store = OutStore(str(tmp_path / "out"))
    _commit(store, "aaaaaaaaaa0000000001", run="r1")
    _commit(store, "aaaaaaaaaa0000000001", run="r2")
    count, runs = duckdb.sql(
        f"select count(*), list(distinct run_id) from read_parquet('{tmp_path}/out/frames/**/*.parquet', hive_partitioning=true)"
    ).fetchall()[0]
    assert (count, runs) == (3, ["r2"])
    assert store.committed_ids() == {"aaaaaaaaaa0000000001"}
    assert not [p for p in (tmp_path / "out").rglob("*") if ".tmp-" in p.name]


def test_clean_uncommitted_removes_what_a_killed_commit_left(tmp_path):
    store = OutStore(str(tmp_path / "out"))
    _commit(store, "aaaaaaaaaa0000000001")
    _commit(store, "bbbbbbbbbb0000000002")
    # a commit killed after step 2/3: frames + clips of video 2 rewritten, marker removed; and a temp file
    (tmp_path / "out/videos/bbbbbbbbbb0000000002.parquet").unlink()
    (tmp_path / "out/frames/cccccccccc0000000003.parquet.tmp-123").write_bytes(b"partial")
    assert store.clean_uncommitted() == 3
    assert store.names("frames") == store.names("clips") == store.committed_ids() == {"aaaaaaaaaa0000000001"}
    assert not list((tmp_path / "out/frames").glob("*.tmp-*"))


def test_remove_superseded_keeps_only_the_new_version_of_a_uri(tmp_path):
    store = OutStore(str(tmp_path / "out"))
    old, new, other = "aaaaaaaaaa0000000001", "aaaaaaaaaa0000000009", "bbbbbbbbbb0000000001"
    for video_id in (old, new, other):
        _commit(store, video_id)
    assert store.remove_superseded(new, store.committed_ids()) == [old]
    assert store.committed_ids() == store.names("frames") == {new, other}


def test_put_is_readable_parquet(tmp_path):
    store = OutStore(str(tmp_path / "out"))
    _commit(store, "aaaaaaaaaa0000000001")
    assert pq.read_table(store.path("videos", "aaaaaaaaaa0000000001")).num_rows == 1
