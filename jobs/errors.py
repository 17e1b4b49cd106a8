"""Errors the CLI reports as one line (exit status 2) instead of a traceback.

Two kinds reach `jobs/cli.py`, the one place that turns them into a line on stderr (`CLI_ERRORS`):
`UserError` from the jobs (a path, an option, a SQL statement) and `lavida_core.errors.InputError`
from the model and its helpers (frames, anomaly types, a checkpoint). Neither is translated into
the other on the way. An error raised in a Ray worker reaches the driver wrapped by Ray;
`cause_of` finds the typed error inside the wrapper.
"""

from __future__ import annotations

from lavida_core.errors import InputError


class UserError(Exception):
    """Bad input from the user (a path, an option, a SQL statement): the message says what to do."""


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
