"""The `lavida` command: one sub-command per job module.

Each module named in COMMANDS exposes `add_arguments(parser)` and `run(args) -> int`, and imports
its heavy dependencies (torch, ray) inside `run`, so that `lavida --help` and `lavida query` stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys

from jobs.errors import CLI_ERRORS

COMMANDS: dict[str, tuple[str, str]] = {
    "scan": ("jobs.scan", "scan an archive (folder or s3:// prefix) for anomalies into OUT"),
    "events": ("jobs.events", "list anomalous events found in OUT"),
    "query": ("jobs.query", "run read-only SQL over OUT's views"),
    "search": ("jobs.search", "search OUT's videos by describing an anomaly in words"),
    "report": ("jobs.report", "write plots, mask overlays and an HTML page for OUT"),
    "train": ("jobs.train.cli", "train LAVIDA on pseudo-anomalies from segmentation data"),
    "eval": ("jobs.eval", "evaluate a model on a standard VAD benchmark"),
    "demo": ("jobs.demo", "scan the bundled generated archive and print its events"),
    "detect": ("jobs.detect_clip", "run LAVIDA on one clip of one video and print per-frame scores"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lavida", description="Video-archive anomaly analytics with LAVIDA.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        if importlib.util.find_spec(module_name) is None:
            continue  # a command whose module is not built yet is simply not offered
        module = importlib.import_module(module_name)
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(command_parser)
        command_parser.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args._run(args) or 0)
    except CLI_ERRORS as error:
        print(f"lavida {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
