"""Measure a chapter's own footprint: peak memory and elapsed time of this process.

Every chapter ends with a hidden cell that checks its peak memory against the
book's budget (2 GiB, the size of a free Binder session), so a chapter that
outgrows it fails the build. Time is reported, never asserted: these machines
are shared and noisy.
"""

from __future__ import annotations

import sys
import time

from data_helpers.errors import BookError

__all__ = ["BINDER_MEMORY_GIB", "MemoryBudgetError", "check_memory_budget", "elapsed_seconds", "peak_memory_bytes"]

#: Memory of a free Binder session: the budget of every chapter.
BINDER_MEMORY_GIB = 2.0


class MemoryBudgetError(BookError, RuntimeError):
    """The process used more memory than the chapter's budget."""


def peak_memory_bytes() -> int:
    """Peak resident memory (RSS) of this process so far, in bytes.

    Examples
    --------
    >>> from data_helpers.budget import peak_memory_bytes
    >>> peak_memory_bytes() > 0
    True
    """
    try:
        import resource
    except ImportError:  # Windows
        import psutil

        return int(psutil.Process().memory_info().peak_wset)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kibibytes, macOS bytes.
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def elapsed_seconds() -> float:
    """Seconds since this process (for a notebook: its kernel) started.

    Examples
    --------
    >>> from data_helpers.budget import elapsed_seconds
    >>> elapsed_seconds() >= 0
    True
    """
    import psutil

    return max(0.0, time.time() - psutil.Process().create_time())


def check_memory_budget(limit_gib: float = BINDER_MEMORY_GIB) -> dict[str, float]:
    """Raise if this process's peak memory exceeded ``limit_gib``; return the figures.

    Parameters
    ----------
    limit_gib
        The budget in GiB; 2 GiB by default (a free Binder session).

    Returns
    -------
    dict
        ``peak_memory_gib`` and ``elapsed_s``, for a chapter to glue or print.

    Raises
    ------
    MemoryBudgetError
        If the peak memory is above the budget. Make the chapter work lazily
        (dask, smaller chunks) rather than raising the limit.

    Examples
    --------
    >>> from data_helpers.budget import check_memory_budget
    >>> sorted(check_memory_budget())
    ['elapsed_s', 'peak_memory_gib']
    """
    if not limit_gib > 0:
        raise ValueError(f"limit_gib must be a positive number of GiB, got {limit_gib!r}.")
    peak = peak_memory_bytes() / 2**30
    figures = {"peak_memory_gib": peak, "elapsed_s": elapsed_seconds()}
    if peak > limit_gib:
        raise MemoryBudgetError(
            f"This chapter peaked at {peak:.2f} GiB of memory, over its budget of "
            f"{limit_gib:g} GiB. Process the data lazily (dask) or in smaller pieces."
        )
    return figures
