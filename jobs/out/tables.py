"""OUT's tables as Delta Lake tables (delta-rs, the `deltalake` package): one place that reads and writes them.

    tables = OutTables(out, storage_options)     # a local folder or an s3:// prefix
    tables.append("frames", rows, run_id)        # one transaction; concurrent appends never conflict
    tables.dataset("frames", as_of=None)         # a pyarrow dataset of one snapshot (DuckDB scans it)
    tables.delete("frames", "run_id = 'x'")      # compaction's clean-up of rows no view shows
    tables.compact("frames"); tables.vacuum("frames", retention_hours=168)

Every write the scan makes is an append, so several scans can write into one OUT at once: Delta's
log orders their commits, and an append is retried on a conflicting commit by delta-rs itself.
On S3 the commit needs an atomic put-if-absent: the store must support conditional writes
(`If-None-Match`, as AWS S3 since 2024, SeaweedFS, MinIO and Ceph RGW do); `conditional_put=etag` is
passed to delta-rs for that (no DynamoDB lock table is needed).

An OUT written by lavida < 0.2 (one Parquet file per video, schema version 2) has no `_delta_log`
and is refused with a message (`old_layout`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, WriterProperties, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError

from jobs.common.errors import UserError
from jobs.out.s3_settings import delta_options, problem_of, redact, resolve, s3_errors
from jobs.out.storage import filesystem_for, is_remote, uri_of
from schemas.tables import PARTITION_COLUMNS, SCHEMA_VERSION, SCHEMAS

if TYPE_CHECKING:
    import pyarrow.dataset as ds

log = logging.getLogger(__name__)

T = TypeVar("T")

WRITER_PROPERTIES = WriterProperties(compression="ZSTD")
COMMIT_RETRIES = 20  # a delete or compaction that lost a race to another commit is tried again


def delta_storage_options(storage_options: dict | None) -> dict[str, str]:
    """The user's storage options (s3fs names) resolved over the AWS environment -> delta-rs object_store options."""
    return delta_options(resolve(storage_options))


