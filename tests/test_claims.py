"""data_helpers.claims: glued numbers, and timing claims (strict in the build and CI, a warning elsewhere)."""

from __future__ import annotations

import pytest

from data_helpers.claims import STRICT_ENV_VARS, ClaimError, ClaimWarning, check_claim, claims_are_strict, glue


@pytest.fixture
def reader_mode(monkeypatch):
    for name in STRICT_ENV_VARS:
        monkeypatch.delenv(name, raising=False)


def test_a_claim_that_holds_passes_silently(reader_mode, recwarn):
    assert check_claim(2.0 > 1.0, "two is more than one") is True
    assert not recwarn.list


def test_a_failed_claim_warns_on_a_readers_machine(reader_mode):
    assert not claims_are_strict()
    with pytest.warns(ClaimWarning, match="16³ only 2.0x slower"):
        assert check_claim(False, "16³ only 2.0x slower") is False


@pytest.mark.parametrize("name", STRICT_ENV_VARS)
def test_a_failed_claim_raises_in_strict_mode(reader_mode, monkeypatch, name):
    monkeypatch.setenv(name, "1")
    assert claims_are_strict()
    with pytest.raises(ClaimError, match="16³ only 2.0x slower"):
        check_claim(False, "16³ only 2.0x slower")
    assert check_claim(True, "holds") is True


def test_strict_only_for_the_value_1(reader_mode, monkeypatch):
    monkeypatch.setenv("DATA_HELPERS_STRICT_CLAIMS", "0")
    assert not claims_are_strict()


def test_claim_error_is_an_assertion_error():
    assert issubclass(ClaimError, AssertionError)


def test_message_must_be_text(reader_mode):
    with pytest.raises(TypeError, match="message must be a string"):
        check_claim(True, 42)


def test_glue_stores_for_myst_nb_and_prints_the_value(capsys, monkeypatch):
    calls = []
    import myst_nb

    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=True: calls.append((name, value, display)))
    assert glue("scan_gb", 1049.37) == "scan_gb = 1,049.37"
    assert glue("n_files", 2001600) == "n_files = 2,001,600"
    assert glue("shape", "120 × 120") == "shape = 120 × 120"
    assert calls == [("scan_gb", 1049.37, False), ("n_files", 2001600, False), ("shape", "120 × 120", False)]
    assert capsys.readouterr().out.splitlines() == ["scan_gb = 1,049.37", "n_files = 2,001,600", "shape = 120 × 120"]


@pytest.mark.parametrize("bad", ["two words", "", 3, "a-b"])
def test_glue_needs_an_identifier(bad):
    with pytest.raises(ValueError, match="plain identifier"):
        glue(bad, 1)


def test_glue_stores_numpy_scalars_as_plain_numbers(monkeypatch):
    import sys
    import types

    import numpy as np

    stored = {}
    fake = types.SimpleNamespace(glue=lambda name, value, display=False: stored.__setitem__(name, value))
    monkeypatch.setitem(sys.modules, "myst_nb", fake)
    from data_helpers.claims import glue

    glue("mean_tissue", np.float64(37120.9))
    assert type(stored["mean_tissue"]) is float and f"{stored['mean_tissue']:,.0f}" == "37,121"
    glue("count", np.int64(3))
    assert type(stored["count"]) is int



def test_show_glued_prints_again_what_glue_stored(capsys, monkeypatch):
    import myst_nb

    from data_helpers.claims import show_glued

    calls = []
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=False: calls.append(name))
    glue("shown_gb", 1049.37)
    glue("shown_shape", "120 × 120")
    capsys.readouterr()
    assert show_glued("shown_shape", "shown_gb") == ["shown_shape = 120 × 120", "shown_gb = 1,049.37"]
    assert capsys.readouterr().out.splitlines() == ["shown_shape = 120 × 120", "shown_gb = 1,049.37"]
    assert calls == ["shown_gb", "shown_shape"]  # shown again, never glued twice (the build refuses that)


def test_show_glued_names_the_cell_to_run_first():
    from data_helpers.claims import show_glued

    with pytest.raises(LookupError, match=r"glued 'never_glued_here' yet: run the cell .*glue\('never_glued_here'\)"):
        show_glued("never_glued_here")


@pytest.mark.parametrize("bad", [(), ("two words",), (3,)])
def test_show_glued_needs_identifiers(bad):
    from data_helpers.claims import show_glued

    with pytest.raises(ValueError, match="show_glued needs at least one name|plain identifier"):
        show_glued(*bad)
