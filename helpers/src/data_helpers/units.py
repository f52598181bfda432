"""Units of OME-Zarr axes: the UDUNITS-2 names the specification allows, and common spellings of them."""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from numbers import Real

from data_helpers.errors import NotedBookError

__all__ = ["SPACE_UNITS", "TIME_UNITS", "UnitError", "convert_units", "normalize_unit"]

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

# The size of each unit in meters (space) or seconds (time), for converting between them.
_SI_PREFIXES = {"yocto": 1e-24, "zepto": 1e-21, "atto": 1e-18, "femto": 1e-15, "pico": 1e-12, "nano": 1e-9,
                "micro": 1e-6, "milli": 1e-3, "centi": 1e-2, "deci": 1e-1, "": 1.0, "hecto": 1e2, "kilo": 1e3,
                "mega": 1e6, "giga": 1e9, "tera": 1e12, "peta": 1e15, "exa": 1e18, "zetta": 1e21, "yotta": 1e24}
_SIZES: dict[str, float] = {
    **{f"{prefix}meter": size for prefix, size in _SI_PREFIXES.items()},
    **{f"{prefix}second": size for prefix, size in _SI_PREFIXES.items()},
    "angstrom": 1e-10, "inch": 0.0254, "foot": 0.3048, "yard": 0.9144, "mile": 1609.344,
    "parsec": 3.0856775814913673e16, "minute": 60.0, "hour": 3600.0, "day": 86400.0,
}

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


def convert_units(values: float | Sequence[float], from_unit: str, to_unit: str, kind: str = "space") -> tuple[float, ...]:
    """Convert lengths (or, with ``kind="time"``, durations) from one unit to another.

    Parameters
    ----------
    values
        One number or a sequence of numbers, in ``from_unit``.
    from_unit, to_unit
        Units in any spelling that :func:`normalize_unit` accepts (``"µm"``, ``"nm"``, ``"micrometer"``).
    kind
        ``"space"`` or ``"time"``.

    Returns
    -------
    tuple of float
        The values in ``to_unit`` (a tuple even for one number).

    Raises
    ------
    UnitError
        An unknown unit, or one of the wrong kind.
    ValueError
        A value that is not a finite number.

    Examples
    --------
    >>> from data_helpers.units import convert_units
    >>> convert_units((2.0, 0.65, 0.65), "µm", "nm")
    (2000.0, 650.0, 650.0)
    >>> convert_units(1500, "ms", "second", kind="time")
    (1.5,)
    """
    source, target = normalize_unit(from_unit, kind), normalize_unit(to_unit, kind)
    numbers = (values,) if not hasattr(values, "__iter__") or getattr(values, "ndim", 1) == 0 else tuple(values)
    if isinstance(values, (str, bytes)) or not all(
            isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v) for v in numbers):
        raise ValueError(f"values must be finite numbers (one, or a sequence), got {values!r}.")
    factor = _SIZES[source] / _SIZES[target]
    # rounded to 12 significant digits, so 0.65 um is 650.0 nm and not 650.0000000000001
    return tuple(float(f"{float(v) * factor:.12g}") for v in numbers)
