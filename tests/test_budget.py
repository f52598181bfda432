"""data_helpers.budget: peak memory and elapsed time of the process."""

from __future__ import annotations

import numpy as np
import pytest

from data_helpers.budget import MemoryBudgetError, check_memory_budget, elapsed_seconds, peak_memory_bytes


def test_peak_memory_grows_with_a_big_allocation():
    before = peak_memory_bytes()
    block = np.ones(200 * 2**20, dtype=np.uint8)  # 200 MiB, touched
    after = peak_memory_bytes()
    assert block.sum() == block.size
    assert after >= before
    assert after >= 200 * 2**20


def test_check_passes_within_budget():
    figures = check_memory_budget(64.0)
    assert 0 < figures["peak_memory_gib"] < 64
    assert figures["elapsed_s"] == pytest.approx(elapsed_seconds(), abs=60)


def test_check_raises_over_budget():
    with pytest.raises(MemoryBudgetError, match="over its budget"):
        check_memory_budget(1e-6)


@pytest.mark.parametrize("bad", [0, -1, float("nan")])
def test_limit_must_be_positive(bad):
    with pytest.raises(ValueError, match="positive"):
        check_memory_budget(bad)


# -- check_claim: strict in the build and CI, a warning on a reader's machine ------
from data_helpers.budget import STRICT_ENV_VARS, ClaimError, ClaimWarning, check_claim, claims_are_strict


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
