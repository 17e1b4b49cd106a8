"""Write stage: the writer owns OUT's commit protocol. The scan streams detected rows into it.

    writer = OutWriter(WriterOptions(...), run_id)
    plan = writer.start(videos, run_row)      # refuse another profile; claim the videos; keep what a
                                              # killed run committed; write the run's first row
    for row in detected_rows: writer.add(row) # commits in batches (every N videos or T seconds)
    summary = writer.finish(run_row_fn)       # last batch, the run's last row, compaction, clip index shard

Commit protocol (schemas/tables.py: every table is append-only, one Delta transaction per table):

    1. frames      the finished segments of the batch (a segment = consecutive clips of one video,
    2. embeddings  decoded by one task; a long video has many, a short one has one); embeddings
    3. clips       before clips, so a kept clip (below) always has its embedding
    4. events      the default-threshold events of the videos the batch completes
    5. videos      their rows, LAST: the commit marker

A video shows in the views once its `videos` row exists, and then with exactly the frames/clips of
the runs that row names (`run_ids`). Rows of a batch that was cut short never show. A re-scanned
video's new `videos` row replaces the old one in a single commit, so a reader sees the old rows or
the new ones, never both or neither. A killed run's finished segments are kept: the next run that
claims the video keeps them (`run_ids` names both runs) and decodes only the clips that are missing.

Concurrency: each run claims its videos (jobs/out/claims.py); a video another live run holds is left
to it and counted as skipped.

Index runs (`lavida index`, WriterOptions.index) back-fill embeddings of videos OUT already shows:
per batch, 1. embeddings, 2. each video's `videos` row again, the same but for `run_ids`, which now
names the index run too, and `committed_at`: the commit marker, as in a scan. `run_id` (the run that
scored the video) and its frames/clips/events are unchanged. A video the index run fails to decode
keeps its row as it was (no embeddings, still 'ok').
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jobs.common.errors import UserError
from jobs.common.interrupts import deferred_interrupts
from jobs.out import claims
from jobs.out.leases import Lease, live_runs
from jobs.out.profile import ScanProfile
from jobs.out.tables import OutTables
from jobs.scan.listing import VideoFile
from jobs.scan.options import DEFAULT_COMMIT_EVERY, DEFAULT_COMMIT_SECONDS
from lavida_core.clips import SAMPLE_KEYFRAMES
from lavida_core.rle import split_counts
from schemas.stage_rows import DetectedRow
from schemas.tables import CLIPS_SCHEMA, EMBEDDINGS_SCHEMA, EVENTS_SCHEMA, FRAMES_SCHEMA, RUNS_SCHEMA, SCHEMAS, VIDEOS_SCHEMA
from schemas.views import source_name, view_statements

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class WriterOptions:
    out: str
    storage_options: dict
    profile: ScanProfile
    rescan: bool = False  # score again videos OUT holds (with this profile or another)
    batch_videos: int = DEFAULT_COMMIT_EVERY  # commit when this many videos are finished ...
    batch_seconds: float = DEFAULT_COMMIT_SECONDS  # ... or this long after the batch's first segment
    compact: bool = True  # compact OUT's tables when the run ends
    subset: bool = False  # the run scores some clips of each video (a search's candidates), not all
    index: bool = False  # `lavida index`: embeddings of committed videos only (see `_commit_index`)


@dataclass(frozen=True)
class ToScan:
    video: VideoFile
    kept_clips: tuple[int, ...]  # clips a killed run committed, which this run keeps


@dataclass(frozen=True)
class WritePlan:
    todo: list[ToScan]
    n_done: int  # already in OUT with this profile (skipped)
    held: dict[str, str]  # video_id -> the live run scanning it now (skipped)


@dataclass(frozen=True)
class Committed:
    """A video the writer committed: for progress lines."""

    uri: str
    status: str
    detail: str


@dataclass
class _Video:
    """One video's progress through this run."""

    meta: DetectedRow | None = None
    kept: dict[int, str] = field(default_factory=dict)  # clip -> the killed run whose rows of it are kept
    committed_clips: set[int] = field(default_factory=set)
    segments: dict[int, dict[int, DetectedRow]] = field(default_factory=dict)  # segment -> clip -> row
    error: DetectedRow | None = None
    queued: bool = False  # finished, waiting for the batch's commit
    frames_scored: int = 0  # sampled frames of the clips this run finished

    @property
    def kept_clips(self) -> set[int]:
        return set(self.kept)

    @property
    def kept_runs(self) -> set[str]:
        return set(self.kept.values())


