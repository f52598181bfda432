"""data_helpers.units: common spellings to UDUNITS-2 names, and clear refusals."""

import pytest

from data_helpers import SPACE_UNITS, TIME_UNITS, UnitError, normalize_unit


@pytest.mark.parametrize(
    "spelling, name",
    [("um", "micrometer"), ("µm", "micrometer"), ("μm", "micrometer"), ("micron", "micrometer"),
     ("Microns", "micrometer"), ("micrometre", "micrometer"), ("micrometers", "micrometer"),
     ("nm", "nanometer"), ("mm", "millimeter"), ("Å", "angstrom"), ("meter", "meter"), (" um ", "micrometer")],
)
def test_space_spellings(spelling, name):
    assert normalize_unit(spelling) == name


@pytest.mark.parametrize("spelling, name", [("s", "second"), ("ms", "millisecond"), ("minutes", "minute"), ("hour", "hour")])
def test_time_spellings(spelling, name):
    assert normalize_unit(spelling, kind="time") == name


def test_every_allowed_name_maps_to_itself():
    assert all(normalize_unit(u) == u for u in SPACE_UNITS)
    assert all(normalize_unit(u, "time") == u for u in TIME_UNITS)


@pytest.mark.parametrize("unit, hint", [("micrometr", "did you mean 'micrometer'"), ("nanometre5", "did you mean 'nanometer'")])
def test_unknown_unit_suggests_the_nearest(unit, hint):
    with pytest.raises(UnitError, match=hint):
        normalize_unit(unit)


@pytest.mark.parametrize("unit", ["furlong", "", None, 3])
def test_nonsense_is_refused(unit):
    with pytest.raises(UnitError, match="UDUNITS-2|non-empty string"):
        normalize_unit(unit)


def test_wrong_kind_is_named():
    with pytest.raises(UnitError, match="time unit, but this is a space axis"):
        normalize_unit("second")
    with pytest.raises(UnitError, match="space unit, but this is a time axis"):
        normalize_unit("um", kind="time")
    with pytest.raises(ValueError, match="kind must be"):
        normalize_unit("um", kind="mass")


def test_unit_error_is_a_value_error():
    assert issubclass(UnitError, ValueError)


def test_convert_units_between_lengths_and_durations():
    from data_helpers.units import convert_units

    assert convert_units((2.0, 0.65, 0.65), "µm", "nm") == (2000.0, 650.0, 650.0)
    assert convert_units(0.65, "micron", "millimeters") == (0.00065,)
    assert convert_units(1, "inch", "cm") == (2.54,)
    assert convert_units(1500, "ms", "second", kind="time") == (1.5,)
    assert convert_units(2, "um", "um") == (2.0,)


def test_convert_units_refuses_unknown_and_mixed_kinds():
    from data_helpers.units import convert_units

    with pytest.raises(UnitError, match="did you mean 'micrometer'"):
        convert_units(1, "micrometr", "nm")
    with pytest.raises(UnitError, match="time unit, but this is a space axis"):
        convert_units(1, "um", "second")
    for bad in ("0.65", float("nan"), (1.0, float("inf")), True, None):
        with pytest.raises(ValueError, match="finite numbers"):
            convert_units(bad, "um", "nm")
