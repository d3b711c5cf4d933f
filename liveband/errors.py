"""Errors a user can fix. Kept apart from liveband.cli so that `python -m liveband.cli`
(which runs cli.py as __main__) and the command modules share one class."""

from engine.errors import first_line

__all__ = ["UserError", "first_line"]  # first_line: the UI's one-line error text too


class UserError(Exception):
    """A problem the user can fix; the CLI prints it as one line and exits 2."""
