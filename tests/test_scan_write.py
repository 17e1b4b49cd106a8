"""jobs.scan.write without Ray: the commit protocol over real Delta tables, as the scan drives it.

Rows are made here as the detect stage makes them (DetectedRow); the writer is the real one, OUT a
real local folder, read back through the real views (jobs/out/duck.py).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import date

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from jobs.common.errors import UserError
from jobs.out import duck
from jobs.out.compact import compact
from jobs.out.leases import live_runs
from jobs.out.profile import ScanProfile
from jobs.out.tables import OutTables
from jobs.scan.listing import VideoFile
from jobs.scan.write import OutWriter, WriterOptions, frames_table
from lavida_core.rle import encode_rles, join_counts
from schemas.stage_rows import DetectedRow

PROFILE = ScanProfile("tiny", ("fire",), 1, 3)
FACTS = {"n_frames": 9, "fps": 3.0, "duration_s": 3.0, "height": 4, "width": 6}  # 9 frames: 3 clips of 3


def video_file(name: str, tag: str = "mtime:1.0") -> VideoFile:
    return VideoFile(uri=f"/archive/{name}.mp4", size_bytes=100, version_tag=tag, video_id=f"{name:0>10}{tag[-1]:0>10}")


def clip_row(video: VideoFile, clip_index: int, *, segment_index: int = 0, segment_clips: int = 3, score: float = 0.9) -> DetectedRow:
    indices = np.arange(clip_index * 3, clip_index * 3 + 3, dtype=np.int64)  # [T]
    masks = np.zeros((3, FACTS["height"], FACTS["width"]), dtype=bool)  # [T, H, W]
    masks[0, 1:3, 2:5] = True
    return DetectedRow(
        video_id=video.video_id, uri=video.uri, size_bytes=video.size_bytes, version_tag=video.version_tag,
        status="ok", error="", **FACTS, row_kind="clip", n_clips=3, segment_index=segment_index,
        segment_clips=segment_clips, clip_index=clip_index, frame_indices=indices, timestamps=indices / FACTS["fps"],
        scores=np.full(3, score, dtype=np.float32), mask_counts=join_counts(encode_rles(masks)), model_trained=False,
        embedding=clip_embedding(video.video_id, clip_index),
    )  # fmt: skip


def clip_embedding(video_id: str, clip_index: int) -> np.ndarray:
    """A unit vector [4] that names its clip (tests read it back)."""
    vector = np.array([hash(video_id) % 97 + 1, clip_index + 1, 1.0, 2.0], dtype=np.float32)
    return vector / np.linalg.norm(vector)


def error_row(video: VideoFile) -> DetectedRow:
    return dataclasses.replace(
        clip_row(video, 0), row_kind="error", status="truncated", error="cut short", n_clips=0, clip_index=-1,
        frame_indices=np.zeros(0, np.int64), timestamps=np.zeros(0), scores=np.zeros(0, np.float32), mask_counts="",
    )  # fmt: skip


def writer(out, run_id: str, *, profile: ScanProfile = PROFILE, rescan: bool = False, batch_videos: int = 100) -> OutWriter:
    options = WriterOptions(out=str(out), storage_options={}, profile=profile, rescan=rescan, batch_videos=batch_videos, compact=False)
    return OutWriter(options, run_id)


def run_row(run_id: str, profile: ScanProfile = PROFILE, finished: bool = False) -> dict:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    return {
        "run_id": run_id, "kind": "scan", "source": "/archive", "out": "out", "model": profile.model, "model_trained": False,
        "anomaly_types": list(profile.anomaly_types), "sample_interval": profile.sample_interval,
        "frames_per_clip": profile.frames_per_clip, "device": "cpu", "started_at": now, "finished_at": now if finished else None,
        "n_ok": None, "n_failed": None, "n_skipped": None, "description": None, "schema_version": 3, "model_card": None,
        "profile_id": profile.profile_id,
    }  # fmt: skip


def scan_rows(out, run_id: str, rows_by_video: dict[VideoFile, list[DetectedRow]], **kwargs) -> OutWriter:
    """Start a writer on these videos, feed it the rows, finish; returns it (released)."""
    w = writer(out, run_id, **kwargs)
    plan = w.start(list(rows_by_video), run_row(run_id, kwargs.get("profile", PROFILE)))
    todo = {item.video.video_id for item in plan.todo}
    for video, rows in rows_by_video.items():
        for row in rows:
            if video.video_id in todo:
                w.add(row)
    w.finish(lambda: run_row(run_id, kwargs.get("profile", PROFILE), finished=True))
    w.close()
    return w


def full_rows(video: VideoFile, score: float = 0.9) -> list[DetectedRow]:
    """3 clips in 2 segments (clips 0-1, clip 2), arriving out of order."""
    return [
        clip_row(video, 2, segment_index=1, segment_clips=1, score=score),
        clip_row(video, 1, segment_clips=2, score=score),
        clip_row(video, 0, segment_clips=2, score=score),
    ]


def keys(out, view: str = "frames", **connect) -> list[tuple]:
    return duck.connect(str(out), **connect).sql(f"SELECT video_id, frame_index FROM {view} ORDER BY 1, 2").fetchall()


def test_segments_in_any_order_commit_one_video_with_all_its_frames(tmp_path):
    a, b = video_file("a"), video_file("b")
    w = scan_rows(tmp_path / "out", "run1", {a: full_rows(a), b: [clip_row(b, 0, segment_clips=1), error_row(b), clip_row(b, 1)]})
    assert w.counts == {"ok": 1, "failed": 1}
    assert keys(tmp_path / "out") == [(a.video_id, i) for i in range(9)]
    con = duck.connect(str(tmp_path / "out"))
    videos = con.sql("SELECT video_id, status, n_clips, n_sampled_frames, run_ids, profile_id FROM videos ORDER BY 1").fetchall()
    assert videos == [(a.video_id, "ok", 3, 9, ["run1"], PROFILE.profile_id), (b.video_id, "truncated", 0, 0, [], PROFILE.profile_id)]
    # the failed video's first clip was committed as a segment, but no view shows it
    assert con.execute("SELECT count(*) FROM clips").fetchone() == (3,)
    embeddings = con.execute("SELECT video_id, clip_index, embedding, dim, first_frame, last_frame FROM embeddings ORDER BY 2").fetchall()
    assert [(v, c, d, first, last) for v, c, _, d, first, last in embeddings] == [(a.video_id, i, 4, 3 * i, 3 * i + 2) for i in range(3)]
    for _, clip_index, vector, *_ in embeddings:
        assert np.allclose(vector, clip_embedding(a.video_id, clip_index))
    assert con.execute("SELECT count(*) FROM _embeddings_delta").fetchall() == [(3,)]  # none of the failed video
    rle = con.execute("SELECT mask_rle FROM frames WHERE frame_index = 0").fetchone()[0]
    assert mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})[1:3, 2:5].all()


def test_materialised_events_equal_the_events_macro(tmp_path):
    a, b = video_file("a"), video_file("b")
    scan_rows(tmp_path / "out", "run1", {a: full_rows(a), b: full_rows(b, score=0.2)})
    con = duck.connect(str(tmp_path / "out"))
    stored = con.sql("SELECT * FROM events ORDER BY video_id, start_s").to_arrow_table()
    computed = con.sql("SELECT * FROM events() ORDER BY video_id, start_s").to_arrow_table()
    assert stored.num_rows == 1 and stored.column_names == computed.column_names
    assert stored.to_pylist() == computed.to_pylist()
    assert con.execute("SELECT count(*) FROM events(min_score := 0.1)").fetchone() == (2,)  # other thresholds still computed


def test_batches_commit_every_n_videos_with_the_videos_row_last(tmp_path):
    videos = [video_file(name) for name in "abcde"]
    w = writer(tmp_path / "out", "run1", batch_videos=2)
    w.start(videos, run_row("run1"))
    versions = []
    for video in videos:
        for row in full_rows(video):
            w.add(row)
        versions.append(len(OutTables(str(tmp_path / "out")).versions("videos")))
    w.commit()
    w.close()
    assert versions == [0, 1, 1, 2, 2]  # a commit per 2 finished videos; the fifth waits for the last batch
    history = OutTables(str(tmp_path / "out")).versions("frames")
    assert all(entry["lavida_run_id"] == "run1" for entry in history)


def test_a_killed_runs_segments_are_kept_and_only_the_rest_is_redone(tmp_path):
    out, a = tmp_path / "out", video_file("a")
    killed = writer(out, "killed")
    killed.start([a], run_row("killed"))
    killed.add(clip_row(a, 1, segment_clips=2))
    killed.add(clip_row(a, 0, segment_clips=2))
    killed.commit()  # segment 0 (clips 0, 1) committed
    # segment 1 (clip 2): the kill comes between its frames commit and its clips commit
    OutTables(str(out)).append("frames", frames_table([clip_row(a, 2, segment_index=1, segment_clips=1)], "killed", date.today()), "killed")
    killed.lease.release()  # the process is gone
    assert keys(out) == []  # nothing shows yet

    rerun = writer(out, "rerun")
    [item] = rerun.start([a], run_row("rerun")).todo
    assert item.kept_clips == (0, 1)
    rerun.add(clip_row(a, 2, segment_clips=1))
    rerun.commit()
    rerun.close()
    assert keys(out) == [(a.video_id, i) for i in range(9)]  # every frame once
    con = duck.connect(str(out))
    assert con.execute("SELECT run_ids FROM videos").fetchone() == (["killed", "rerun"],)
    # every clip's embedding once: the kept clips' from the killed run, the redone one's from the re-run
    assert con.execute("SELECT clip_index, run_id FROM embeddings ORDER BY 1").fetchall() == [(0, "killed"), (1, "killed"), (2, "rerun")]


def test_a_video_all_of_whose_clips_were_kept_commits_from_its_kept_row(tmp_path):
    out, a = tmp_path / "out", video_file("a")
    killed = writer(out, "killed")
    killed.start([a], run_row("killed"))
    for row in full_rows(a):
        killed.add(row)
    killed.ready_videos.clear()  # killed after the segments, before the videos row
    killed.commit()
    killed.lease.release()
    rerun = writer(out, "rerun")
    [item] = rerun.start([a], run_row("rerun")).todo
    assert item.kept_clips == (0, 1, 2)
    rerun.add(dataclasses.replace(error_row(a), row_kind="kept", status="ok", error="", n_clips=3, **FACTS))
    rerun.commit()
    assert keys(out) == [(a.video_id, i) for i in range(9)]
    assert duck.connect(str(out)).execute("SELECT count(*) FROM events").fetchone() == (1,)


def test_another_profile_is_refused_and_rescan_replaces_atomically(tmp_path):
    out, a = tmp_path / "out", video_file("a")
    scan_rows(out, "run1", {a: full_rows(a, score=0.9)})
    other = dataclasses.replace(PROFILE, anomaly_types=("smoke",))
    with pytest.raises(UserError, match=r"anomaly types \['fire'\] \(this scan: \['smoke'\]\).*--rescan"):
        writer(out, "run2", profile=other).start([a], run_row("run2", other))
    # the same profile skips the video
    assert writer(out, "run3").start([a], run_row("run3")).n_done == 1

    before = duck.connect(str(out))  # a reader that opened OUT before the re-scan
    scan_rows(out, "run4", {a: full_rows(a, score=0.1)}, profile=other, rescan=True)
    after = duck.connect(str(out))
    assert before.sql("SELECT DISTINCT run_id, score FROM frames").fetchall() == [("run1", pytest.approx(0.9))]
    assert after.sql("SELECT DISTINCT run_id, score FROM frames").fetchall() == [("run4", pytest.approx(0.1))]
    assert after.execute("SELECT count(*) FROM frames").fetchone() == (9,)
    assert after.execute("SELECT count(*) FROM events").fetchone() == (0,)
    assert after.execute("SELECT count(*), min(run_id), max(run_id) FROM embeddings").fetchone() == (3, "run4", "run4")


@pytest.mark.slow  # over ~2 s of CPU work: the full tier's (conftest.py)
def test_a_reader_never_sees_both_or_neither_while_a_video_is_rescanned(tmp_path):
    out, a = tmp_path / "out", video_file("a")
    scan_rows(out, "run0", {a: full_rows(a)})
    seen, stop, errors, reads = set(), threading.Event(), [], []

    def read():
        # an exception here (a file gone under the reader: the "neither" case) must fail the test,
        # not just end the thread with the readings gathered so far
        try:
            while not stop.is_set():
                con = duck.connect(str(out))
                seen.add(con.execute("SELECT count(*), count(DISTINCT run_id), (SELECT count(*) FROM embeddings) FROM frames").fetchone())
                reads.append(time.monotonic())
        except Exception as error:  # noqa: BLE001 - recorded and asserted on below
            errors.append(repr(error))

    reader = threading.Thread(target=read)
    reader.start()
    started = time.monotonic()
    for i in range(1, 6):
        scan_rows(out, f"run{i}", {a: full_rows(a)}, rescan=True)
        compact(OutTables(str(out)), live=set(), grace_s=0)  # the old rows deleted as soon as allowed
    stop.set()
    reader.join()
    assert errors == []
    assert len([t for t in reads if t > started]) >= 2  # the reader kept reading while the re-scans ran
    assert seen == {(9, 1, 3)}


def test_two_writers_claim_disjoint_videos(tmp_path):
    out = tmp_path / "out"
    videos = [video_file(name) for name in "abcdef"]
    first, second = writer(out, "first"), writer(out, "second")
    plan1 = first.start(videos[:4], run_row("first"))
    plan2 = second.start(videos[2:], run_row("second"))  # c and d are the first run's while it lives
    assert [i.video.video_id for i in plan1.todo] == [v.video_id for v in videos[:4]]
    assert [i.video.video_id for i in plan2.todo] == [v.video_id for v in videos[4:]]
    assert plan2.held == {videos[2].video_id: "first", videos[3].video_id: "first"}
    assert live_runs(OutTables(str(out)).fs, OutTables(str(out)).root) == {"first", "second"}
    first.close()
    second.close()
    third = writer(out, "third")
    assert len(third.start(videos[2:4], run_row("third")).todo) == 2  # the first run is gone: its claims lapse
    third.close()


def test_compaction_and_vacuum_keep_what_an_open_reader_reads(tmp_path):
    out = tmp_path / "out"
    for i, name in enumerate("abcd"):
        scan_rows(out, f"run{i}", {video_file(name): full_rows(video_file(name))})
    reader = duck.connect(str(out))
    tables = OutTables(str(out))
    files_before = len(tables.table("frames").file_uris())
    summary = compact(tables, live=set(), retention_hours=1)
    assert files_before == 4 and len(tables.table("frames").file_uris()) == 1 and summary.files_removed >= 4
    assert reader.execute("SELECT count(*) FROM frames").fetchone() == (36,)  # its files are within the retention
    summary = compact(tables, live=set(), retention_hours=0)
    assert summary.files_vacuumed >= 4  # now they are gone
    assert duck.connect(str(out)).execute("SELECT count(*) FROM frames").fetchone() == (36,)


def test_as_of_reads_an_earlier_state(tmp_path):
    out, a, b = tmp_path / "out", video_file("a"), video_file("b")
    scan_rows(out, "night1", {a: full_rows(a)})
    version = OutTables(str(out)).versions("videos")[0]["version"]
    time.sleep(0.05)
    scan_rows(out, "night2", {b: full_rows(b), a: full_rows(a, score=0.1)}, rescan=True)
    assert len(keys(out)) == 18
    assert keys(out, as_of=str(version)) == [(a.video_id, i) for i in range(9)]
    con = duck.connect(str(out), as_of=str(version))
    assert con.sql("SELECT DISTINCT score FROM frames").fetchall() == [(pytest.approx(0.9),)]
    with pytest.raises(UserError, match="versions 0"):
        duck.connect(str(out), as_of="999")
    with pytest.raises(UserError, match="ISO time"):
        duck.connect(str(out), as_of="last tuesday")


def test_an_old_layout_out_is_refused(tmp_path):
    (tmp_path / "out" / "videos").mkdir(parents=True)
    (tmp_path / "out" / "videos" / "aaaa.parquet").write_bytes(b"PAR1")
    with pytest.raises(UserError, match="older lavida.*new --out"):
        duck.connect(str(tmp_path / "out"))
    with pytest.raises(UserError, match="older lavida"):
        writer(tmp_path / "out", "run1").start([video_file("a")], run_row("run1"))


def test_compaction_keeps_a_killed_rescans_segments_for_the_next_scan(tmp_path):
    out, a = tmp_path / "out", video_file("a")
    scan_rows(out, "run1", {a: full_rows(a, score=0.9)})
    killed = writer(out, "killed", rescan=True)
    killed.start([a], run_row("killed"))
    killed.add(clip_row(a, 1, segment_clips=2, score=0.8))
    killed.add(clip_row(a, 0, segment_clips=2, score=0.8))
    killed.commit()  # segment 0 of the re-scan, then the kill
    killed.lease.release()
    summary = compact(OutTables(str(out)), live=set(), grace_s=0)
    assert summary.deleted_rows["clips"] == 0  # the run did not finish: its segment is kept for a week
    assert keys(out) == [(a.video_id, i) for i in range(9)]  # still the first scan's rows
    rerun = writer(out, "rerun", rescan=True)
    [item] = rerun.start([a], run_row("rerun")).todo
    assert item.kept_clips == (0, 1)
    rerun.add(clip_row(a, 2, segment_clips=1, score=0.1))
    rerun.commit()
    rerun.close()
    con = duck.connect(str(out))
    assert con.execute("SELECT count(*), max(score), min(score) FROM frames").fetchone() == (9, pytest.approx(0.8), pytest.approx(0.1))
    # the stored events were made from all 9 frames, the kept ones included: one event over frames 0-5
    assert con.execute("SELECT start_frame, end_frame, n_frames FROM events").fetchall() == [(0, 5, 6)]
