"""Command-line arguments more than one command takes: OUT with its storage options (and --as-of),
and KEY=VALUE pairs. Parsing only: what the values mean is the commands' business."""

from __future__ import annotations

from jobs.common.errors import UserError


def add_out_arguments(parser, *, as_of: bool = True) -> None:
    """OUT and its storage options, as every command over OUT takes them (and --as-of, for readers)."""
    parser.add_argument("out", metavar="OUT", help="the scan's output: a local folder or an s3:// prefix")
    parser.add_argument(
        "--storage-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an fsspec storage option for an s3:// OUT (e.g. endpoint_url=http://127.0.0.1:8333); repeatable",
    )
    if as_of:
        parser.add_argument(
            "--as-of", metavar="VERSION|TIME", help="read OUT as it was at a `videos` version or a time (see `lavida history OUT`)"
        )


def storage_options_of(args) -> dict:
    return parse_storage_options(args.storage_option)


def parse_storage_options(pairs: list[str]) -> dict:
    """['endpoint_url=http://…', 'anon=false'] -> {'endpoint_url': 'http://…', 'anon': False}."""
    return {key: {"true": True, "false": False}.get(value.lower(), value) for key, value in parse_pairs(pairs, "--storage-option").items()}


def parse_pairs(pairs: list[str], option: str) -> dict[str, str]:
    """['a=1', 'b=x=y'] -> {'a': '1', 'b': 'x=y'}; UserError naming `option` for a pair without '='."""
    parsed = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"{option} {pair!r}: expected KEY=VALUE")
        parsed[key] = value
    return parsed
