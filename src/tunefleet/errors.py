"""User-facing errors.

Every problem a user can cause (a bad file, a bad config value, an impossible split)
is raised as a :class:`TunefleetError` whose message is one line naming the problem
and the fix. The command line prints that line and exits with code 2 instead of
showing a traceback from deep inside a library.
"""

from __future__ import annotations


class TunefleetError(Exception):
    """A problem the user can fix; ``str(err)`` is a one-line message."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


class DataError(TunefleetError):
    """The dataset or a prediction input is unusable as given."""


class ConfigError(TunefleetError):
    """A configuration file or override is invalid."""


def first_line(err: BaseException | str, limit: int = 200) -> str:
    """The first non-empty line of an exception (or text), cut to ``limit`` characters.

    What a one-line error quotes from a library's multi-line message; an exception
    with no text is named by its type.
    """
    text = str(err).strip()
    line = text.splitlines()[0] if text else (type(err).__name__ if isinstance(err, BaseException) else "")
    return line[:limit]


def last_line(text: str, limit: int = 200) -> str:
    """The last non-empty line of a traceback or a log (the error itself), cut to ``limit`` characters."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip()[:limit] if lines else ""
