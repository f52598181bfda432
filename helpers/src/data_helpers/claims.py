"""What a chapter's text claims: glued numbers, and checks of claims that rest on timings.

A chapter puts computed numbers into its prose with ``glue`` and backs a stated
relationship ("16³ chunks were more than 5 times slower than 128³") with a hidden
cell. Two helpers serve those hidden cells:

- :func:`glue` stores a value for the prose (``{glue:text}`name```) through
  ``myst_nb.glue``, and also prints ``name = value``. The book's website removes
  those cells, so the print is never seen there; in JupyterLab, which cannot fill
  in ``{glue:text}`` placeholders, it puts the numbers in the reader's view just
  above the paragraph that uses them.
- :func:`show_glued` prints ``name = value`` again for names glued earlier, when a later paragraph uses
  them: a name is glued once (the book's build refuses a name glued twice), so the hidden cell just above
  each paragraph either glues its names or shows them again.
- :func:`check_claim` checks a claim that rests on a timing. When the book is
  built or tested (``DATA_HELPERS_STRICT_CLAIMS=1`` or ``TEXTBOOK_STRICT=1``), a
  claim that does not hold raises :class:`ClaimError` and stops the build.
  Anywhere else, on a reader's slower or busier machine, it only warns
  (:class:`ClaimWarning`), so that "Run All" goes on.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from data_helpers._fastimport import import_jsonschema
from data_helpers.errors import BookError

__all__ = [
    "STRICT_ENV_VARS", "ClaimError", "ClaimWarning", "check_claim", "claims_are_strict", "glue",
    "show_glued",
]

#: Environment variables that make :func:`check_claim` raise instead of warn
#: (``tasks.py`` sets the first for the book build; CI sets both).
STRICT_ENV_VARS = ("DATA_HELPERS_STRICT_CLAIMS", "TEXTBOOK_STRICT")


class ClaimError(BookError, AssertionError):
    """A measured claim of the text does not hold (strict mode: book build and CI)."""


class ClaimWarning(BookError, UserWarning):
    """A measured claim of the text does not hold on this machine (reader's mode)."""


#: What :func:`glue` stored in this process, by name, for :func:`show_glued`.
_GLUED: dict[str, Any] = {}


def claims_are_strict() -> bool:
    """True when a failed :func:`check_claim` raises: ``DATA_HELPERS_STRICT_CLAIMS=1`` or ``TEXTBOOK_STRICT=1``.

    Examples
    --------
    >>> from data_helpers.claims import claims_are_strict
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
        What was measured against what the text says, e.g.
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
    >>> from data_helpers.claims import check_claim
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


def _short(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.6g}" if abs(value) < 1e6 else f"{value:,.0f}"


def glue(name: str, value: Any, display: bool = False) -> str:
    """Store ``value`` under ``name`` for ``{glue:text}`name``` in the prose, and print ``name = value``.

    Use it only in cells tagged ``remove-cell``: the website shows the value
    where the prose refers to it, and the print is for notebook readers.

    Parameters
    ----------
    name
        The name the prose uses, e.g. ``"scan_gb"``.
    value
        A number or a short text.
    display
        Also show the value as the cell's output (``myst_nb.glue``'s ``display``);
        off by default, because the printed line already shows it.

    Returns
    -------
    str
        The printed line.

    Raises
    ------
    ValueError
        If ``name`` is not a Python identifier.

    Examples
    --------
    >>> from data_helpers.claims import glue
    >>> glue("answer", 42.125)  # doctest: +SKIP
    answer = 42.12
    'answer = 42.12'
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name must be a plain identifier such as 'scan_gb', got {name!r}.")
    # myst_nb.glue imports nbformat, which imports jsonschema: without its IRI grammar that takes 0.1 s, not 3 s
    import_jsonschema()
    from myst_nb import glue as myst_glue

    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        # A NumPy scalar: its repr (np.float64(1.5)) cannot be formatted as a number in the prose.
        value = value.item()
    myst_glue(name, value, display=display)
    _GLUED[name] = value
    line = f"{name} = {_short(value)}"
    print(line)
    return line


def show_glued(*names: str) -> list[str]:
    """Print ``name = value`` again for names that :func:`glue` stored earlier in this kernel.

    A paragraph can use a number that an earlier cell glued. The book's build accepts each name glued
    once only, so the hidden cell just above that paragraph shows the value again instead of gluing it
    again: in JupyterLab, which shows ``{glue:text}`name``` as the name, the value is then printed just
    above every paragraph that uses it.

    Parameters
    ----------
    *names
        Names passed to :func:`glue` by cells that ran before, e.g. ``"scan_gb"``.

    Returns
    -------
    list of str
        The printed lines, one per name, as :func:`glue` prints them.

    Raises
    ------
    LookupError
        If a name has not been glued in this kernel yet: run the cell that glues it (search the
        chapter for ``glue("name"``) first, or Run All.
    ValueError
        If no name is given, or a name is not a Python identifier.

    Examples
    --------
    >>> from data_helpers.claims import glue, show_glued
    >>> glue("answer", 42)  # doctest: +SKIP
    answer = 42
    'answer = 42'
    >>> show_glued("answer")  # doctest: +SKIP
    answer = 42
    ['answer = 42']
    """
    if not names:
        raise ValueError("show_glued needs at least one name, such as show_glued('scan_gb').")
    for name in names:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"each name must be a plain identifier such as 'scan_gb', got {name!r}.")
    missing = [name for name in names if name not in _GLUED]
    if missing:
        raise LookupError(
            f"no cell of this kernel has glued {', '.join(map(repr, missing))} yet: run the cell that computes "
            f"it first (search the chapter for glue({missing[0]!r}), or run all cells from the top."
        )
    lines = [f"{name} = {_short(_GLUED[name])}" for name in names]
    for line in lines:
        print(line)
    return lines
