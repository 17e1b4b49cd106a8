"""Hand-made OUT trees whose events are known exactly (no model, no video decoding).

Tables are built from the Arrow schemas of schemas/tables.py and written as the scan writes them
(Delta tables through jobs/out/tables.py, the default events made by jobs/scan/write.py's
`default_events`). Masks are real COCO RLE from pycocotools, so readers decode them as a scan's.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
from pycocotools import mask as mask_utils

from jobs.out.tables import OutTables
from jobs.scan.write import default_events
from schemas.tables import SCHEMA_VERSION, SCHEMAS

RUN_ID = "run-test"
ANOMALY_TYPES = ("fighting", "a person climbing a fence")
_NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def rle_of(mask: np.ndarray) -> dict:
    """COCO compressed RLE of a bool mask [H, W], as the frames table stores it."""
    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in encoded["size"]], "counts": encoded["counts"].decode("ascii")}


def box_mask(height: int, width: int, top: int, left: int, size: int) -> np.ndarray:
    mask = np.zeros((height, width), dtype=bool)  # [H, W]
    mask[top : top + size, left : left + size] = True
    return mask


@dataclass(kw_only=True)
class FakeVideo:
    """One video's sampled frames: scores at timestamps (seconds), every `step` frames."""

    video_id: str
    scores: Sequence[float]
    fps: float = 10.0
    step: int = 5  # frames between samples; timestamps are frame_index / fps
    uri: str | None = None  # default file:///videos/<video_id>.mp4
    height: int = 24
    width: int = 32
    committed: bool = True  # False: frames/clips written, no videos row (a crashed run's leftovers)
    status: str = "ok"
    frames_per_clip: int = 4
    masks: dict[int, np.ndarray] = field(default_factory=dict)  # sample number -> bool [H, W]
    # the video's length; default: it runs one step past its last sample (len(scores) * step frames)
    duration_s: float | None = None

    @property
    def duration(self) -> float:
        return self.duration_s if self.duration_s is not None else len(self.scores) * self.step / self.fps

    @property
    def frame_indices(self) -> list[int]:
        return [i * self.step for i in range(len(self.scores))]

    @property
    def timestamps(self) -> list[float]:
        return [index / self.fps for index in self.frame_indices]

    def resolved_uri(self) -> str:
        return self.uri or f"file:///videos/{self.video_id}.mp4"


