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


# --- views that read OME-Zarr metadata themselves -------------------------------------------

from data_helpers import write_ome_zarr  # noqa: E402
from data_helpers.plotting import (  # noqa: E402
    contrast_limits,
    image_view,
    orthogonal_views,
    projection,
    show_montage,
    show_plane,
    show_projection,
)


@pytest.fixture(scope="module")
def anisotropic(tmp_path_factory):
    """An OME-Zarr image with voxels 4 times longer in z than in y and x, 2 levels, chunks of 16."""
    rng = np.random.default_rng(1)
    volume = rng.integers(0, 200, size=(16, 64, 48), dtype=np.uint8)
    volume[:, 10:20, 30:40] = 255
    path = tmp_path_factory.mktemp("plot") / "aniso.ome.zarr"
    write_ome_zarr(volume, path, voxel_size=(4.0, 1.0, 1.0), unit="micrometer", chunks=16, n_levels=2)
    return path, volume


def test_orthogonal_views_read_scale_and_units_from_the_path(anisotropic):
    path, volume = anisotropic
    fig = orthogonal_views(path, level=0, point=(3, 15, 35))
    yx, zx, zy = fig.axes[:3]
    assert [ax.get_xlabel() for ax in (yx, zx, zy)] == ["x (micrometer)", "x (micrometer)", "y (micrometer)"]
    assert [ax.get_ylabel() for ax in (yx, zx, zy)] == ["y (micrometer)", "z (micrometer)", "z (micrometer)"]
    # Anisotropic: 16 z voxels of 4 um are 64 um tall, as tall as the 64 y voxels of 1 um.
    left, right, bottom, top = zy.images[0].get_extent()
    assert (right - left, bottom - top) == (64.0, 64.0)
    left, right, bottom, top = zx.images[0].get_extent()
    assert (right - left, bottom - top) == (48.0, 64.0)
    assert zx.get_aspect() == 1.0  # equal aspect in physical space: not squashed
    np.testing.assert_array_equal(yx.images[0].get_array(), volume[3])
    np.testing.assert_array_equal(zy.images[0].get_array(), volume[:, :, 35])
    assert yx.get_title() == "z = 12 µm"


def test_level_one_has_its_own_scale_and_translation(anisotropic):
    path, _ = anisotropic
    view = image_view(path, level=1)
    assert view.shape == (16, 32, 24) and view.scale == (4.0, 2.0, 2.0)
    # The first voxel's centre is half a fine voxel in: the image still starts at -0.5 um.
    assert view.edges(1) == pytest.approx((-0.5, 63.5))
    fig = orthogonal_views(path, level=-1)
    assert fig.axes[0].images[0].get_array().shape == (32, 24)


def test_z_out_of_range_reports_the_valid_range(anisotropic):
    path, _ = anisotropic
    with pytest.raises(IndexError, match=r"z=16 is out of range at level 0: its valid range is 0 to 15"):
        orthogonal_views(path, point={"z": 16})
    with pytest.raises(IndexError, match="0 to 15"):
        show_plane(path, index=-1)
    with pytest.raises(ValueError, match="levels: give 0 to 1"):
        orthogonal_views(path, level=5)


def test_2d_input_gives_one_panel_in_physical_units():
    image = np.arange(12.0).reshape(3, 4)
    fig = orthogonal_views(image, scale=(2.0, 0.5), unit="nanometer")
    assert len(fig.axes) == 2  # the panel and its colour bar
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x (nanometer)", "y (nanometer)")
    left, right, bottom, top = ax.images[0].get_extent()
    assert (right - left, bottom - top) == (2.0, 6.0)
    with pytest.raises(ValueError, match="3D image"):
        projection(image)


def test_4d_input_picks_the_channel():
    data = np.zeros((3, 4, 5, 6), dtype=np.uint16)
    data[2] = 7
    view = image_view(data, axes=("c", "z", "y", "x"), scale=(1, 3, 1, 1), unit="micrometer", channel=2)
    assert view.shape == (4, 5, 6) and view.axes == ("z", "y", "x") and view.scale == (3.0, 1.0, 1.0)
    fig = orthogonal_views(data, axes=("c", "z", "y", "x"), channel=2, clim=(0, 10))
    assert fig.axes[0].images[0].get_array().max() == 7
    with pytest.raises(IndexError, match="channel=3 is out of range.*give 0 to 2"):
        image_view(data, axes=("c", "z", "y", "x"), channel=3)
    with pytest.raises(ValueError, match="no 't' axis"):
        image_view(data, axes=("c", "z", "y", "x"), time=0)


