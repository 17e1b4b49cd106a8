"""The rows between scan stages (schemas/stage_rows.py) as the stages really hand them over, without
Ray: decode's rows batched into columns the way Ray Data's numpy batches hold them, through the
detect stage (FAKE detectors from tests/fake_detector.py: known scores and masks), into the writer."""

import dataclasses
from datetime import UTC, datetime

import numpy as np
import pytest
from video_factory import write_truncated, write_video

from jobs.out.profile import ScanProfile
from jobs.out.tables import OutTables
from jobs.scan.decode import DecodeConfig, decode_video
from jobs.scan.detect import DetectClips
from jobs.scan.listing import list_videos
from jobs.scan.write import OutWriter, WriterOptions
from schemas.stage_rows import DecodedRow, DetectedRow
from schemas.tables import FRAMES_SCHEMA


def _decoded_rows(folder) -> list[dict]:
    config = DecodeConfig(frames_per_clip=3, sample_interval=2)
    return [row for video in list_videos(str(folder)) for row in decode_video(dataclasses.asdict(video), config=config)]


def _as_batch(rows: list[dict]) -> dict[str, np.ndarray]:
    """Rows -> one numpy column per field (object columns for arrays and strings, as Ray Data's)."""
    batch = {}
    for name in rows[0]:
        column = np.empty(len(rows), dtype=object)
        for i, row in enumerate(rows):
            column[i] = row[name]
        batch[name] = column
    return batch


def _rows_of(batch: dict[str, np.ndarray]) -> list[dict]:
    n = len(next(iter(batch.values())))
    return [{name: column[i] for name, column in batch.items()} for i in range(n)]


@pytest.fixture
def archive(tmp_path):
    write_video(tmp_path / "narrow.mp4", width=64, height=48, n_frames=8)
    write_video(tmp_path / "wide.mp4", width=96, height=48, n_frames=8)
    write_truncated(tmp_path / "cut.mp4")
    return tmp_path


def test_decode_rows_are_decoded_rows_and_detect_rows_are_detected_rows(archive):
    decoded = [DecodedRow.from_row(row) for row in _decoded_rows(archive)]
    assert sorted({(r.uri.rsplit("/", 1)[-1], r.row_kind) for r in decoded}) == [
        ("cut.mp4", "error"), ("narrow.mp4", "clip"), ("wide.mp4", "clip"),
    ]  # fmt: skip
    detect = DetectClips(model="tiny", device="cpu", anomaly_types=["x"], detector_class="fake_detector:PickyDetector")
    detected = [DetectedRow.from_row(row) for row in _rows_of(detect(_as_batch([r.as_row() for r in decoded])))]
    assert [r.columns() for r in detected[:1]] == [DetectedRow.columns()]
    by_video = {r.uri.rsplit("/", 1)[-1]: r for r in detected}
    assert (by_video["wide.mp4"].row_kind, by_video["wide.mp4"].status) == ("error", "detect_error")  # PickyDetector refuses > 80 px
    assert by_video["cut.mp4"].status == "truncated" and by_video["narrow.mp4"].status == "ok"
    narrow = [r for r in detected if r.uri.endswith("narrow.mp4")]
    assert all(len(r.scores) == len(r.frame_indices) and r.mask_counts.count("\n") == len(r.frame_indices) - 1 for r in narrow)


def test_a_missing_column_names_itself():
    with pytest.raises(KeyError, match="mask_counts"):
        DetectedRow.from_row({name: None for name in DetectedRow.columns() if name != "mask_counts"})


def test_the_writer_assembles_detected_rows_into_frames_rows(archive, tmp_path):
    rows = [r for r in _decoded_rows(archive) if r["uri"].endswith("narrow.mp4")]
    detect = DetectClips(model="tiny", device="cpu", anomaly_types=["x"], detector_class="fake_detector:BrightDetector")
    [video] = [v for v in list_videos(str(archive)) if v.uri.endswith("narrow.mp4")]
    profile = ScanProfile("tiny", ("x",), 2, 3)
    writer = OutWriter(WriterOptions(out=str(tmp_path / "out"), storage_options={}, profile=profile, compact=False), "run1")
    writer.start([video], {**RUN, "profile_id": profile.profile_id})
    for row in reversed(_rows_of(detect(_as_batch(rows)))):  # clips may arrive in any order
        writer.add(DetectedRow.from_row(row))
    [committed] = writer.commit()
    writer.close()
    assert (committed.status, committed.detail) == ("ok", "2 clips")
    table = OutTables(str(tmp_path / "out")).read("frames")
    assert table.schema.equals(FRAMES_SCHEMA)
    assert sorted(table["frame_index"].to_pylist()) == [0, 2, 4, 6]


RUN = {
    "run_id": "run1", "kind": "scan", "source": None, "out": "out", "model": "tiny", "model_trained": None,
    "anomaly_types": ["x"], "sample_interval": 2, "frames_per_clip": 3, "device": "cpu",
    "started_at": datetime.now(UTC), "finished_at": None, "n_ok": None, "n_failed": None, "n_skipped": None,
    "description": None, "schema_version": 3, "model_card": None,
}  # fmt: skip
