"""A chapter's footprint (peak memory, elapsed time) and its timing claims.

Every chapter ends with a hidden cell that checks its peak memory against the
book's budget (2 GiB, the size of a free Binder session), so a chapter that
outgrows it fails the build.

A sentence such as "16³ chunks were more than 5 times slower to read than 128³"
is backed by a hidden :func:`check_claim`. When the book is built or tested
(``DATA_HELPERS_STRICT_CLAIMS=1`` or ``TEXTBOOK_STRICT=1``), a claim that does not
hold raises :class:`ClaimError` and stops the build. Anywhere else, on a reader's
slower or busier machine, it only warns (:class:`ClaimWarning`), so that
"Run All" goes on.
"""

from __future__ import annotations

import os
import sys
import time
import warnings

__all__ = [
    "BINDER_MEMORY_GIB",
    "ClaimError",
    "ClaimWarning",
    "MemoryBudgetError",
    "check_claim",
    "check_memory_budget",
    "claims_are_strict",
    "elapsed_seconds",
    "peak_memory_bytes",
]

#: Environment variables that make :func:`check_claim` raise instead of warn
#: (``tasks.py`` sets the first for the book build, CI sets the second).
STRICT_ENV_VARS = ("DATA_HELPERS_STRICT_CLAIMS", "TEXTBOOK_STRICT")

#: Memory of a free Binder session: the budget of every chapter.
BINDER_MEMORY_GIB = 2.0


class MemoryBudgetError(RuntimeError):
    """The process used more memory than the chapter's budget."""


class ClaimError(AssertionError):
    """A measured claim of the text does not hold (strict mode: book build and CI)."""


class ClaimWarning(UserWarning):
    """A measured claim of the text does not hold on this machine (reader's mode)."""


def claims_are_strict() -> bool:
    """True when a failed :func:`check_claim` raises: ``DATA_HELPERS_STRICT_CLAIMS=1`` or ``TEXTBOOK_STRICT=1``.

    Examples
    --------
    >>> from data_helpers.budget import claims_are_strict
    >>> isinstance(claims_are_strict(), bool)
    True
    """
    return any(os.environ.get(name, "").strip() == "1" for name in STRICT_ENV_VARS)


def check_claim(condition: bool, message: str) -> bool:
    """Check a claim that rests on a timing; raise in the build, warn on a reader's machine.

    Timings depend on the machine and on what else it runs. The book's build and
    CI must stop when the text no longer matches the measurement, but a reader's
    "Run All" should not stop because their laptop was busy.

    Parameters
    ----------
    condition
        The claim, already evaluated, e.g. ``full_16 > 5 * full_128``.
    message
        What was claimed and what was measured, e.g.
        ``f"16³ full read only {ratio:.1f}x slower than 128³; the text says more than 5x"``.

    Returns
    -------
    bool
        ``True`` if the claim holds, ``False`` if it does not (reader's mode only).

    Raises
    ------
    ClaimError
        If the claim does not hold and ``DATA_HELPERS_STRICT_CLAIMS=1`` or
        ``TEXTBOOK_STRICT=1`` is set (the book build and CI).
    TypeError
        If ``message`` is not a string.

    Warns
    -----
    ClaimWarning
        If the claim does not hold and strict mode is off: the measurement on this
        machine differs from the one in the text.

    Examples
    --------
    >>> from data_helpers.budget import check_claim
    >>> check_claim(3.0 > 2 * 1.2, "A is more than twice as slow as B")
    True
    """
    if not isinstance(message, str):
        raise TypeError(f"message must be a string saying what was claimed, got {type(message).__name__}.")
    if bool(condition):
        return True
    if claims_are_strict():
        raise ClaimError(f"{message} (a claim of the text; strict because {' or '.join(STRICT_ENV_VARS)}=1)")
    warnings.warn(
        f"On this machine the measurement does not match the text: {message}. Timings vary with the "
        f"machine and its load; run the cell again, or read the text's figures as one machine's result.",
        ClaimWarning,
        stacklevel=2,
    )
    return False


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
