"""Open a DuckDB connection over OUT (a local folder or an s3:// prefix) with the views of schemas/views.py.

OUT's Delta tables are read through their Arrow datasets (jobs/out/tables.py), registered with
DuckDB as the relations the views read: no DuckDB extension (delta, httpfs) is downloaded or
loaded, and filters and column choices reach the Parquet scan (a `scan_date` filter skips the
other days' files). A connection reads one snapshot of OUT: the newest, or `as_of` a `videos`
table version or a time (`--as-of`). S3 settings come from jobs/out/s3_settings.py (the AWS environment or
profile, then `--storage-option`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import fsspec
import pyarrow as pa

from jobs.common.arguments import storage_options_of
from jobs.common.errors import UserError
from jobs.out.s3_settings import s3_errors
from jobs.out.storage import filesystem_for, is_remote, uri_of
from jobs.out.tables import OutTables
from schemas.views import source_name, view_statements

log = logging.getLogger(__name__)

# Settings a sandboxed connection runs with; lock_configuration comes last, after these.
_SANDBOX_SETTINGS = (
    ("autoinstall_known_extensions", False),
    ("autoload_known_extensions", False),
    ("allow_community_extensions", False),
    ("python_enable_replacements", False),  # user SQL cannot read this process's Python variables
    ("enable_external_access", False),
)


@dataclass(frozen=True)
class Out:
    """An OUT root: the path DuckDB reads and the fsspec filesystem that lists it."""

    root: str  # absolute local path, or s3://bucket/prefix (no trailing slash)
    fs: fsspec.AbstractFileSystem

    @property
    def is_remote(self) -> bool:
        return "://" in self.root

    def join(self, *parts: str) -> str:
        return "/".join([self.root, *parts])


def open_out(out: str, *, storage_options: dict | None = None) -> Out:
    """Resolve OUT and its filesystem; raises UserError when it does not exist."""
    if is_remote(out) and not out.startswith(("s3://", "s3a://")):
        raise UserError(f"OUT {out!r}: only local folders and s3:// prefixes are supported")
    with s3_errors(out, storage_options):
        return _open_out(out, storage_options)


def _open_out(out: str, storage_options: dict | None) -> Out:
    fs, path = filesystem_for(out, storage_options)
    root = uri_of(fs, path.rstrip("/"))
    if not fs.exists(root):
        bucket = root.split("://", 1)[-1].split("/", 1)[0]
        if is_remote(root) and not fs.exists(bucket):
            raise UserError(f"{out}: the bucket {bucket} does not exist; check the name and the endpoint")
        raise UserError(f"OUT {out!r} does not exist: run `lavida scan SOURCE --out {out}` first")
    if not fs.isdir(root) or not any(fs.exists(f"{root}/{table}") for table in ("runs", "videos")):
        raise UserError(
            f"{out} is not a lavida OUT (it has no runs/ or videos/ table): give the --out folder of a "
            f"`lavida scan`, or scan into it first (lavida scan SOURCE --out {out})"
        )
    OutTables(root, storage_options).refuse_old_layout()
    return Out(root=root, fs=fs)


# Snapshot order: `videos` first. A video's frames/clips/events rows are committed before its
# `videos` row and deleted (by compaction) only well after a newer row replaced it, so tables read
# after `videos` hold every row the `videos` snapshot names.
SNAPSHOT_ORDER = ("videos", "runs", "frames", "clips", "embeddings", "events")


def connect(
    out: str | Out, *, storage_options: dict | None = None, sandbox: bool = False, as_of: str | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the views over one snapshot of OUT.

    sandbox: lock the connection for user SQL — no file outside OUT, no extension install or load,
    no configuration change afterwards (the views still read OUT: it is the one allowed directory).
    as_of: a `videos` table version ('12') or a time ('2026-11-30T22:00:00Z'): OUT as it was then.
    """
    if isinstance(out, str):
        out = open_out(out, storage_options=storage_options)
    con = snapshot_connection(OutTables(out.root, storage_options), as_of=as_of)
    if out.is_remote:
        con.register_filesystem(out.fs)
    if sandbox:
        lock_down(con, out.root)
    return con


def snapshot_connection(tables: OutTables, *, as_of: str | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the views over one snapshot of OUT's tables (no checks, no sandbox:
    for the writer and compaction; users' connections come from `connect`)."""
    con = duckdb.connect()
    register_snapshot(con, tables, as_of=as_of)
    for statement in view_statements():
        con.execute(statement)
    return con


def register_snapshot(con: duckdb.DuckDBPyConnection, tables: OutTables, *, as_of: str | None = None) -> None:
    """Register each table's dataset as `source_name(table)`, all of one moment (SNAPSHOT_ORDER)."""
    moment = parse_as_of(as_of)
    videos_as_of = moment
    if isinstance(moment, int):  # a videos version: the other tables as of that commit's time
        moment = tables.commit_time("videos", moment)
    for table in SNAPSHOT_ORDER:
        con.register(source_name(table), tables.dataset(table, as_of=videos_as_of if table == "videos" else moment))


def parse_as_of(text: str | None) -> int | datetime | None:
    """'12' -> version 12; an ISO time ('2026-11-30', '2026-11-30T22:00:00Z', UTC unless it says) -> datetime."""
    if text is None:
        return None
    if text.strip().isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UserError(
            f"--as-of {text!r}: give a version number (see `lavida history OUT`) or an ISO time such as 2026-11-30T22:00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def fetch(con: duckdb.DuckDBPyConnection, query: str | duckdb.Statement, params: dict | None = None):
    """Run one SELECT; returns (column names, rows as tuples).

    Rows come through Arrow, so TIMESTAMPTZ columns convert with zoneinfo (no pytz needed).
    """
    table = con.sql(query, params=params).to_arrow_table()
    columns = [column.to_pylist() for column in table.columns]
    return list(table.column_names), list(zip(*columns)) if columns else []


def fetch_arrow(con: duckdb.DuckDBPyConnection, query: str, params: dict | None = None) -> pa.Table:
    """Run one SELECT; returns its rows as an Arrow table (for column-wise work with numpy)."""
    return con.sql(query, params=params).to_arrow_table()


def connect_args(args, *, sandbox: bool = False) -> duckdb.DuckDBPyConnection:
    """`connect` for a command's parsed OUT arguments (see add_out_arguments)."""
    return connect(args.out, storage_options=storage_options_of(args), sandbox=sandbox, as_of=getattr(args, "as_of", None))


def lock_down(con: duckdb.DuckDBPyConnection, root: str) -> None:
    """Allow reads under `root` only, forbid extensions, then lock the configuration."""
    con.execute("SET allowed_directories = $dirs", {"dirs": [root.rstrip("/") + "/"]})
    for name, value in _SANDBOX_SETTINGS:
        con.execute(f"SET {name} = {'true' if value else 'false'}")
    con.execute("SET lock_configuration = true")
