"""`lavida query OUT "SQL"`: one read-only SELECT over OUT's views, sandboxed (see jobs/sandbox.py).

Views: frames, clips, videos, runs, events; the table macro events(min_score := …, max_gap := …,
min_duration := …) gives events under other thresholds.
"""

from __future__ import annotations

import argparse

from jobs.output import add_format_argument, render


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", metavar="OUT", help="the scan's output: a local folder or an s3:// prefix")
    parser.add_argument("sql", metavar="SQL", help="one SELECT over the views frames, clips, videos, runs, events")
    add_format_argument(parser)


def run(args: argparse.Namespace) -> int:
    from jobs import duck
    from jobs.sandbox import run_select

    con = duck.connect(args.out, sandbox=True)
    columns, rows = run_select(con, args.sql)
    print(render(args.format, columns, rows))
    return 0
