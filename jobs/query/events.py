"""`lavida events OUT`: the anomalous events in OUT, from the `events` macro of schemas/views.py.

Thresholds go to DuckDB as parameters; the event logic itself is SQL (window functions), so it
runs over millions of frames without a Python loop.
"""

from __future__ import annotations

import argparse
import logging

import duckdb

from jobs.common.arguments import add_out_arguments
from jobs.common.errors import UserError
from jobs.common.output import add_format_argument, render
from jobs.out import duck
from jobs.out.duck import fetch
from schemas.views import DEFAULT_EVENT_PARAMS, EVENT_COLUMNS, EventParams

log = logging.getLogger(__name__)

# What `lavida events` prints (the mask is left out: `lavida query OUT "SELECT * FROM events"` has it).
LISTED_COLUMNS = tuple(c for c in EVENT_COLUMNS if c not in ("peak_s", "peak_mask_rle", "run_id"))

# How events are listed; "score" (highest peak first, ties by uri) is the default everywhere (CLI, search, report).
_ORDERS = {
    "score": "peak_score DESC, uri, start_s",
    "time": "uri, start_s",
}


def add_event_arguments(parser: argparse.ArgumentParser) -> None:
    """The threshold options shared by `events`, `search` and `report`."""
    d = DEFAULT_EVENT_PARAMS
    parser.add_argument(
        "--min-score", type=float, default=d.min_score, help=f"a sampled frame is anomalous when its score >= this (default {d.min_score})"
    )
    parser.add_argument(
        "--max-gap",
        type=float,
        default=d.max_gap,
        help=f"merge anomalous runs separated by at most this many seconds (default {d.max_gap})",
    )
    parser.add_argument(
        "--min-duration",
        type=float,
        default=d.min_duration,
        help=f"keep events lasting at least this many seconds; one sampled frame lasts one sampling step (default {d.min_duration})",
    )


def event_params(args: argparse.Namespace) -> EventParams:
    """The thresholds from parsed arguments; raises UserError when one is out of range."""
    if not 0.0 <= args.min_score <= 1.0:
        raise UserError(f"--min-score must be between 0 and 1, got {args.min_score}")
    if args.max_gap < 0:
        raise UserError(f"--max-gap must be >= 0 seconds, got {args.max_gap}")
    if args.min_duration < 0:
        raise UserError(f"--min-duration must be >= 0 seconds, got {args.min_duration}")
    return EventParams(min_score=args.min_score, max_gap=args.max_gap, min_duration=args.min_duration)


def fetch_events(
    con: duckdb.DuckDBPyConnection,
    params: EventParams = DEFAULT_EVENT_PARAMS,
    *,
    columns: tuple[str, ...] = LISTED_COLUMNS,
    video_ids: list[str] | None = None,
    order: str = "score",
    limit: int | None = None,
) -> tuple[list[str], list[tuple]]:
    """Events of OUT under `params`: (column names, rows). The default thresholds' events were made
    when each video committed (the `events` view reads them); others go through the `events` macro."""
    values: dict[str, object] = {}
    if params == DEFAULT_EVENT_PARAMS:
        sql = f"SELECT {', '.join(columns)} FROM events"
    else:
        sql = f"SELECT {', '.join(columns)} FROM events(min_score := $min_score, max_gap := $max_gap, min_duration := $min_duration)"
        values.update(min_score=float(params.min_score), max_gap=float(params.max_gap), min_duration=float(params.min_duration))
    if video_ids is not None:
        sql += " WHERE list_contains($video_ids, video_id)"
        values["video_ids"] = list(video_ids)
    sql += f" ORDER BY {_ORDERS[order]}"
    if limit is not None:
        sql += " LIMIT $limit"
        values["limit"] = int(limit)
    return fetch(con, sql, values)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_out_arguments(parser)
    add_event_arguments(parser)
    parser.add_argument("--video", action="append", metavar="VIDEO_ID", help="only this video (repeatable)")
    parser.add_argument(
        "--order", choices=sorted(_ORDERS), default="score", help="score: highest peak first, ties by uri (default); time: by uri and start"
    )
    add_format_argument(parser)


def run(args: argparse.Namespace) -> int:
    params = event_params(args)
    con = duck.connect_args(args)
    columns, rows = fetch_events(con, params, video_ids=args.video, order=args.order)
    log.info("%d events (min_score %s, max_gap %s s, min_duration %s s)", len(rows), params.min_score, params.max_gap, params.min_duration)
    print(render(args.format, columns, rows))
    return 0
