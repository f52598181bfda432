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
