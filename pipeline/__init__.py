"""The lifecycle: MLflow tracking (one writer), the baseline, the test, the registry gate, the pyfunc, the CLI.

:func:`search` (:mod:`tunefleet.pipeline.api`) is ``tunefleet search`` as a Python function; it
loads on first use, so that the CLI's import of this package stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tunefleet.pipeline.api import search as search

__all__ = ["search"]


def __getattr__(name: str) -> Any:
    if name != "search":
        raise AttributeError(f"module 'tunefleet.pipeline' has no attribute {name!r}")
    from tunefleet.pipeline.api import search

    return search
