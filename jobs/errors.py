"""Errors the CLI reports as one line (exit status 2) instead of a traceback."""


class UserError(Exception):
    """Bad input from the user (a path, an option, a SQL statement): the message says what to do."""
