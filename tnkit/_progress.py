"""Progress bars (tqdm, on request) and the library's logger: no prints in tnkit.

Example:
    >>> from tnkit._progress import steps
    >>> list(steps(range(3), progress=False, desc="bonds"))
    [0, 1, 2]
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger("tnkit")


def steps(items: Iterable[Any], *, progress: bool, desc: str, total: int | None = None):
    """``items``, wrapped in a tqdm bar on stderr when ``progress`` is True."""
    if not isinstance(progress, bool):
        raise TypeError(f"progress: expected a bool, got {progress!r}")
    if not progress:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, total=total, leave=False)
