"""One-line error text for notices and command-line errors."""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its class name when it has none:
    a library's multi-line error must still fit the one line a user is shown."""
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__
