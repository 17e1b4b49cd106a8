"""`lavida history OUT`: OUT's commits, newest first — the versions `--as-of` reads.

A version is one commit of the `videos` table (the commit marker of every batch of videos), so
`lavida events OUT --as-of 41` shows OUT as it was after that batch, and an ISO time shows it as it
was then (e.g. before last night's run).
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from jobs.common.arguments import add_out_arguments, storage_options_of
from jobs.out.duck import open_out
from jobs.out.tables import OutTables


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_out_arguments(parser, as_of=False)
    parser.add_argument("--limit", type=int, default=20, metavar="N", help="the newest N versions (default 20)")


def run(args: argparse.Namespace) -> int:
    options = storage_options_of(args)
    out = open_out(args.out, storage_options=options)
    print("version  committed at (UTC)          run                        operation  videos")
    for entry in OutTables(out.root, options).versions("videos")[: args.limit]:
        when = datetime.fromtimestamp(entry["timestamp"] / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"
        rows = (entry.get("operationMetrics") or {}).get("num_added_rows", "")
        print(f"{entry['version']:>7}  {when:<26}  {entry.get('lavida_run_id', '-'):<25}  {entry.get('operation', ''):<9}  {rows}")
    return 0
