"""Write stage: detected clips -> per-video Parquet files in OUT, committed exactly once.

Chosen design: a driver-side writer consumes the detect stream (`iter_rows`, rows are
`schemas.stage_rows.DetectedRow`), gathers each video's clips (`VideoAssembler`) and commits the
video when its last clip (or its error row) has arrived.

Commit protocol for one video (`OutStore.commit_video`), files named by video_id so that writing a
video again replaces its files and never adds a second copy:

    1. remove OUT/videos/<id>.parquet if present   (a re-scan first un-commits the video)
    2. put    OUT/frames/<id>.parquet               (absent for a failed video: any old one is removed)
    3. put    OUT/clips/<id>.parquet
    4. put    OUT/videos/<id>.parquet               the commit marker, LAST

Each put is atomic: locally a write to `<name>.tmp-<uuid>` (not matched by `*.parquet`) and an
os.replace; on object stores (s3://) a single PUT, which becomes visible whole. A video is committed
iff its `videos` file exists; a run killed between 2 and 4 leaves frames/clips files without a
marker, which the next run deletes (`clean_uncommitted`) before it re-does that video.

A file replaced in the archive (same uri, new size/mtime/ETag) gets a new video_id; once the new
version is committed the old version's files are removed (`remove_superseded`), marker first, so
a uri never counts twice.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from jobs.listing import uri_key_of
from jobs.storage import filesystem_for
from lavida_core.rle import split_counts
from schemas.stage_rows import DetectedRow
from schemas.tables import CLIPS_SCHEMA, FRAMES_SCHEMA, RUNS_SCHEMA, VIDEOS_SCHEMA

log = logging.getLogger(__name__)

TMP_MARK = ".tmp-"


class OutStore:
    """The OUT folder or prefix: where each table's files live, and atomic puts into it."""

    def __init__(self, out: str, storage_options: dict | None = None) -> None:
        self.fs, self.root = filesystem_for(out, storage_options)
        self.root = self.root.rstrip("/")
        self.is_local = isinstance(self.fs, LocalFileSystem)

    def path(self, table: str, name: str) -> str:
        return f"{self.root}/{table}/{name}.parquet"

    def names(self, table: str) -> set[str]:
        """Stems of the committed-looking files of a table (`<name>.parquet`)."""
        return {os.path.basename(p)[: -len(".parquet")] for p in self._ls(table) if p.endswith(".parquet")}

    def committed_ids(self) -> set[str]:
        return self.names("videos")

    def clean_uncommitted(self) -> int:
        """Delete leftovers of interrupted commits: temporary files, frames/clips files without a marker."""
        committed = self.committed_ids()
        stale = [p for table in ("frames", "clips", "videos", "runs") for p in self._ls(table) if TMP_MARK in os.path.basename(p)]
        for table in ("frames", "clips"):
            stale += [self.path(table, name) for name in self.names(table) - committed]
        for path in stale:
            self.fs.rm_file(path)
        if stale:
            log.info("removed %d leftovers of interrupted commits", len(stale))
        return len(stale)

    def commit_video(self, video_id: str, *, frames: pa.Table | None, clips: pa.Table | None, video: pa.Table) -> None:
        """Steps 1-4 of the module docstring; frames/clips None for a failed video."""
        self._remove(self.path("videos", video_id))
        for table, rows in (("frames", frames), ("clips", clips)):
            if rows is None:
                self._remove(self.path(table, video_id))
            else:
                self.put(self.path(table, video_id), rows)
        self.put(self.path("videos", video_id), video)

    def remove_video(self, video_id: str) -> None:
        """Un-commit a video (marker first), then remove its rows."""
        for table in ("videos", "frames", "clips"):
            self._remove(self.path(table, video_id))

    def remove_superseded(self, video_id: str, committed: set[str]) -> list[str]:
        """Remove the committed videos of the same uri as `video_id` but another version."""
        old = [other for other in committed if other != video_id and uri_key_of(other) == uri_key_of(video_id)]
        for other in old:
            log.info("removing %s: replaced by a new version of the same file (%s)", other, video_id)
            self.remove_video(other)
        return old

    def put(self, path: str, table: pa.Table) -> None:
        """Write one Parquet file atomically (see the module docstring)."""
        buffer = pa.BufferOutputStream()
        pq.write_table(table, buffer, compression="zstd")
        data = buffer.getvalue().to_pybytes()
        if not self.is_local:
            self.fs.pipe_file(path, data)
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}{TMP_MARK}{uuid.uuid4().hex}"
        with open(tmp, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)

    def _remove(self, path: str) -> None:
        if self.fs.exists(path):
            self.fs.rm_file(path)

    def _ls(self, table: str) -> list[str]:
        try:
            return [p for p in self.fs.ls(f"{self.root}/{table}", detail=False)]
        except FileNotFoundError:
            return []


