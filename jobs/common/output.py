"""Render query results (column names + rows) as a text table, CSV or JSON for the CLI."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
import math
import uuid
from collections.abc import Callable, Sequence

Rows = Sequence[Sequence[object]]

_MAX_CELL = 60  # characters of one cell in the text table; longer values end in '…'


def _plain(value: object) -> object:
    """A JSON-serialisable version of a DuckDB value (nested lists/structs kept as such)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, (dt.timedelta, decimal.Decimal, uuid.UUID)):
        return str(value)
    return value


def _cell(value: object) -> str:
    """One value as text: floats to 4 decimals, nested values as JSON, null as empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(_plain(value), ensure_ascii=False)
    return str(_plain(value))


def format_table(columns: Sequence[str], rows: Rows) -> str:
    cells = [[_clip(_cell(v)) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells]
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines)


def _clip(text: str) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


def format_csv(columns: Sequence[str], rows: Rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(v) if not isinstance(v, float) else repr(v) for v in row])
    return buffer.getvalue().rstrip("\n")


def format_json(columns: Sequence[str], rows: Rows) -> str:
    """A JSON array with one object per row."""
    records = [{c: _plain(v) for c, v in zip(columns, row)} for row in rows]
    return json.dumps(records, ensure_ascii=False, indent=1)


FORMATS: dict[str, Callable[[Sequence[str], Rows], str]] = {
    "table": format_table,
    "csv": format_csv,
    "json": format_json,
}


def add_format_argument(parser) -> None:
    parser.add_argument("--format", choices=sorted(FORMATS), default="table", help="output format (default: table)")


def render(fmt: str, columns: Sequence[str], rows: Rows) -> str:
    return FORMATS[fmt](columns, rows)
