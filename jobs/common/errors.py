"""Errors the CLI reports as one line instead of a traceback, and the exit codes it returns.

Two kinds reach `jobs/cli/main.py`, the one place that turns them into a line on stderr (`CLI_ERRORS`):
`UserError` from the jobs (a path, an option, a SQL statement) and `lavida_core.errors.InputError`
from the model and its helpers (frames, anomaly types, a checkpoint). Neither is translated into
the other on the way. An error raised in a Ray worker reaches the driver wrapped by Ray;
`cause_of` finds the typed error inside the wrapper.
"""

from __future__ import annotations

from lavida_core.errors import InputError


class UserError(Exception):
    """Bad input from the user (a path, an option, a SQL statement): the message says what to do."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a job: the message says what was kept and how to go on."""


EXIT_OK = 0
EXIT_ERROR = 1  # an unexpected failure (a bug, or something lavida does not know how to explain)
EXIT_USER_ERROR = 2  # bad input, options, paths: the message says what to do
EXIT_FAILED_VIDEOS = 3  # the run completed, but some videos could not be scanned (they are `videos` rows with an error)
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM; running the same command again resumes
EXIT_CODES = {
    EXIT_OK: "all ok",
    EXIT_ERROR: "unexpected error",
    EXIT_USER_ERROR: "bad input or options",
    EXIT_FAILED_VIDEOS: "the run completed but some videos failed",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C, SIGTERM)",
}


CLI_ERRORS: tuple[type[Exception], ...] = (UserError, InputError)


def cause_of(error: BaseException, kinds: tuple[type[Exception], ...] = CLI_ERRORS) -> Exception | None:
    """The first error of one of `kinds` in `error`'s chain: itself, what it was raised from, and
    the original error inside Ray's wrappers (RayTaskError.cause, ActorDiedError's creation error)."""
    seen: set[int] = set()
    chain: list[BaseException | None] = [error]
    while chain:
        current = chain.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        wrapped = [getattr(current, "cause", None), getattr(current, "creation_task_error", None)]
        if isinstance(current, kinds) and not any(isinstance(w, BaseException) for w in wrapped):
            return current
        chain += [w for w in wrapped if isinstance(w, BaseException)] + [current.__cause__, current.__context__]
    return None
