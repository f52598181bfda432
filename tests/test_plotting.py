"""data_helpers.plotting: orthogonal slices in physical units."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from data_helpers import show_slices


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_three_panels_in_physical_units():
    vol = np.zeros((4, 6, 8))
    fig = show_slices(vol, voxel_size=(3.0, 1.0, 0.5), unit="micrometer", title="t")
    panels = fig.axes[:3]
    assert [ax.get_xlabel() for ax in panels] == ["x (micrometer)", "x (micrometer)", "y (micrometer)"]
    assert [ax.get_ylabel() for ax in panels] == ["y (micrometer)", "z (micrometer)", "z (micrometer)"]
    # extents are in physical units: the z-y panel spans 6*1.0 by 4*3.0
    left, right, bottom, top = panels[2].images[0].get_extent()
    assert (right - left, bottom - top) == (6.0, 12.0)
    assert panels[0].images[0].get_cmap().name == "gray"


def test_reads_only_three_planes():
    class Spy:
        shape = (5, 5, 5)
        dtype = np.uint8

        def __init__(self):
            self.calls = []

        def __getitem__(self, key):
            self.calls.append(key)
            return np.zeros((5, 5), dtype=np.uint8)

    spy = Spy()
    show_slices(spy)
    assert len(spy.calls) == 3


def test_rejects_non_3d():
    with pytest.raises(ValueError, match="3D"):
        show_slices(np.zeros((4, 4)))


@pytest.mark.parametrize("voxel", [(1, 1), (0, 1, 1), (1, -2, 1), (float("nan"), 1, 1)])
def test_rejects_bad_voxel_size(voxel):
    with pytest.raises(ValueError, match="voxel_size"):
        show_slices(np.zeros((2, 2, 2)), voxel_size=voxel)


def test_rejects_index_outside():
    with pytest.raises(ValueError, match="outside"):
        show_slices(np.zeros((2, 2, 2)), index=(0, 0, 5))


def test_book_style_sets_legible_defaults_and_can_be_undone():
    from data_helpers.plotting import BOOK_STYLE, use_book_style

    before = dict(matplotlib.rcParams)
    previous = use_book_style()
    try:
        assert matplotlib.rcParams["figure.dpi"] >= 144 and matplotlib.rcParams["font.size"] >= 12
        fig = plt.figure(figsize=(8, 4))
        assert fig.dpi == BOOK_STYLE["figure.dpi"]  # 8 in -> 1152 px: sharp when scaled to a page
    finally:
        matplotlib.rcParams.update(previous)
    assert {k: matplotlib.rcParams[k] for k in BOOK_STYLE} == {k: before[k] for k in BOOK_STYLE}
