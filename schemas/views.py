"""DuckDB views over OUT: `frames`, `clips`, `videos`, `runs` and `events` (declared once, here).

`view_statements(out, present)` returns the SQL that defines every view for one OUT root (a local
folder or an s3:// prefix); `jobs/duck.py` runs it on a connection. Views read OUT lazily, so a
query sees the files that exist when it runs.

Committed rows only. A video is committed when its `videos` row exists (schemas/tables.py): the
`frames` and `clips` views keep only rows whose `video_id` has a `videos` row, so the leftovers of a
crashed run never show.

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
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa

from schemas.tables import SCHEMA_VERSION, SCHEMAS, TABLE_NAMES

VIEWS_VERSION = 2


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

_ARROW_TO_SQL = {
    pa.string(): "VARCHAR",
    pa.large_string(): "VARCHAR",
    pa.int64(): "BIGINT",
    pa.int32(): "INTEGER",
    pa.float32(): "FLOAT",
    pa.float64(): "DOUBLE",
    pa.bool_(): "BOOLEAN",
}


def sql_type(arrow_type: pa.DataType) -> str:
    """The DuckDB type that a Parquet column of `arrow_type` reads as."""
    if arrow_type in _ARROW_TO_SQL:
        return _ARROW_TO_SQL[arrow_type]
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMPTZ" if arrow_type.tz else "TIMESTAMP"
    if pa.types.is_list(arrow_type):
        return f"{sql_type(arrow_type.value_type)}[]"
    if pa.types.is_struct(arrow_type):
        fields = ", ".join(f"{quote_identifier(f.name)} {sql_type(f.type)}" for f in arrow_type)
        return f"STRUCT({fields})"
    raise TypeError(f"no DuckDB type declared for Arrow type {arrow_type}")


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """`text` as a SQL string literal (for paths: user data goes in as parameters, never this way)."""
    return "'" + text.replace("'", "''") + "'"


def table_glob(out: str, table: str) -> str:
    """Where `table`'s Parquet files lie under OUT."""
    return f"{out.rstrip('/')}/{table}/**/*.parquet"


def _source_sql(out: str, table: str, present: bool) -> str:
    """A SELECT of the table's files, or an empty SELECT of its schema when it has no file yet."""
    if present:
        # hive_partitioning off: the layout has no partition folders, and OUT's own path may hold
        # `key=value` segments that DuckDB would otherwise turn into columns.
        return f"SELECT * FROM read_parquet({quote_literal(table_glob(out, table))}, hive_partitioning = false, union_by_name = true)"
    columns = ", ".join(f"CAST(NULL AS {sql_type(field.type)}) AS {quote_identifier(field.name)}" for field in SCHEMAS[table])
    return f"SELECT {columns} WHERE false"


def _table_views(out: str, present: Iterable[str]) -> list[str]:
    present = set(present)
    sources = [f"CREATE OR REPLACE VIEW _{table}_files AS {_source_sql(out, table, table in present)}" for table in TABLE_NAMES]
    return sources + [
        "CREATE OR REPLACE VIEW videos AS SELECT * FROM _videos_files",
        "CREATE OR REPLACE VIEW runs AS SELECT * FROM _runs_files",
        "CREATE OR REPLACE VIEW frames AS SELECT * FROM _frames_files WHERE video_id IN (SELECT video_id FROM _videos_files)",
        "CREATE OR REPLACE VIEW clips AS SELECT * FROM _clips_files WHERE video_id IN (SELECT video_id FROM _videos_files)",
    ]


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
    return [macro.strip(), "CREATE OR REPLACE VIEW events AS SELECT * FROM events()"]


def view_statements(out: str, present: Iterable[str] = TABLE_NAMES) -> list[str]:
    """The statements that define every view over OUT, in order.

    out: the OUT root as DuckDB reads it (a local path or s3://bucket/prefix).
    present: the tables that have at least one Parquet file; the others get empty views of their schema.
    """
    versions = f"CREATE OR REPLACE VIEW lavida_versions AS SELECT {VIEWS_VERSION} AS views_version, {SCHEMA_VERSION} AS schema_version"
    return _table_views(out, present) + _events_views(DEFAULT_EVENT_PARAMS) + [versions]