def test_5d_default_axes_and_time_index():
    data = np.zeros((2, 1, 3, 4, 5))
    data[1, 0, 2, 3, 4] = 9
    assert image_view(data, time=1).data.compute()[2, 3, 4] == 9
    assert image_view(data).fixed == {"t": 0, "c": 0}


@pytest.mark.parametrize("shape", [(5,), (1, 2, 3, 4, 5, 6)])
def test_rejects_wrong_number_of_dimensions(shape):
    with pytest.raises(ValueError, match="2 to 5 dimensions"):
        image_view(np.zeros(shape))


def test_bad_arguments_get_clear_errors(anisotropic):
    path, _ = anisotropic
    with pytest.raises(ValueError, match="read from the OME-Zarr metadata"):
        image_view(path, scale=(1, 1, 1))
    with pytest.raises(ValueError, match="one voxel size per axis"):
        image_view(np.zeros((3, 3, 3)), scale=(1, 1))
    with pytest.raises(ValueError, match="positive"):
        image_view(np.zeros((3, 3, 3)), scale=(1, 0, 1))
    with pytest.raises(ValueError, match="kind must be one of"):
        projection(np.zeros((3, 3, 3)), kind="median")
    with pytest.raises(ValueError, match="not one of the image's spatial axes"):
        show_plane(np.zeros((3, 3, 3)), axis="q")
    with pytest.raises(ValueError, match="percentiles must rise"):
        contrast_limits(np.zeros((3, 3)), percentiles=(99, 1))
    with pytest.raises(ValueError, match="low < high"):
        orthogonal_views(np.zeros((3, 3, 3)), clim=(5, 5))
    with pytest.raises(TypeError, match="OME-Zarr path or URL"):
        image_view(object())


def test_projection_is_chunkwise_and_right(anisotropic):
    path, volume = anisotropic
    mip = projection(path, axis="z", kind="max")
    assert mip.numblocks == (4, 3)  # one partial result per column of 16 x 16 chunks
    np.testing.assert_array_equal(mip.compute(), volume.max(axis=0))
    mean = projection(path, axis="x", kind="mean").compute()
    np.testing.assert_allclose(mean, volume.mean(axis=2))
    fig = show_projection(path, axis="y", kind="max")
    assert (fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()) == ("x (micrometer)", "z (micrometer)")
    assert fig.axes[0].images[0].get_cmap().name == "magma"


def test_chunk_grid_lines_fall_on_chunk_borders(anisotropic):
    path, _ = anisotropic
    ax = show_plane(path, index=4, axis="z").axes[0]
    xs = sorted(line.get_xdata()[0] for line in ax.lines if line.get_xdata()[0] == line.get_xdata()[1])
    ys = sorted(line.get_ydata()[0] for line in ax.lines if line.get_ydata()[0] == line.get_ydata()[1])
    assert xs == [15.5, 31.5]  # chunks of 16 along x (48 voxels): borders after voxel 15 and 31
    assert ys == [15.5, 31.5, 47.5]
    plain = show_plane(path, index=4, chunk_grid=False).axes[0]
    assert len(plain.lines) == 0


def test_contrast_limits_from_a_coarse_level_are_close(anisotropic):
    path, volume = anisotropic
    full = np.percentile(volume, [1, 99])
    coarse = contrast_limits(path, level=-1, percentiles=(1, 99))
    assert coarse[0] < coarse[1]
    assert abs(coarse[1] - full[1]) < 40
    # A strided sample bounded by max_voxels still reads something sensible.
    few = contrast_limits(path, level=0, percentiles=(0, 100), max_voxels=100)
    assert 0 <= few[0] < few[1] <= 255


def test_montage_has_n_panels_in_physical_units():
    volume = np.random.default_rng(0).random((10, 6, 8))
    fig = show_montage(volume, n=5, columns=3, scale=(2, 1, 1), unit="micrometer")
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 5 + 0 and [ax.get_title() for ax in shown][-1] == "z = 18 µm"
    with pytest.raises(ValueError, match="n must be 1 to 10"):
        show_montage(volume, n=11)


# -- legible at the width the page shows a figure ------------------------------------------------------------

from functools import partial  # noqa: E402

