"""The `lavida` command: one sub-command per job module.

Each module named in COMMANDS exposes `add_arguments(parser)` and `run(args) -> int`, and imports
its heavy dependencies (torch, ray) inside `run`, so that `lavida --help` and `lavida query` stay fast.

This is the one place where failures become what the user sees (EXIT_CODES): a user or input error
is one line on stderr, Ctrl-C or SIGTERM exits 130 with what was kept, anything else is one line
that points at `--debug` (which shows the traceback).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import signal
import sys

from jobs.common.errors import CLI_ERRORS, EXIT_CODES, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USER_ERROR
from jobs.out.s3_settings import RedactingFilter, problem_of, redact

COMMANDS: dict[str, tuple[str, str]] = {
    "scan": ("jobs.scan.job", "scan an archive (folder or s3:// prefix) for anomalies into OUT"),
    "events": ("jobs.query.events", "list anomalous events found in OUT"),
    "query": ("jobs.query.query", "run read-only SQL over OUT's views"),
    "history": ("jobs.out.history", "list OUT's commits (the versions --as-of reads)"),
    "compact": ("jobs.out.compact", "compact OUT's tables and delete rows no view shows (a scan does it when it ends)"),
    "search": ("jobs.search.search", "search OUT's videos by describing an anomaly in words"),
    "index": ("jobs.search.index", "back-fill the clip embeddings search retrieves from (an OUT scanned without them)"),
    "report": ("jobs.query.report", "write plots, mask overlays and an HTML page for OUT"),
    "train": ("jobs.train.cli", "train LAVIDA on pseudo-anomalies from segmentation data"),
    "eval": ("jobs.eval.evaluate", "evaluate a model on a standard VAD benchmark"),
    "demo": ("jobs.cli.demo", "scan the bundled generated archive and print its events"),
    "detect": ("jobs.scan.detect_clip", "run LAVIDA on one clip of one video and print per-frame scores"),
}


def _common_options(*, subcommand: bool) -> argparse.ArgumentParser:
    """-v and --debug, accepted before or after the command (`lavida --debug scan …`, `lavida scan … --debug`)."""
    default = argparse.SUPPRESS if subcommand else False  # a subcommand does not reset what was given before it
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=default, help="log debug messages")
    common.add_argument("--debug", action="store_true", default=default, help="show the traceback of a failure")
    return common


def build_parser() -> argparse.ArgumentParser:
    epilog = "exit status: " + "; ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES.items())
    parser = argparse.ArgumentParser(
        prog="lavida",
        description="Video-archive anomaly analytics with LAVIDA.",
        epilog=epilog,
        parents=[_common_options(subcommand=False)],
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        if importlib.util.find_spec(module_name) is None:
            continue  # a command whose module is not built yet is simply not offered
        module = importlib.import_module(module_name)
        command_parser = sub.add_parser(
            name, help=help_text, description=help_text, epilog=epilog, parents=[_common_options(subcommand=True)]
        )
        module.add_arguments(command_parser)
        command_parser.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())  # no secret reaches a log line
    previous = signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM stops a command as Ctrl-C does
    try:
        return int(args._run(args) or 0)
    except CLI_ERRORS as error:
        if args.debug:
            raise
        _say(f"lavida {args.command}: error: {error}")
        return EXIT_USER_ERROR
    except KeyboardInterrupt as interrupt:
        if args.debug:
            raise
        said = f": {interrupt}" if str(interrupt) else ""
        _say(f"lavida {args.command}: interrupted{said}")
        return EXIT_INTERRUPTED
    except Exception as error:
        if args.debug:
            raise
        remote = _s3_url(args)
        problem = problem_of(error, remote, _storage_options(args)) if remote else None
        if problem:  # an S3 failure that no command caught where it happened
            _say(f"lavida {args.command}: error: {problem}")
            return EXIT_USER_ERROR
        if isinstance(error, OSError):  # a path that is not what it must be, a disk that is full, a server gone
            where = f" ({error.filename})" if error.filename else ""
            _say(f"lavida {args.command}: error: {error.strerror or _first_line(error)}{where}")
            return EXIT_USER_ERROR
        _say(
            f"lavida {args.command}: unexpected error: {type(error).__name__}: {_first_line(error)} (rerun with --debug for the traceback)"
        )
        return EXIT_ERROR
    finally:
        signal.signal(signal.SIGTERM, previous)


def _say(line: str) -> None:
    """A failure's line on stderr: no secret, no colour codes."""
    print(redact(line), file=sys.stderr)


def _s3_url(args: argparse.Namespace) -> str | None:
    """The s3:// path the command was given (its source or its OUT), to name in an S3 failure."""
    for name in ("out", "source"):
        value = getattr(args, name, None)
        if isinstance(value, str) and value.startswith(("s3://", "s3a://")):
            return value
    return None


def _storage_options(args: argparse.Namespace) -> dict:
    from jobs.common.arguments import parse_storage_options

    try:
        return parse_storage_options(getattr(args, "storage_option", None) or [])
    except CLI_ERRORS:
        return {}


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _first_line(error: BaseException) -> str:
    lines = [line for line in redact(str(error)).splitlines() if line.strip()]
    return lines[0][:300] if lines else ""
