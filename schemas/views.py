"""DuckDB views over OUT: `frames`, `clips`, `embeddings`, `videos`, `runs` and `events` (declared once, here).

`view_statements()` returns the SQL that defines every view over one snapshot of OUT's Delta tables,
which `jobs/out/duck.py` registers as the relations `source_name(table)`.

Committed rows only. A video is committed when its `videos` row exists (schemas/tables.py): the
`frames` and `clips` views keep only the rows of the runs its newest `videos` row names, so the
leftovers of a crashed run, or the rows a re-scan replaced, never show.

Events. `events(min_score := …, max_gap := …, min_duration := …)` is a table macro; the view
`events` is that macro with the defaults below. Definitions, per video, over its committed sampled
frames in time order:

- Each sampled frame stands for the time from its timestamp until the next sampled frame's
  timestamp (the video's last sampled frame: for as long as the step before it, but never past the
  video's end, `videos.duration_s`; a video with one sampled frame: for no time). This is the
  reference's convention of repeating a sampled frame's score over the frames until the next sample.
- A frame is *hot* when `score >= min_score`. Consecutive hot frames form a run; two runs are merged
  into one event when the cold time between them (the next run's first timestamp minus the time the
  previous run's last frame stands until) is at most `max_gap` seconds.
- `start_s` is the first hot frame's timestamp, `end_s` the time its last hot frame stands until,
  `duration_s = end_s - start_s`. A one-frame event therefore lasts one sampling step (about
  16 / fps seconds with the scan's default interval), or 0 s when it is the video's only sample.
- An event is kept when `duration_s >= min_duration`.
- `start_frame` / `end_frame` are the first and last hot frames (inclusive); `peak_frame_index` is
  the hot frame with the highest score (the earliest one on a tie), with its `peak_mask_rle`;
  `mean_score` is the mean over the event's hot frames; `anomaly_types` are the types the run that
  scored the video asked for.

Defaults chosen for surveillance footage: `min_score` 0.5 (the object-score head's decision
boundary), `max_gap` 2 s (a person hidden for a moment is still the same incident), `min_duration`
1 s (a single isolated sample at the scan's default two samples a second is treated as flicker;
at sparse sampling one sample already covers more than a second and is kept).

The view `lavida_versions` says which versions of these views and of the table schemas a
connection uses. Version history (bump VIEWS_VERSION on every change of a view's columns or meaning):
  1 — first version.
  2 — events end at the video's end (the last sampled frame no longer stands past `duration_s`).
  3 — views over Delta tables: the newest `videos` row per uri, frames/clips of the runs it names,
      the `events` view reads the events materialised at commit (same columns as `events()`).
  4 — the `embeddings` view (clip embeddings for search), shown like `clips`.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.tables import SCHEMA_VERSION, TABLE_NAMES

VIEWS_VERSION = 4


@dataclass(frozen=True, kw_only=True)
class EventParams:
    """Thresholds of the `events` macro (see the module docstring for their exact meaning)."""

    min_score: float = 0.5  # a sampled frame is hot when score >= min_score
    max_gap: float = 2.0  # seconds of cold time across which two runs of hot frames merge
    min_duration: float = 1.0  # seconds an event must last to be kept


DEFAULT_EVENT_PARAMS = EventParams()

# Columns of the `events` view, in order.
EVENT_COLUMNS = (
    "video_id",
    "uri",
    "event_index",
    "start_s",
    "end_s",
    "duration_s",
    "start_frame",
    "end_frame",
    "n_frames",
    "peak_score",
    "peak_frame_index",
    "peak_s",
    "peak_mask_rle",
    "mean_score",
    "anomaly_types",
    "run_id",
)


def source_name(table: str) -> str:
    """The relation a connection registers for one OUT table's snapshot (jobs/out/duck.py), which the views read."""
    return f"_{table}_delta"


# Every table is append-only for the scan (schemas/tables.py). What the views show:
#   videos: the newest row of each uri (a re-scan, or a new version of the file, replaces it at once);
#   frames/clips/embeddings: the rows of the runs that the shown videos row names (`run_ids`);
#   events: the rows of the run that committed the shown videos row;
#   runs: the newest row of each run.
_TABLE_VIEWS = (
    "CREATE OR REPLACE VIEW videos AS SELECT * FROM {videos} "
    "QUALIFY row_number() OVER (PARTITION BY uri ORDER BY committed_at DESC, run_id DESC) = 1",
    "CREATE OR REPLACE VIEW runs AS SELECT * FROM {runs} QUALIFY row_number() OVER (PARTITION BY run_id ORDER BY updated_at DESC) = 1",
    "CREATE OR REPLACE VIEW _video_runs AS SELECT video_id, unnest(run_ids) AS run_id FROM videos",
    "CREATE OR REPLACE VIEW frames AS SELECT * FROM {frames} AS f SEMI JOIN _video_runs AS p USING (video_id, run_id)",
    "CREATE OR REPLACE VIEW clips AS SELECT * FROM {clips} AS c SEMI JOIN _video_runs AS p USING (video_id, run_id)",
    "CREATE OR REPLACE VIEW embeddings AS SELECT * FROM {embeddings} AS e SEMI JOIN _video_runs AS p USING (video_id, run_id)",
)


