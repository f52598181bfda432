"""Units of OME-Zarr axes: the UDUNITS-2 names the specification allows, and common spellings of them."""

from __future__ import annotations

import difflib

from data_helpers.errors import NotedBookError

__all__ = ["SPACE_UNITS", "TIME_UNITS", "UnitError", "normalize_unit"]

#: Space units allowed by OME-Zarr 0.4 and 0.5 (UDUNITS-2 names).
SPACE_UNITS: frozenset[str] = frozenset(
    "angstrom attometer centimeter decimeter exameter femtometer foot gigameter hectometer inch kilometer "
    "megameter meter micrometer mile millimeter nanometer parsec petameter picometer terameter yard "
    "yoctometer yottameter zeptometer zettameter".split()
)

#: Time units allowed by OME-Zarr 0.4 and 0.5 (UDUNITS-2 names).
TIME_UNITS: frozenset[str] = frozenset(
    "attosecond centisecond day decisecond exasecond femtosecond gigasecond hectosecond hour kilosecond "
    "megasecond microsecond millisecond minute nanosecond petasecond picosecond second terasecond "
    "yoctosecond yottasecond zeptosecond zettasecond".split()
)

_ALIASES = {
    # space
    "um": "micrometer", "µm": "micrometer", "μm": "micrometer", "micron": "micrometer", "microns": "micrometer",
    "micrometre": "micrometer", "nm": "nanometer", "nanometre": "nanometer", "mm": "millimeter",
    "millimetre": "millimeter", "cm": "centimeter", "centimetre": "centimeter", "m": "meter", "metre": "meter",
    "km": "kilometer", "kilometre": "kilometer", "pm": "picometer", "picometre": "picometer", "å": "angstrom",
    "ångström": "angstrom", "a": "angstrom", "in": "inch", "ft": "foot", "feet": "foot", "inches": "inch",
    # time
    "s": "second", "sec": "second", "ms": "millisecond", "us": "microsecond", "µs": "microsecond",
    "μs": "microsecond", "ns": "nanosecond", "min": "minute", "h": "hour", "hr": "hour", "d": "day",
}


class UnitError(NotedBookError, ValueError):
    """A unit that OME-Zarr does not allow, or one of the wrong kind for its axis."""


def normalize_unit(unit: str, kind: str = "space") -> str:
    """Return the UDUNITS-2 name that OME-Zarr expects for a unit, from a common spelling.

    ``"um"``, ``"µm"``, ``"micron"`` and ``"micrometre"`` all give ``"micrometer"``;
    plurals (``"millimeters"``) and capitals are accepted too.

    Parameters
    ----------
    unit
        The unit as you would write it.
    kind
        ``"space"`` for z, y and x axes, ``"time"`` for a t axis.

    Returns
    -------
    str
        The unit's name as the OME-Zarr specification lists it.

    Raises
    ------
    UnitError
        If the unit is unknown or of the wrong kind. The message suggests the
        nearest allowed name.

    Examples
    --------
    >>> from data_helpers import normalize_unit
    >>> normalize_unit("µm"), normalize_unit("Microns"), normalize_unit("ms", kind="time")
    ('micrometer', 'micrometer', 'millisecond')
    >>> normalize_unit("micrometr")
    Traceback (most recent call last):
    ...
    data_helpers.units.UnitError: 'micrometr' is not a space unit that OME-Zarr allows; did you mean 'micrometer'? ...
    """
    if kind not in ("space", "time"):
        raise ValueError(f"kind must be 'space' or 'time', got {kind!r}.")
    allowed = SPACE_UNITS if kind == "space" else TIME_UNITS
    if not isinstance(unit, str) or not unit.strip():
        raise UnitError(f"a unit must be a non-empty string such as 'micrometer', got {unit!r}.")
    key = unit.strip()
    lowered = key.lower()
    candidates = [key, lowered, _ALIASES.get(key, ""), _ALIASES.get(lowered, "")]
    if lowered.endswith("s"):
        candidates += [lowered[:-1], _ALIASES.get(lowered[:-1], "")]
    candidates = [c.replace("metre", "meter") for c in candidates if c]
    for name in candidates:
        if name in allowed:
            return name
    other = TIME_UNITS if kind == "space" else SPACE_UNITS
    if any(c in other for c in candidates):
        raise UnitError(f"{unit!r} is a {'time' if kind == 'space' else 'space'} unit, but this is a {kind} axis.")
    guess = difflib.get_close_matches(lowered, sorted(allowed) + sorted(_ALIASES), n=1, cutoff=0.6)
    hint = f"did you mean {(_ALIASES.get(guess[0], guess[0]))!r}? " if guess else ""
    examples = "micrometer, nanometer, millimeter" if kind == "space" else "second, millisecond, minute"
    raise UnitError(
        f"{unit!r} is not a {kind} unit that OME-Zarr allows; {hint}"
        f"Use a UDUNITS-2 name such as {examples} (common spellings like 'um' are converted)."
    )
