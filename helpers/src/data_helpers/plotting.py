"""Figures for 3D images: orthogonal slices in physical units."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["BOOK_STYLE", "show_slices", "use_book_style"]

#: Matplotlib settings for figures that stay legible on a page and on a phone:
#: twice the pixels of a screen figure (sharp when the page scales it down) and
#: fonts a size larger than matplotlib's default.
BOOK_STYLE: dict[str, Any] = {
    "figure.dpi": 144,
    "savefig.dpi": 144,
    "font.size": 12,
    "axes.titlesize": 12,
    "axes.labelsize": 12,
    "xtick.labelsize": 11,
    "ytick.labelsize": 11,
    "legend.fontsize": 11,
}


def use_book_style() -> dict[str, Any]:
    """Set matplotlib's resolution and font sizes for figures on a page and a phone.

    Call it once at the top of a chapter. It changes only the settings in
    :data:`BOOK_STYLE` and returns the values they had before, so that
    ``matplotlib.rcParams.update(previous)`` undoes it.

    Returns
    -------
    dict
        The previous values of the settings that were changed.

    Examples
    --------
    >>> import matplotlib
    >>> from data_helpers.plotting import use_book_style
    >>> previous = use_book_style()
    >>> matplotlib.rcParams["font.size"]
    12.0
    >>> matplotlib.rcParams.update(previous)
    """
    import matplotlib

    previous = {key: matplotlib.rcParams[key] for key in BOOK_STYLE}
    matplotlib.rcParams.update(BOOK_STYLE)
    return previous


def show_slices(
    volume: Any,
    voxel_size: Sequence[float] | None = None,
    unit: str = "voxel",
    axes: Sequence[str] = ("z", "y", "x"),
    index: Sequence[int] | None = None,
    cmap: str = "gray",
    title: str | None = None,
) -> Figure:
    """Plot the three orthogonal slices through a 3D volume, in physical units.

    Each panel is drawn with equal aspect in physical space, so anisotropic
    voxels look the right shape, and its axes are labelled with the unit.

    Parameters
    ----------
    volume
        A 3D array (NumPy, or anything with ``__getitem__`` such as Zarr or
        Dask: only three planes are read).
    voxel_size
        Physical size of a voxel along each axis, in ``axes`` order. Default 1.
    unit
        Name of the unit of ``voxel_size``, used in the axis labels.
    axes
        Names of the three axes, slowest-varying first.
    index
        Voxel index where the slices cross; the centre by default.
    cmap
        A perceptually uniform colour map (``"gray"``, ``"viridis"``, ...).
    title
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from data_helpers import show_slices
    >>> fig = show_slices(np.zeros((4, 5, 6)), voxel_size=(2, 1, 1), unit="micrometer")
    >>> [ax.get_xlabel() for ax in fig.axes[:3]]
    ['x (micrometer)', 'x (micrometer)', 'y (micrometer)']
    """
    import matplotlib.pyplot as plt

    shape = tuple(getattr(volume, "shape", ()))
    if len(shape) != 3:
        raise ValueError(
            f"show_slices needs a 3D array, got shape {shape}. For 4D data, pick one "
            f"channel or time point first, e.g. volume[0]."
        )
    if len(axes) != 3:
        raise ValueError(f"axes must name 3 axes, got {tuple(axes)!r}.")
    voxel = tuple(float(v) for v in (voxel_size if voxel_size is not None else (1, 1, 1)))
    if len(voxel) != 3 or any(not np.isfinite(v) or v <= 0 for v in voxel):
        raise ValueError(f"voxel_size must be 3 positive numbers, got {voxel_size!r}.")
    centre = tuple(s // 2 for s in shape) if index is None else tuple(int(i) for i in index)
    if len(centre) != 3 or any(not 0 <= c < s for c, s in zip(centre, shape)):
        raise ValueError(f"index {index!r} is outside the volume of shape {shape}.")

    planes = [
        (np.asarray(volume[centre[0], :, :]), 1, 2, 0),
        (np.asarray(volume[:, centre[1], :]), 0, 2, 1),
        (np.asarray(volume[:, :, centre[2]]), 0, 1, 2),
    ]
    lo = min(float(p[0].min()) for p in planes)
    hi = max(float(p[0].max()) for p in planes)
    widths = [shape[c] * voxel[c] for _, _, c, _ in planes]
    fig, panels = plt.subplots(1, 3, figsize=(11, 4), width_ratios=widths, layout="constrained")
    for ax, (plane, row_axis, col_axis, fixed) in zip(panels, planes):
        extent = (0, shape[col_axis] * voxel[col_axis], shape[row_axis] * voxel[row_axis], 0)
        image = ax.imshow(plane, cmap=cmap, vmin=lo, vmax=hi, extent=extent, interpolation="nearest")
        ax.set_aspect("equal")
        ax.set_xlabel(f"{axes[col_axis]} ({unit})")
        ax.set_ylabel(f"{axes[row_axis]} ({unit})")
        ax.set_title(f"{axes[fixed]} = {centre[fixed]} (voxel index)")
    fig.colorbar(image, ax=list(panels), shrink=0.8, label="intensity")
    if title:
        fig.suptitle(title)
    return fig