class OutWriter:
    def __init__(self, options: WriterOptions, run_id: str) -> None:
        self.options, self.run_id = options, run_id
        self.tables = OutTables(options.out, options.storage_options)
        self.lease = Lease(self.tables.fs, self.tables.root, run_id)
        self.videos: dict[str, _Video] = {}
        self.ready_segments: list[list[DetectedRow]] = []
        self.ready_videos: list[str] = []
        self.batch_started: float | None = None
        self.counts = {"ok": 0, "failed": 0}

    # --- start ---------------------------------------------------------------------------------

    def start(self, listed: list[VideoFile], run_row: dict) -> WritePlan:
        """Decide what this run scans (UserError for a profile OUT does not hold, without --rescan)."""
        self.tables.refuse_old_layout()
        if self.options.index:
            return self._start_index(listed, run_row)
        committed = self._committed([v.uri for v in listed])
        mine = self.options.profile.profile_id
        if not self.options.rescan:
            self._refuse_other_profiles(committed)
        todo_files = [v for v in listed if self.options.rescan or committed.get(v.uri, (None, None))[0] != v.video_id]
        n_done = len(listed) - len(todo_files)
        self.lease.acquire()
        self.write_run(run_row)
        held = claims.claim(self.tables, self.run_id, [v.video_id for v in todo_files])
        live = live_runs(self.tables.fs, self.tables.root)
        todo_files = [v for v in todo_files if v.video_id not in held]
        kept = self._keep_finished_segments([v.video_id for v in todo_files], mine, live)
        for video in todo_files:
            self.videos[video.video_id] = _Video(kept=kept.get(video.video_id, {}))
        if held:
            log.warning(
                "%d videos are being scanned by another run right now (%s); this run leaves them to it",
                len(held),
                ", ".join(sorted(set(held.values()))),
            )
        return WritePlan(todo=[ToScan(v, tuple(sorted(self.videos[v.video_id].kept_clips))) for v in todo_files], n_done=n_done, held=held)

    def _start_index(self, listed: list[VideoFile], run_row: dict) -> WritePlan:
        """An index run: claim the videos, then take the rows OUT shows for them now; a video whose
        file changed since its scan (another video_id), or that another run indexed meanwhile, is skipped."""
        self.lease.acquire()
        self.write_run(run_row)
        held = claims.claim(self.tables, self.run_id, [v.video_id for v in listed])
        con = self._connect_snapshot()
        con.register("_listed", pa.table({"video_id": pa.array([v.video_id for v in listed if v.video_id not in held], pa.string())}))
        rows = con.sql(
            "SELECT * FROM videos WHERE status = 'ok' AND video_id IN (SELECT video_id FROM _listed) "
            "AND video_id NOT IN (SELECT video_id FROM embeddings WHERE embedding_model = $model)",
            params={"model": self.options.profile.model},
        ).to_arrow_table()
        self.current = {row["video_id"]: row for row in rows.to_pylist()}
        todo = [v for v in listed if v.video_id in self.current]
        for video in todo:
            self.videos[video.video_id] = _Video()
        return WritePlan(todo=[ToScan(v, ()) for v in todo], n_done=len(listed) - len(todo) - len(held), held=held)

    def _committed(self, uris: list[str]) -> dict[str, tuple[str, str]]:
        """uri -> (video_id, profile_id) of the videos OUT shows for these uris."""
        con = self._connect_snapshot()
        con.register("_listed", pa.table({"uri": pa.array(uris, pa.string())}))
        rows = con.sql("SELECT uri, video_id, profile_id FROM videos WHERE uri IN (SELECT uri FROM _listed)").fetchall()
        return {uri: (video_id, profile) for uri, video_id, profile in rows}

    def _refuse_other_profiles(self, committed: dict[str, tuple[str, str]]) -> None:
        others = {profile for _, profile in committed.values()} - {self.options.profile.profile_id}
        if not others:
            return
        con = self._connect_snapshot()
        row = con.execute(
            "SELECT model, anomaly_types, sample_interval, frames_per_clip FROM runs WHERE profile_id = $p LIMIT 1", {"p": min(others)}
        ).fetchone()
        n = sum(1 for _, profile in committed.values() if profile in others)
        candidates = [ScanProfile(row[0], tuple(row[1]), int(row[2]), int(row[3]), scaled) for scaled in (False, True)] if row else []
        theirs = next((profile for profile in candidates if profile.profile_id == min(others)), None)  # the runs row has no
        # column for --frames-at-model-size: the profile id tells it
        differs = self.options.profile.differences(theirs) if theirs else "other settings"
        raise UserError(
            f"OUT {self.options.out} already holds {n} of these videos scored with {differs}; "
            "scores of different settings are not comparable: add --rescan to score them again with these settings, "
            "or scan into another --out"
        )

    def _keep_finished_segments(self, video_ids: list[str], profile_id: str, live: set[str]) -> dict[str, dict[int, str]]:
        """Clips that killed runs (never finished, no longer live) of this profile committed for these
        (now claimed, not shown) videos: kept, one run per clip; every other row those runs left of
        those videos is deleted first. Nothing is read when no run was killed (the usual case)."""
        if not video_ids or not self.tables.exists("clips"):
            return {}
        con = self._connect_snapshot()
        unfinished = con.execute("SELECT run_id FROM runs WHERE finished_at IS NULL").fetchall()
        killed = sorted(run for (run,) in unfinished if run not in live and run != self.run_id)
        if not killed:
            return {}
        con.register("_claimed", pa.table({"video_id": pa.array(video_ids, pa.string())}))
        con.register("_killed", pa.table({"run_id": pa.array(killed, pa.string())}))
        leftovers = """
            SELECT c.video_id, c.run_id, c.clip_index, r.profile_id
            FROM {table} AS c JOIN runs AS r USING (run_id)
            WHERE c.run_id IN (SELECT run_id FROM _killed)
              AND c.video_id IN (SELECT video_id FROM _claimed)
              AND (c.video_id, c.run_id) NOT IN (SELECT video_id, run_id FROM _video_runs)
        """
        clips = con.sql(leftovers.format(table=source_name("clips"))).fetchall()
        frames = con.sql(leftovers.format(table=source_name("frames"))).fetchall()
        if not clips and not frames:
            return {}
        keep: dict[str, dict[int, str]] = {}
        for video_id, run_id, clip_index, profile in sorted(clips, key=lambda r: (r[0], r[2], r[1])):
            if profile == profile_id:
                keep.setdefault(video_id, {}).setdefault(int(clip_index), run_id)
        dropped: dict[tuple[str, str], set[int]] = {}
        for video_id, run_id, clip_index, _ in clips + frames:
            if keep.get(video_id, {}).get(int(clip_index)) != run_id:
                dropped.setdefault((video_id, run_id), set()).add(int(clip_index))
        for table in ("frames", "embeddings", "clips"):
            if not self.tables.exists(table):
                continue
            for (video_id, run_id), indices in dropped.items():
                listed = ", ".join(str(i) for i in sorted(indices))
                self.tables.delete(table, f"video_id = '{video_id}' AND run_id = '{run_id}' AND clip_index IN ({listed})")
        n_kept = sum(len(v) for v in keep.values())
        if n_kept:
            log.info("keeping %d clips of %d videos that an interrupted run committed", n_kept, len(keep))
        return keep

    def _connect_snapshot(self) -> duckdb.DuckDBPyConnection:
        from jobs.out.duck import snapshot_connection

        return snapshot_connection(self.tables)

    # --- rows ----------------------------------------------------------------------------------

    def add(self, row: DetectedRow) -> list[Committed]:
        """Take one detected row; returns the videos committed by the batch it completed, if any."""
        video = self.videos.get(row.video_id)
        if video is None or video.queued:
            return []  # a clip that arrives after its video failed
        video.meta = video.meta or row
        if row.is_error:
            video.error, video.queued = row, True
            self.ready_videos.append(row.video_id)
        elif row.is_clip:
            segment = video.segments.setdefault(int(row.segment_index), {})
            segment[int(row.clip_index)] = row
            if len(segment) == int(row.segment_clips):
                del video.segments[int(row.segment_index)]
                self.ready_segments.append([segment[k] for k in sorted(segment)])
                video.committed_clips |= set(segment)
                video.frames_scored += sum(len(clip.frame_indices) for clip in segment.values())
        if not video.queued and int(row.n_clips) == len(video.kept_clips | video.committed_clips):
            video.queued = True
            self.ready_videos.append(row.video_id)
        self.batch_started = self.batch_started or time.monotonic()
        if len(self.ready_videos) >= self.options.batch_videos or time.monotonic() - self.batch_started >= self.options.batch_seconds:
            return self.commit()
        return []

    def commit(self) -> list[Committed]:
        """Commit the finished segments and videos (steps 1-5 of the module docstring)."""
        if not self.ready_segments and not self.ready_videos:
            return []
        if self.options.index:
            return self._commit_index()
        today = datetime.now(UTC).date()
        failed = {video_id for video_id in self.ready_videos if self.videos[video_id].error is not None}
        segments = [rows for rows in self.ready_segments if rows[0].video_id not in failed]
        frames = [frames_table(rows, self.run_id, today) for rows in segments]
        clips = _concat(
            [clips_table(rows, self.run_id, list(self.options.profile.anomaly_types), today) for rows in segments], CLIPS_SCHEMA
        )
        model = self.options.profile.model
        embeddings = _concat([embeddings_table(rows, self.run_id, model, today) for rows in segments], EMBEDDINGS_SCHEMA)
        videos = _concat([self._video_row(video_id, today) for video_id in self.ready_videos], VIDEOS_SCHEMA)
        with deferred_interrupts():  # Ctrl-C waits for the batch's commit
            self.tables.append("frames", _concat(frames, FRAMES_SCHEMA), self.run_id)
            self.tables.append("embeddings", embeddings, self.run_id)
            self.tables.append("clips", clips, self.run_id)
            self.tables.append("events", self._events(videos, frames), self.run_id)
            self.tables.append("videos", videos, self.run_id)
        return self._batch_done()

    def _commit_index(self) -> list[Committed]:
        """An index run's batch: the finished videos' embeddings, then their `videos` rows again
        (run_ids + this run, committed now); a failed video's row is left as it was."""
        today, now = datetime.now(UTC).date(), datetime.now(UTC)
        failed = {video_id for video_id in self.ready_videos if self.videos[video_id].error is not None}
        segments = [rows for rows in self.ready_segments if rows[0].video_id not in failed]
        model = self.options.profile.model
        embeddings = _concat([embeddings_table(rows, self.run_id, model, today) for rows in segments], EMBEDDINGS_SCHEMA)
        rows = []
        for video_id in self.ready_videos:
            if video_id not in failed:
                row = self.current[video_id]
                rows.append({**row, "run_ids": sorted(set(row["run_ids"]) | {self.run_id}), "committed_at": now, "scan_date": today})
        with deferred_interrupts():
            self.tables.append("embeddings", embeddings, self.run_id)
            self.tables.append("videos", pa.Table.from_pylist(rows, schema=VIDEOS_SCHEMA), self.run_id)
        return self._batch_done()

    def _batch_done(self) -> list[Committed]:
        committed = []
        for video_id in self.ready_videos:
            video = self.videos.pop(video_id)
            ok = video.error is None
            self.counts["ok" if ok else "failed"] += 1
            n_clips = len(video.kept_clips | video.committed_clips)
            committed.append(Committed(video.meta.uri, "ok" if ok else video.error.status, f"{n_clips} clips" if ok else video.error.error))
        self.ready_segments, self.ready_videos, self.batch_started = [], [], None
        return committed

    def _video_row(self, video_id: str, today: date) -> pa.Table:
        video = self.videos[video_id]
        meta, ok = video.meta, video.error is None
        row = {
            "video_id": video_id,
            "uri": meta.uri,
            "status": "ok" if ok else video.error.status,
            "error": None if ok else (video.error.error or None),
            "n_frames": _known(int(meta.n_frames)),
            "fps": _known(float(meta.fps)),
            "duration_s": _known(float(meta.duration_s)),
            "width": _known(int(meta.width)) if ok else None,
            "height": _known(int(meta.height)) if ok else None,
            "run_id": self.run_id,
            "size_bytes": int(meta.size_bytes),
            "version_tag": meta.version_tag,
            "n_sampled_frames": self._sampled_frames(video_id) if ok else 0,
            "n_clips": int(meta.n_clips) if ok else 0,
            "committed_at": datetime.now(UTC),
            "run_ids": sorted({self.run_id} | video.kept_runs) if ok else [],
            "profile_id": self.options.profile.profile_id,
            "scan_date": today,
        }
        return pa.Table.from_pylist([row], schema=VIDEOS_SCHEMA)

    def _sampled_frames(self, video_id: str) -> int:
        """The video's rows in `frames`: every sampled frame, or, when the run scores some clips only or
        samples keyframes (not known from the frame count), those of its clips (kept ones read back)."""
        video = self.videos[video_id]
        interval = self.options.profile.sample_interval
        if not self.options.subset and interval != SAMPLE_KEYFRAMES:
            return -(-int(video.meta.n_frames) // interval)
        kept = 0
        if video.kept:
            stored = self.tables.read("frames", pc.field("video_id") == video_id)
            pairs = zip(stored["clip_index"].to_pylist(), stored["run_id"].to_pylist())
            kept = sum(1 for clip, run in pairs if video.kept.get(int(clip)) == run)
        return video.frames_scored + kept

    def _events(self, videos: pa.Table, batch_frames: list[pa.Table]) -> pa.Table:
        """The default-threshold events of the committed videos, by the `events()` macro itself over
        their frames (this batch's, and those kept from an interrupted run, read back)."""
        ok = videos.filter(pc.equal(videos.column("status"), "ok"))
        if ok.num_rows == 0:
            return EVENTS_SCHEMA.empty_table()
        ids = set(ok.column("video_id").to_pylist())
        parts = [table for table in batch_frames if table.num_rows and table.column("video_id")[0].as_py() in ids]
        kept = {(video_id, clip, run) for video_id in ids for clip, run in self.videos[video_id].kept.items()}
        if kept:
            stored = self.tables.read("frames", pc.field("video_id").isin(sorted({v for v, _, _ in kept})))
            rows = zip(stored["video_id"].to_pylist(), stored["clip_index"].to_pylist(), stored["run_id"].to_pylist())
            parts.append(stored.filter(pa.array([row in kept for row in rows])).cast(FRAMES_SCHEMA))
        return default_events(_concat(parts, FRAMES_SCHEMA), ok, self._run_rows)

    # --- runs ----------------------------------------------------------------------------------

    def write_run(self, row: dict) -> None:
        self._run_rows = pa.Table.from_pylist([{**row, "updated_at": datetime.now(UTC)}], schema=RUNS_SCHEMA)
        self.tables.append("runs", self._run_rows, self.run_id)

    def finish(self, run_row: Callable[[], dict]) -> list[Committed]:
        """Commit the last batch, write the run's final row, compact, then index the waiting embeddings if a
        shard is due (jobs/out/clip_index.py); the lease is released by `close`."""
        committed = self.commit()
        if self.videos:  # never expected: a clip row lost on the way; the next run re-does them
            log.error("%d videos did not receive all their clips and were not committed", len(self.videos))
        self.write_run(run_row())
        if self.options.compact:
            from jobs.out.compact import DEFAULT_RETENTION_HOURS, compact

            # one compaction at a time (jobs/out/compact.py): this run's lease is held until `close`,
            # so of two runs ending together at least one sees the other and leaves it the work
            live = live_runs(self.tables.fs, self.tables.root) - {self.run_id}
            if live:
                log.info("compaction left to the last run writing into OUT (%s still running)", ", ".join(sorted(live)))
            else:
                compact(self.tables, live=live, retention_hours=DEFAULT_RETENTION_HOURS)
                if not (self.options.subset or self.options.index):
                    self._update_clip_index()
        return committed

    def _update_clip_index(self) -> None:
        """A new shard of the approximate clip index when enough rows wait (jobs/out/clip_index.py). The
        rows are committed either way, and a search reads the ones no shard holds exactly: a failure
        here is a warning, and `lavida index OUT` does it later."""
        from jobs.out.clip_index import update_index
        from jobs.out.duck import Out, snapshot_connection

        try:
            update_index(Out(self.tables.root, self.tables.fs), snapshot_connection(self.tables), self.options.profile.model)
        except (OSError, RuntimeError, duckdb.Error) as error:
            log.warning("the clip index was not brought up to date (%s); `lavida index %s` does it later", error, self.tables.root)

    def close(self) -> None:
        self.lease.release()


def default_events(frames: pa.Table, videos: pa.Table, runs: pa.Table) -> pa.Table:
    """The `events()` macro at its default thresholds over these rows (all of each video's frames)."""
    con = duckdb.connect()
    given = {"frames": frames, "videos": videos, "runs": runs}
    for table in ("frames", "clips", "embeddings", "events", "videos", "runs"):
        con.register(source_name(table), given.get(table, SCHEMAS[table].empty_table()))
    for statement in view_statements():
        con.execute(statement)
    # through Python rows: DuckDB gives a null mask as a struct of nulls, which a cast would refuse
    return pa.Table.from_pylist(con.sql("SELECT * FROM events()").to_arrow_table().to_pylist(), schema=EVENTS_SCHEMA)


def frames_table(rows: list[DetectedRow], run_id: str, scan_date: date) -> pa.Table:
    """The `frames` rows of finished clips of one video: one per sampled frame."""
    meta = rows[0]
    size = [int(meta.height), int(meta.width)]
    columns: dict[str, list] = {name: [] for name in FRAMES_SCHEMA.names}
    for clip in rows:
        indices = np.asarray(clip.frame_indices, dtype=np.int64)  # [T]
        counts = split_counts(clip.mask_counts, len(indices))
        columns["clip_index"] += [int(clip.clip_index)] * len(indices)
        columns["frame_index"] += indices.tolist()
        columns["timestamp_s"] += np.asarray(clip.timestamps, dtype=np.float64).tolist()
        columns["score"] += np.asarray(clip.scores, dtype=np.float32).tolist()
        columns["mask_rle"] += [{"size": size, "counts": c} if c else None for c in counts]
    n = len(columns["frame_index"])
    columns["video_id"], columns["uri"], columns["run_id"] = [meta.video_id] * n, [meta.uri] * n, [run_id] * n
    columns["scan_date"] = [scan_date] * n
    return pa.Table.from_pydict(columns, schema=FRAMES_SCHEMA)


def clips_table(rows: list[DetectedRow], run_id: str, anomaly_types: list[str], scan_date: date) -> pa.Table:
    table = []
    for clip in rows:
        timestamps = np.asarray(clip.timestamps, dtype=np.float64)  # [T]
        table.append(
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
                "scan_date": scan_date,
            }
        )
    return pa.Table.from_pylist(table, schema=CLIPS_SCHEMA)


