"""The `lavida` command (`main`: one sub-command per command module, and the one place failures become
what the user sees) and `lavida demo` (`demo`), which strings the other commands together."""

from jobs.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
