"""`lavida compact OUT`: make query cost depend on OUT's rows, not on how many runs wrote them.

Run by every scan when it ends, and by hand (e.g. after a crash, or weekly with --vacuum):

1. Clean-up: delete the rows no view shows any more, once the `videos` row that replaced them is
   older than GRACE_S (a reader that opened OUT just before the switch still finds what it read):
   the frames/clips/events of a re-scanned video's old run, of a replaced file's old version, of a
   video whose scan failed; the superseded `videos` rows; a finished run's first `runs` row and
   its claims. Rows of runs still running are never touched, nor, for a week, those of a run that
   was killed (the next scan of the video keeps its finished segments).
2. Compaction: Delta's optimize bin-packs each table's small files (one per table and batch) into
   large ones, per `scan_date` partition. Readers of an older snapshot keep reading the old files.
3. Vacuum (with --vacuum, or at a scan's end with the default retention): files that no snapshot
   of the last `retention_hours` refers to are deleted; a reader, or an `--as-of`, within that
   window still finds every file it needs.

One compaction at a time, and only while no other run writes: Delta's optimize (deltalake 1.6.6)
does not conflict with a concurrent optimize or delete of the same files, so two at once would both
commit and every row they rewrote would show twice. A scan compacts at its end only when no other
run holds a lease (the last one to end does it); `lavida compact` holds a lease of its own while it
runs and refuses while another run is live.
"""

from __future__ import annotations

import argparse
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyarrow as pa

from jobs.common.errors import UserError
from jobs.out.tables import OutTables
from schemas.tables import TABLE_NAMES
from schemas.views import source_name

log = logging.getLogger(__name__)

GRACE_S = 600  # rows replaced less than this long ago stay (readers mid-open)
DEFAULT_RETENTION_HOURS = 168  # Delta's own default: a week of --as-of and of slow readers
PAIRS_PER_DELETE = 500
KEEP_KILLED_RUNS_HOURS = DEFAULT_RETENTION_HOURS


@dataclass(frozen=True)
class CompactSummary:
    deleted_rows: dict[str, int]
    files_removed: int
    files_added: int
    files_vacuumed: int


def compact(tables: OutTables, *, live: set[str], grace_s: float = GRACE_S, retention_hours: int | None = None) -> CompactSummary:
    """Steps 1-3 of the module docstring; `live`: runs that are running now (jobs/out/leases.py)."""
    from jobs.out.duck import snapshot_connection

    con = snapshot_connection(tables)
    con.register("_live", pa.table({"run_id": pa.array(sorted(live), pa.string())}))
    con.execute(f"CREATE TEMP TABLE _settled AS SELECT uri FROM videos WHERE committed_at < now() - INTERVAL {float(grace_s)} SECOND")
    # a killed run's rows are kept for a while: the next scan of the video keeps its finished segments
    con.execute(
        "CREATE TEMP TABLE _ended AS SELECT run_id FROM runs "
        f"WHERE finished_at IS NOT NULL OR started_at < now() - INTERVAL {int(KEEP_KILLED_RUNS_HOURS)} HOUR"
    )
    deleted = {}
    for table, shown in (("frames", "_video_runs"), ("clips", "_video_runs"), ("embeddings", "_video_runs"), ("events", "videos")):
        pairs = con.sql(f"""
            SELECT DISTINCT t.video_id, t.run_id FROM {source_name(table)} AS t
            WHERE t.uri IN (SELECT uri FROM _settled)
              AND (t.video_id, t.run_id) NOT IN (SELECT video_id, run_id FROM {shown})
              AND t.run_id NOT IN (SELECT run_id FROM _live)
              AND t.run_id IN (SELECT run_id FROM _ended)
        """).fetchall()
        deleted[table] = _delete_pairs(tables, table, pairs)
    # by (video_id, run_id, committed_at): an index run (`lavida index`) replaces a row by one of the same run
    superseded = con.sql(f"""
        SELECT d.video_id, d.run_id, epoch_us(d.committed_at) FROM {source_name("videos")} AS d
        WHERE d.uri IN (SELECT uri FROM _settled)
          AND (d.video_id, d.run_id, d.committed_at) NOT IN (SELECT video_id, run_id, committed_at FROM videos)
    """).fetchall()
    deleted["videos"] = _delete_video_rows(tables, superseded)
    finished = [run for (run,) in con.sql("SELECT run_id FROM runs WHERE finished_at IS NOT NULL").fetchall()]
    deleted["runs"] = _delete_runs(tables, "runs", finished, "finished_at IS NULL")
    deleted["claims"] = _delete_runs(tables, "claims", finished, None)
    removed = added = 0
    for table in TABLE_NAMES:
        metrics = tables.compact(table)
        removed += int(metrics.get("numFilesRemoved", 0))
        added += int(metrics.get("numFilesAdded", 0))
    vacuumed = 0
    if retention_hours is not None:
        vacuumed = sum(len(tables.vacuum(table, retention_hours)) for table in TABLE_NAMES)
    summary = CompactSummary(deleted_rows=deleted, files_removed=removed, files_added=added, files_vacuumed=vacuumed)
    log.info("compacted %s: %s", tables.root, summary)
    return summary


