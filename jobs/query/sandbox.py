"""Read-only user SQL over OUT: one SELECT, checked by DuckDB's own parser, run on a locked connection.

Two layers, each enough for a different part of the hostile list:
1. The statement check (here): exactly one statement, of type SELECT (`WITH … SELECT`, `FROM …`,
   `VALUES`, `DESCRIBE`/`SUMMARIZE` parse as SELECT too). COPY … TO, ATTACH, INSTALL/LOAD, SET,
   PRAGMA, CREATE/INSERT/DROP, EXPORT, EXPLAIN, a second statement after `;` are refused here.
2. The connection (jobs/out/duck.py `lock_down`): external access off with OUT as the one allowed
   directory, extension autoload/autoinstall off, configuration locked. A SELECT that calls
   read_csv('/etc/passwd'), read_text, read_parquet/glob of a path outside OUT fails there.
   (That layer alone does not stop a COPY … TO into OUT itself — DuckDB allows writes to an allowed
   directory — so the statement check is not optional.)
The parsed statement is what runs, so the check and the execution read the same text.
"""

from __future__ import annotations

import duckdb

from jobs.common.errors import UserError
from jobs.out.duck import fetch


def check_select(con: duckdb.DuckDBPyConnection, sql: str, *, what: str = "query") -> duckdb.Statement:
    """The one SELECT statement in `sql`; raises UserError for anything else."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as error:
        raise UserError(f"{what} does not parse: {_first_line(error)}") from None
    if not statements:
        raise UserError(f"{what} is empty: give one SELECT statement")
    if len(statements) != 1:
        raise UserError(
            f"{what} must be exactly one SQL statement, found {len(statements)} (a ';' followed by more SQL starts a second one)"
        )
    statement = statements[0]
    if statement.type != duckdb.StatementType.SELECT:
        raise UserError(f"{what} is read-only: only a SELECT (or WITH … SELECT) is allowed; {statement.type.name} statements are not")
    return statement


def run_select(con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None, *, what: str = "query"):
    """Check and run user SQL on a sandboxed connection; returns (column names, rows)."""
    statement = check_select(con, sql, what=what)
    try:
        return fetch(con, statement, params)
    except duckdb.PermissionException as error:
        raise UserError(
            f"{what} was refused: it may read OUT's views and files only; it cannot read other files, "
            f"write files, attach databases or install/load extensions ({_first_line(error)})"
        ) from None
    except duckdb.Error as error:
        raise UserError(f"{what} failed: {_first_line(error)}") from None


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0]
