"""Files that appear whole or not at all.

A process killed while writing must not leave a half-written file that a later process
takes for a complete one (a resumed search reading a trial's record, a search copying
the template tracking store).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def written_whole(target: Path) -> Iterator[Path]:
    """A hidden temporary path beside ``target`` to write; renamed onto it (atomically) when the block ends.

    If the block fails, or the process dies in it, ``target`` is untouched: the temporary
    file is removed, or at worst left as ``.<name>.<pid>.part``, which no reader looks for.
    """
    part = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        yield part
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)