def _delete_pairs(tables: OutTables, table: str, pairs: list[tuple[str, str]]) -> int:
    total = 0
    for start in range(0, len(pairs), PAIRS_PER_DELETE):
        chunk = pairs[start : start + PAIRS_PER_DELETE]
        predicate = " OR ".join(f"(video_id = {_literal(video_id)} AND run_id = {_literal(run_id)})" for video_id, run_id in chunk)
        total += tables.delete(table, predicate)
    return total


def _delete_video_rows(tables: OutTables, rows: list[tuple]) -> int:
    total = 0
    for start in range(0, len(rows), PAIRS_PER_DELETE):
        predicate = " OR ".join(
            f"(video_id = {_literal(video_id)} AND run_id = {_literal(run_id)} AND committed_at = {_literal(_iso(at))})"
            for video_id, run_id, at in rows[start : start + PAIRS_PER_DELETE]
        )
        total += tables.delete("videos", predicate)
    return total


def _iso(epoch_us: int) -> str:
    """Microseconds since the epoch as a UTC timestamp Delta's predicates compare, to the microsecond."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(epoch_us))
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _delete_runs(tables: OutTables, table: str, run_ids: list[str], condition: str | None) -> int:
    total = 0
    for start in range(0, len(run_ids), PAIRS_PER_DELETE):
        listed = ", ".join(_literal(run) for run in run_ids[start : start + PAIRS_PER_DELETE])
        total += tables.delete(table, f"run_id IN ({listed})" + (f" AND {condition}" if condition else ""))
    return total


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from jobs.common.arguments import add_out_arguments

    add_out_arguments(parser, as_of=False)
    parser.add_argument(
        "--vacuum", action="store_true", help="also delete files that no snapshot of the retention period needs (see --retention-hours)"
    )
    parser.add_argument(
        "--retention-hours", type=int, default=DEFAULT_RETENTION_HOURS, metavar="H",
        help=f"with --vacuum: keep what readers and --as-of of the last H hours need (default {DEFAULT_RETENTION_HOURS})",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from jobs.common.arguments import storage_options_of
    from jobs.out.duck import open_out
    from jobs.out.leases import Lease, live_runs

    options = storage_options_of(args)
    out = open_out(args.out, storage_options=options)
    tables = OutTables(out.root, options)
    lease = Lease(tables.fs, tables.root, f"compact-{uuid.uuid4().hex[:12]}")
    lease.acquire()  # before looking at the others: of two compactions started together, one sees the other
    try:
        live = live_runs(tables.fs, tables.root) - {lease.run_id}
        if live:
            raise UserError(f"{out.root}: runs {', '.join(sorted(live))} are writing into OUT right now; compact it when they have ended")
        summary = compact(tables, live=live, retention_hours=args.retention_hours if args.vacuum else None)
    finally:
        lease.release()
    deleted = sum(summary.deleted_rows.values())
    print(
        f"{out.root}: {deleted} rows no view showed deleted, {summary.files_removed} files compacted into {summary.files_added}"
        + (f", {summary.files_vacuumed} unused files vacuumed" if args.vacuum else "")
    )
    return 0