def embeddings_table(rows: list[DetectedRow], run_id: str, model: str, scan_date: date) -> pa.Table:
    """The `embeddings` rows of finished clips (none when the detector embeds no clips)."""
    table = []
    for clip in rows:
        vector = np.asarray(clip.embedding, dtype=np.float32)  # [P]
        if vector.size == 0:
            continue
        indices, timestamps = np.asarray(clip.frame_indices, dtype=np.int64), np.asarray(clip.timestamps, dtype=np.float64)
        table.append(
            {
                "video_id": clip.video_id,
                "uri": clip.uri,
                "clip_index": int(clip.clip_index),
                "first_frame": int(indices[0]),
                "last_frame": int(indices[-1]),
                "start_s": float(timestamps[0]),
                "end_s": float(timestamps[-1]),
                "embedding": vector,
                "dim": int(vector.size),
                "embedding_model": model,
                "run_id": run_id,
                "scan_date": scan_date,
            }
        )
    return pa.Table.from_pylist(table, schema=EMBEDDINGS_SCHEMA) if table else EMBEDDINGS_SCHEMA.empty_table()


def _concat(tables: list[pa.Table], schema: pa.Schema) -> pa.Table:
    return pa.concat_tables(tables) if tables else schema.empty_table()


def _known(value: float | int) -> float | int | None:
    """The decode stage's -1 / NaN placeholders for unknown values -> null."""
    if value is None or value != value or value == -1:
        return None
    return value