def frames_table(video: FakeVideo, run_id: str = RUN_ID) -> pa.Table:
    n = len(video.scores)
    masks = [rle_of(video.masks[i]) if i in video.masks else None for i in range(n)]
    return pa.Table.from_pydict(
        {
            "video_id": [video.video_id] * n,
            "uri": [video.resolved_uri()] * n,
            "clip_index": [i // video.frames_per_clip for i in range(n)],
            "frame_index": video.frame_indices,
            "timestamp_s": video.timestamps,
            "score": list(video.scores),
            "mask_rle": masks,
            "run_id": [run_id] * n,
            "scan_date": [_NOW.date()] * n,
        },
        schema=SCHEMAS["frames"],
    )


def clips_table(video: FakeVideo, anomaly_types: Sequence[str], run_id: str = RUN_ID) -> pa.Table:
    indices, times, k = video.frame_indices, video.timestamps, video.frames_per_clip
    starts = list(range(0, len(indices), k))
    return pa.Table.from_pydict(
        {
            "video_id": [video.video_id] * len(starts),
            "uri": [video.resolved_uri()] * len(starts),
            "clip_index": list(range(len(starts))),
            "frame_indices": [indices[s : s + k] for s in starts],
            "start_s": [times[s] for s in starts],
            "end_s": [times[min(s + k, len(times)) - 1] for s in starts],
            "max_score": [max(video.scores[s : s + k]) for s in starts],
            "anomaly_types": [list(anomaly_types)] * len(starts),
            "run_id": [run_id] * len(starts),
            "scan_date": [_NOW.date()] * len(starts),
        },
        schema=SCHEMAS["clips"],
    )


def videos_table(video: FakeVideo, run_id: str = RUN_ID) -> pa.Table:
    n_frames = round(video.duration * video.fps)
    ok = video.status == "ok"
    row = {
        "video_id": video.video_id,
        "uri": video.resolved_uri(),
        "status": video.status,
        "error": None if ok else f"fake {video.status} error",
        "n_frames": n_frames if ok else None,
        "fps": video.fps if ok else None,
        "duration_s": video.duration if ok else None,
        "width": video.width if ok else None,
        "height": video.height if ok else None,
        "run_id": run_id,
        "size_bytes": 1000,
        "version_tag": "1",
        "n_sampled_frames": len(video.scores),
        "n_clips": -(-len(video.scores) // video.frames_per_clip),
        "committed_at": _NOW,
        "run_ids": [run_id] if ok else [],
        "profile_id": "test-profile",
        "scan_date": _NOW.date(),
    }
    return pa.Table.from_pylist([row], schema=SCHEMAS["videos"])


def runs_table(
    *,
    run_id: str = RUN_ID,
    out: str,
    anomaly_types: Sequence[str],
    trained: bool,
    kind: str = "scan",
    description: str | None = None,
    n_ok: int = 0,
    n_failed: int = 0,
) -> pa.Table:
    row = {
        "run_id": run_id,
        "kind": kind,
        "source": "/videos",
        "out": out,
        "model": "tiny",
        "model_trained": trained,
        "anomaly_types": list(anomaly_types),
        "sample_interval": 5,
        "frames_per_clip": 4,
        "device": "cpu",
        "started_at": _NOW,
        "finished_at": _NOW,
        "n_ok": n_ok,
        "n_failed": n_failed,
        "n_skipped": 0,
        "description": description,
        "schema_version": SCHEMA_VERSION,
        "model_card": None,
        "profile_id": "test-profile",
        "updated_at": _NOW,
    }
    return pa.Table.from_pylist([row], schema=SCHEMAS["runs"])


def write_out(
    out: Path,
    videos: Sequence[FakeVideo],
    *,
    anomaly_types: Sequence[str] = ANOMALY_TYPES,
    trained: bool = False,
    run_id: str = RUN_ID,
) -> Path:
    """Write `videos` as a scan would into the folder `out`; returns `out`."""
    tables = OutTables(str(out))
    ok = [v for v in videos if v.status == "ok"]
    committed = [v for v in videos if v.committed]
    n_ok = sum(v.status == "ok" for v in committed)
    runs = runs_table(run_id=run_id, out=str(out), anomaly_types=anomaly_types, trained=trained, n_ok=n_ok, n_failed=len(committed) - n_ok)
    frames = _concat([frames_table(v, run_id) for v in ok], "frames")
    video_rows = _concat([videos_table(v, run_id) for v in committed], "videos")
    tables.append("frames", frames, run_id)
    tables.append("clips", _concat([clips_table(v, anomaly_types, run_id) for v in ok], "clips"), run_id)
    tables.append("events", default_events(frames, video_rows.filter(pa.compute.equal(video_rows["status"], "ok")), runs), run_id)
    tables.append("videos", video_rows, run_id)
    tables.append("runs", runs, run_id)
    return out


def _concat(tables: list[pa.Table], name: str) -> pa.Table:
    return pa.concat_tables(tables) if tables else SCHEMAS[name].empty_table()


# --- Parquet written by a real scan (tiny model, random weights) ---------------------------------

SCANNED_VIDEOS = {  # file name -> video_factory.write_video kwargs
    "cam1.mp4": dict(codec="h264", width=64, height=48, fps=25, n_frames=50),
    "cam2.avi": dict(codec="mpeg4", width=80, height=60, fps=20, n_frames=40),
}


@functools.cache
def scanned_out(base: Path) -> Path:
    """A real `scan` (tiny model on CPU, local Ray) of two generated videos, once per test session.

    base: a session temporary folder (tmp_path_factory.getbasetemp()); returns OUT under it.
    """
    from video_factory import write_video

    from jobs.scan.job import ScanOptions, scan

    archive, out = base / "scanned-archive", base / "scanned-out"
    archive.mkdir(parents=True, exist_ok=True)
    for name, kwargs in SCANNED_VIDEOS.items():
        write_video(archive / name, **kwargs)
    scan(ScanOptions(source=str(archive), out=str(out), anomaly_types=ANOMALY_TYPES, sample_interval=4, frames_per_clip=4))
    return out
