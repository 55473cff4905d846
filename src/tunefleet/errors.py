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