@dataclass
class Video:
    """One video's rows from the detect stream, once complete."""

    meta: DetectedRow  # the row that carried its video's fields first
    clips: list[DetectedRow]  # clip rows in clip_index order; empty when the video failed
    status: str
    error: str | None


@dataclass
class VideoAssembler:
    """Gathers detect rows per video; `add` returns the Video when it is complete."""

    pending: dict[str, dict[int, DetectedRow]] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)

    def add(self, row: DetectedRow) -> Video | None:
        if row.video_id in self.done:
            return None  # a clip that arrives after its video failed
        if row.is_error:
            self.done.add(row.video_id)
            self.pending.pop(row.video_id, None)
            return Video(meta=row, clips=[], status=row.status, error=row.error or None)
        clips = self.pending.setdefault(row.video_id, {})
        clips[int(row.clip_index)] = row
        if len(clips) < int(row.n_clips):
            return None
        self.done.add(row.video_id)
        del self.pending[row.video_id]
        ordered = [clips[k] for k in sorted(clips)]
        return Video(meta=ordered[0], clips=ordered, status="ok", error=None)


def frames_table(video: Video, run_id: str) -> pa.Table:
    """The `frames` rows of a complete video: one per sampled frame."""
    meta = video.meta
    size = [int(meta.height), int(meta.width)]
    columns: dict[str, list] = {name: [] for name in FRAMES_SCHEMA.names}
    for clip in video.clips:
        indices = np.asarray(clip.frame_indices, dtype=np.int64)  # [T]
        counts = split_counts(clip.mask_counts, len(indices))
        columns["clip_index"] += [int(clip.clip_index)] * len(indices)
        columns["frame_index"] += indices.tolist()
        columns["timestamp_s"] += np.asarray(clip.timestamps, dtype=np.float64).tolist()
        columns["score"] += np.asarray(clip.scores, dtype=np.float32).tolist()
        columns["mask_rle"] += [{"size": size, "counts": c} if c else None for c in counts]
    n = len(columns["frame_index"])
    columns["video_id"], columns["uri"], columns["run_id"] = [meta.video_id] * n, [meta.uri] * n, [run_id] * n
    return pa.Table.from_pydict(columns, schema=FRAMES_SCHEMA)


def clips_table(video: Video, run_id: str, anomaly_types: list[str]) -> pa.Table:
    rows = []
    for clip in video.clips:
        timestamps = np.asarray(clip.timestamps, dtype=np.float64)  # [T]
        rows.append(
            {
                "video_id": clip.video_id,
                "uri": clip.uri,
                "clip_index": int(clip.clip_index),
                "frame_indices": np.asarray(clip.frame_indices, dtype=np.int64).tolist(),
                "start_s": float(timestamps[0]),
                "end_s": float(timestamps[-1]),
                "max_score": float(np.max(clip.scores)),
                "anomaly_types": list(anomaly_types),
                "run_id": run_id,
            }
        )
    return pa.Table.from_pylist(rows, schema=CLIPS_SCHEMA)


def video_table(video: Video, run_id: str) -> pa.Table:
    meta = video.meta
    row = {
        "video_id": meta.video_id,
        "uri": meta.uri,
        "status": video.status,
        "error": video.error,
        "n_frames": _known(int(meta.n_frames)),
        "fps": _known(float(meta.fps)),
        "duration_s": _known(float(meta.duration_s)),
        "width": _known(int(meta.width)),
        "height": _known(int(meta.height)),
        "run_id": run_id,
        "size_bytes": int(meta.size_bytes),
        "version_tag": meta.version_tag,
        "n_sampled_frames": sum(len(c.frame_indices) for c in video.clips),
        "n_clips": len(video.clips),
        "committed_at": datetime.now(UTC),
    }
    return pa.Table.from_pylist([row], schema=VIDEOS_SCHEMA)


def run_table(row: dict) -> pa.Table:
    return pa.Table.from_pylist([row], schema=RUNS_SCHEMA)


def _known(value: float | int) -> float | int | None:
    """The decode stage's -1 / NaN placeholders for unknown values -> null."""
    if value is None or value != value or value == -1:
        return None
    return value