from data_helpers.plotting import (  # noqa: E402
    PAGE_WIDTH,
    TEXT_SIZE_KEY,
    recorded_text_px,
    smallest_text_px,
    use_book_style,
)

#: The width in CSS px the book's theme gives a figure on a 390 px phone (measured in
#: tests/test_browser.py, which checks the built pages themselves).
PHONE_FIGURE_CSS_PX = 342


def test_smallest_text_px_counts_only_drawn_text():
    fig, ax = plt.subplots(dpi=100)
    ax.set_title("title", fontsize=20)
    ax.tick_params(labelsize=9)
    ax.text(0.5, 0.5, "", fontsize=2)  # empty: draws nothing
    ax.text(0.5, 0.5, "hidden", fontsize=3, visible=False)
    assert smallest_text_px(fig) == pytest.approx(9 * 100 / 72)
    assert smallest_text_px(fig, dpi=200) == pytest.approx(9 * 200 / 72)
    ax.set_axis_off()  # tick labels are no longer drawn
    assert smallest_text_px(fig) == pytest.approx(20 * 100 / 72)
    assert smallest_text_px(plt.figure()) == float("inf")
    with pytest.raises(TypeError, match="matplotlib Figure"):
        smallest_text_px(ax)
    with pytest.raises(ValueError, match="dpi must be a positive number"):
        smallest_text_px(fig, dpi=0)


def test_notebook_png_records_the_smallest_text(monkeypatch):
    """In IPython, use_book_style makes the PNG of each figure carry its smallest text size."""
    import base64

    from IPython.core.interactiveshell import InteractiveShell
    from IPython.core.pylabtools import print_figure
    from matplotlib.figure import Figure

    shell = InteractiveShell.instance()
    try:
        png = shell.display_formatter.formatters["image/png"]
        # what the inline backend registers when it loads
        png.for_type(Figure, partial(print_figure, fmt="png", base64=True))
        previous = use_book_style()
        fig, ax = plt.subplots()
        ax.set_xlabel("x", fontsize=7)
        data = base64.b64decode(shell.display_formatter.format(fig)[0]["image/png"])
        assert recorded_text_px(data) == pytest.approx(7 * 144 / 72)
        assert TEXT_SIZE_KEY.encode() in data
        # the backend registers its formatter again: the hook after each cell wraps it again
        png.for_type(Figure, partial(print_figure, fmt="png", base64=True))
        shell.events.trigger("post_execute")
        data = base64.b64decode(shell.display_formatter.format(fig)[0]["image/png"])
        assert recorded_text_px(data) == pytest.approx(7 * 144 / 72)
        matplotlib.rcParams.update(previous)
    finally:
        InteractiveShell.clear_instance()


def test_recorded_text_px_reads_only_pngs(tmp_path):
    fig, _ = plt.subplots()
    fig.savefig(tmp_path / "plain.png")
    assert recorded_text_px(tmp_path / "plain.png") is None
    with pytest.raises(ValueError, match="not a PNG image"):
        recorded_text_px(b"GIF89a")


@pytest.mark.parametrize(
    "draw",
    [
        lambda: show_slices(np.zeros((120, 120, 139)), (1.273,) * 3, "millimeter", title="heart"),
        lambda: orthogonal_views(np.zeros((64, 256, 256)), scale=(4, 1, 1), unit="micrometer"),
        lambda: orthogonal_views(np.zeros((256, 256)), scale=(1, 1), unit="micrometer"),
        lambda: show_montage(np.zeros((64, 64, 64)), n=9, columns=3, scale=(4, 1, 1), unit="micrometer"),
        lambda: show_plane(np.zeros((64, 256, 256)), index=3, scale=(4, 1, 1), unit="micrometer"),
    ],
    ids=["slices", "orthogonal", "orthogonal-2d", "montage", "plane"],
)
def test_package_figures_are_legible_on_a_phone(draw):
    """Page wide and no wider: 9 CSS px text or more when a 390 px phone shows the figure."""
    previous = use_book_style()
    try:
        fig = draw()
        width_px = fig.get_size_inches()[0] * fig.dpi
        assert fig.get_size_inches()[0] <= PAGE_WIDTH + 1e-9
        assert smallest_text_px(fig) * min(1, PHONE_FIGURE_CSS_PX / width_px) >= 9
    finally:
        matplotlib.rcParams.update(previous)