class OutTables:
    """The Delta tables under one OUT root."""

    def __init__(self, out: str, storage_options: dict | None = None) -> None:
        self.options = dict(storage_options or {})  # as the user gave them (s3_settings resolves them per client)
        self.fs, path = filesystem_for(out, storage_options)
        self.root = uri_of(self.fs, path.rstrip("/"))
        self.remote = is_remote(self.root)
        self.storage_options = delta_storage_options(storage_options) if self.remote else None

    def uri(self, table: str) -> str:
        return f"{self.root}/{table}"

    def exists(self, table: str) -> bool:
        with s3_errors(self.root, self.options):
            return self.fs.exists(f"{self.uri(table)}/_delta_log")

    def old_layout(self) -> bool:
        """True for an OUT of per-video Parquet files (lavida's schema version 2): `<id>.parquet` files
        in a table folder without a Delta log (delta-rs names its files `part-…`, and a first commit
        killed before its log entry may leave one)."""
        for table in ("videos", "runs"):
            with s3_errors(self.root, self.options):
                names = [path.rsplit("/", 1)[-1] for path in self.fs.glob(f"{self.uri(table)}/*.parquet")]
            if any(not name.startswith("part-") for name in names) and not self.exists(table):
                return True
        return False

    def refuse_old_layout(self) -> None:
        if self.old_layout():
            raise UserError(
                f"{self.root} holds an OUT of an older lavida (one Parquet file per video); this version "
                f"writes and reads Delta tables (schema version {SCHEMA_VERSION}): scan into a new --out"
            )

    def table(self, table: str, *, as_of: int | datetime | None = None) -> DeltaTable | None:
        """The table's snapshot (the newest, or as of a version / a time), or None when it does not exist yet."""
        try:
            with s3_errors(self.root, self.options):
                delta = DeltaTable(self.uri(table), storage_options=self.storage_options)
        except TableNotFoundError:
            return None
        if as_of is not None:
            try:
                delta.load_as_version(as_of)
            except Exception as error:  # delta-rs raises a plain Exception for a version it does not have
                if isinstance(as_of, datetime) and "before" in str(error).lower():
                    return None  # the table did not exist yet at that time
                raise UserError(f"--as-of {as_of}: {table} table has no such version ({error})") from None
        return delta

    def dataset(self, table: str, *, as_of: int | datetime | None = None) -> ds.Dataset:
        """A pyarrow dataset of the table's snapshot (an empty one of its schema when it does not exist)."""
        import pyarrow.dataset as ds  # here: it imports pandas, which `lavida --help` need not wait for

        delta = self.table(table, as_of=as_of)
        if delta is None:
            return ds.dataset(SCHEMAS[table].empty_table())
        return delta.to_pyarrow_dataset()

    def read(self, table: str, filter_expression: ds.Expression | None = None) -> pa.Table:
        return self.dataset(table).to_table(filter=filter_expression)

    def append(self, table: str, rows: pa.Table, run_id: str) -> None:
        """One transaction that adds `rows` (creates the table with its partitioning on first use)."""
        if rows.num_rows == 0:
            return
        rows = rows.cast(SCHEMAS[table])
        properties = CommitProperties(custom_metadata={"lavida_run_id": run_id, "lavida_schema_version": str(SCHEMA_VERSION)})
        self._retry(
            lambda: write_deltalake(
                self.uri(table),
                rows,
                mode="append",
                partition_by=PARTITION_COLUMNS.get(table),
                storage_options=self.storage_options,
                writer_properties=WRITER_PROPERTIES,
                commit_properties=properties,
            ),
            f"append to {table}",
        )

    def delete(self, table: str, predicate: str) -> int:
        """Delete the rows matching a SQL predicate in one transaction; returns how many."""
        delta = self.table(table)
        if delta is None:
            return 0
        metrics = self._retry(lambda: self._fresh(table).delete(predicate, writer_properties=WRITER_PROPERTIES), f"delete from {table}")
        return int(metrics.get("num_deleted_rows", 0))

    def compact(self, table: str) -> dict:
        """Bin-pack small files into large ones (one transaction; readers of older snapshots are unaffected)."""
        if self.table(table) is None:
            return {}
        return self._retry(lambda: self._fresh(table).optimize.compact(writer_properties=WRITER_PROPERTIES), f"compact {table}")

    def vacuum(self, table: str, retention_hours: int) -> list[str]:
        """Delete files that no snapshot of the last `retention_hours` refers to."""
        delta = self.table(table)
        if delta is None:
            return []
        with s3_errors(self.root, self.options):
            return delta.vacuum(retention_hours=retention_hours, dry_run=False, enforce_retention_duration=False)

    def versions(self, table: str) -> list[dict]:
        """The table's commits, newest first: version, timestamp (ms), operation and the run that made it."""
        delta = self.table(table)
        return [] if delta is None else delta.history()

    def commit_time(self, table: str, version: int) -> datetime:
        """When `version` of the table was committed (UserError for a version it does not have)."""
        for entry in self.versions(table):
            if int(entry["version"]) == version:
                return datetime.fromtimestamp(entry["timestamp"] / 1000, tz=UTC)
        newest = max((int(entry["version"]) for entry in self.versions(table)), default=None)
        raise UserError(f"--as-of {version}: OUT's {table} table has versions 0..{newest} (see `lavida history OUT`)")

    def _fresh(self, table: str) -> DeltaTable:
        delta = self.table(table)
        assert delta is not None
        return delta

    def _retry(self, operation: Callable[[], T], what: str) -> T:
        for attempt in range(COMMIT_RETRIES):
            try:
                return operation()
            except CommitFailedError as error:
                if attempt == COMMIT_RETRIES - 1:
                    raise
                log.debug("%s lost a race to another commit (%s); trying again", what, error)
                time.sleep(0.05 * (attempt + 1))
            except (OSError, DeltaError) as error:
                problem = problem_of(error, self.root, self.options) if self.remote else None
                raise OutUnavailable(problem or f"cannot {what} in {self.root}: {_first_line(error)}") from error
        raise AssertionError("unreachable")


class OutUnavailable(UserError):
    """OUT's storage failed (a server down, a disk full): nothing half-written is visible; run again."""


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in redact(str(error)).splitlines() if line.strip()]
    return lines[0][:300] if lines else type(error).__name__