def _table_views() -> list[str]:
    names = {table: source_name(table) for table in TABLE_NAMES}
    return [statement.format(**names) for statement in _TABLE_VIEWS]


_EVENTS_MACRO = """
CREATE OR REPLACE MACRO events(min_score := {min_score}, max_gap := {max_gap}, min_duration := {min_duration})
AS TABLE
WITH sampled AS (
    -- every committed sampled frame, numbered in time order, with the time it stands until (never
    -- past the video's end)
    SELECT f.video_id, f.frame_index, f.timestamp_s, f.score,
           row_number() OVER w AS sample_no,
           least(coalesce(lead(f.timestamp_s) OVER w,
                          2 * f.timestamp_s - lag(f.timestamp_s) OVER w,
                          f.timestamp_s),
                 greatest(coalesce(v.duration_s, 'infinity'::DOUBLE), f.timestamp_s)) AS until_s
    FROM frames AS f
    JOIN videos AS v ON v.video_id = f.video_id
    WINDOW w AS (PARTITION BY f.video_id ORDER BY f.timestamp_s, f.frame_index)
),
hot AS (
    -- a hot frame opens an event unless it follows a hot frame directly or across a short gap
    SELECT *,
           CASE WHEN sample_no - lag(sample_no) OVER w = 1 THEN 0
                WHEN timestamp_s - lag(until_s) OVER w <= max_gap THEN 0
                ELSE 1 END AS opens_event
    FROM sampled
    WHERE score >= min_score
    WINDOW w AS (PARTITION BY video_id ORDER BY sample_no)
),
numbered AS (
    SELECT *, sum(opens_event) OVER (PARTITION BY video_id ORDER BY sample_no
                                     ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS event_no
    FROM hot
),
spans AS (
    SELECT video_id, event_no,
           min(timestamp_s) AS start_s, max(until_s) AS end_s,
           min(frame_index) AS start_frame, max(frame_index) AS end_frame,
           count(*) AS n_frames,
           max(score) AS peak_score,
           arg_max(frame_index, (score, -sample_no)) AS peak_frame_index,
           arg_max(timestamp_s, (score, -sample_no)) AS peak_s,
           avg(score) AS mean_score
    FROM numbered
    GROUP BY video_id, event_no
)
SELECT s.video_id, v.uri,
       CAST(row_number() OVER (PARTITION BY s.video_id ORDER BY s.start_s) - 1 AS BIGINT) AS event_index,
       s.start_s, s.end_s, s.end_s - s.start_s AS duration_s,
       s.start_frame, s.end_frame, s.n_frames,
       s.peak_score, s.peak_frame_index, s.peak_s, f.mask_rle AS peak_mask_rle,
       s.mean_score, r.anomaly_types, v.run_id
FROM spans AS s
JOIN videos AS v ON v.video_id = s.video_id
LEFT JOIN frames AS f ON f.video_id = s.video_id AND f.frame_index = s.peak_frame_index
LEFT JOIN runs AS r ON r.run_id = v.run_id
WHERE s.end_s - s.start_s >= min_duration
ORDER BY s.video_id, s.start_s
"""


def _events_views(defaults: EventParams) -> list[str]:
    macro = _EVENTS_MACRO.format(
        min_score=float(defaults.min_score),
        max_gap=float(defaults.max_gap),
        min_duration=float(defaults.min_duration),
    )
    # The default thresholds' events were made when each video committed (the scan runs `events()`
    # over the video's rows, jobs/scan/write.py): the view reads them instead of recomputing the archive.
    materialised = (
        f"CREATE OR REPLACE VIEW events AS SELECT e.* FROM {source_name('events')} AS e "
        "SEMI JOIN videos AS v ON e.video_id = v.video_id AND e.run_id = v.run_id ORDER BY e.video_id, e.start_s"
    )
    return [macro.strip(), materialised]


def view_statements() -> list[str]:
    """The statements that define every view, in order, over the relations `source_name(table)` of
    one OUT's snapshot (jobs/out/duck.py registers them)."""
    versions = f"CREATE OR REPLACE VIEW lavida_versions AS SELECT {VIEWS_VERSION} AS views_version, {SCHEMA_VERSION} AS schema_version"
    return _table_views() + _events_views(DEFAULT_EVENT_PARAMS) + [versions]
