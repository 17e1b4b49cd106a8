"""`lavida query OUT "SQL"`: one read-only SELECT over OUT's views, sandboxed (see jobs/query/sandbox.py).

Views: frames, clips, videos, runs, events; the table macro events(min_score := …, max_gap := …,
min_duration := …) gives events under other thresholds.
"""

from __future__ import annotations

import argparse

from jobs.common.arguments import add_out_arguments
from jobs.common.output import add_format_argument, render


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_out_arguments(parser)
    parser.add_argument("sql", metavar="SQL", help="one SELECT over the views frames, clips, videos, runs, events")
    add_format_argument(parser)


def run(args: argparse.Namespace) -> int:
    from jobs.out import duck
    from jobs.query.sandbox import run_select

    con = duck.connect_args(args, sandbox=True)
    columns, rows = run_select(con, args.sql)
    print(render(args.format, columns, rows))
    return 0
