"""Figures of 3D images in physical units, read lazily from OME-Zarr at any pyramid level.

:func:`image_view` opens one level of an OME-Zarr path or URL (or takes a 2D to 5D array) and
keeps its spatial part with axes, units, scale and translation. The figures start from it:
:func:`orthogonal_views` (three planes through a point), :func:`show_plane` (one plane with the
chunk grid), :func:`show_projection` and :func:`projection` (maximum or mean intensity, chunk by
chunk), :func:`show_montage` (a grid of planes), and :func:`contrast_limits` (display limits from
percentiles of a coarse level).
"""

from __future__ import annotations

import base64
import math
import os
import struct
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = [
    "BOOK_STYLE",
    "ImageView",
    "PAGE_WIDTH",
    "PROJECTIONS",
    "TEXT_SIZE_KEY",
    "contrast_limits",
    "image_view",
    "orthogonal_views",
    "projection",
    "recorded_text_px",
    "show_montage",
    "show_plane",
    "show_projection",
    "show_slices",
    "smallest_text_px",
    "use_book_style",
]

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

#: Width in inches of a figure drawn for the page. At 144 dpi it is 792 px, a little more than
#: the 672 CSS px the page shows a figure at on a 1280 px screen; on a 390 px phone 11 pt text of
#: such a figure still shows at about 10 CSS px. Wider figures make every text smaller on a phone.
PAGE_WIDTH = 5.5

#: The PNG text key under which the book's figures record their smallest text, in image pixels.
TEXT_SIZE_KEY = "data_helpers.smallest_text_px"


def use_book_style() -> dict[str, Any]:
    """Set matplotlib's resolution and font sizes for figures on a page and a phone.

    Call it once at the top of a chapter. It changes only the settings in
    :data:`BOOK_STYLE` and returns the values they had before, so that
    ``matplotlib.rcParams.update(previous)`` undoes it. In a notebook it also
    records each figure's smallest text size (:func:`smallest_text_px`) in the
    PNG the notebook shows, under :data:`TEXT_SIZE_KEY`, so that a test of the
    built pages can check how large that text appears (:func:`recorded_text_px`).

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
    _record_text_size_in_figures()
    return previous


@contextmanager
def _drawn_text_sizes() -> Iterator[list[float]]:
    """Collect the size in image pixels of every non-empty text that is drawn inside the block."""
    from matplotlib.text import Text

    sizes: list[float] = []
    original = Text.draw

    def draw(self: Any, renderer: Any) -> Any:
        if self.get_visible() and self.get_text().strip() and hasattr(renderer, "points_to_pixels"):
            sizes.append(float(renderer.points_to_pixels(self.get_fontsize())))
        return original(self, renderer)

    Text.draw = draw
    try:
        yield sizes
    finally:
        Text.draw = original


def smallest_text_px(fig: Figure, dpi: float | None = None) -> float:
    """The size of the smallest text a figure draws, in pixels of its image.

    The figure is drawn once, and each visible, non-empty text (titles, labels, tick
    labels, legends, annotations) counts with its font size times ``dpi / 72``. On a
    page that shows the image ``d`` CSS px wide, a text of ``s`` image pixels is
    ``s * d / natural_width`` CSS px tall: the book asks for 9 at 390 px and 12 at 1280 px.

    Parameters
    ----------
    fig
        A matplotlib figure.
    dpi
        The resolution of the image (default the figure's own, as the notebook shows it).

    Returns
    -------
    float
        The smallest size in image pixels, or ``math.inf`` when the figure draws no text.

    Raises
    ------
    TypeError
        If ``fig`` is not a matplotlib figure.
    ValueError
        If ``dpi`` is not a positive number.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots(dpi=144)
    >>> _ = ax.set_title("title", fontsize=12)
    >>> _ = ax.tick_params(labelsize=10)
    >>> smallest_text_px(fig)
    20.0
    >>> plt.close(fig)
    """
    import io

    from matplotlib.figure import Figure as _Figure

    if not isinstance(fig, _Figure):
        raise TypeError(f"smallest_text_px needs a matplotlib Figure, got {type(fig).__name__}.")
    resolution = fig.dpi if dpi is None else dpi
    if isinstance(resolution, bool) or not isinstance(resolution, (int, float)) or not resolution > 0:
        raise ValueError(f"dpi must be a positive number, got {dpi!r}.")
    with _drawn_text_sizes() as sizes:
        fig.savefig(io.BytesIO(), format="png", dpi=resolution)
    return min(sizes, default=math.inf)


def _png_with_text(data: bytes, key: str, value: str) -> bytes:
    """``data`` (a PNG) with a tEXt chunk ``key``: ``value`` added just before its end."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n") or not data.endswith(b"IEND\xaeB`\x82"):
        raise ValueError("not a complete PNG image")
    body = key.encode("latin-1") + b"\0" + value.encode("latin-1")
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body
    chunk += struct.pack(">I", zlib.crc32(b"tEXt" + body) & 0xFFFFFFFF)
    end = len(data) - 12  # the IEND chunk: length, type, no data, CRC
    return data[:end] + chunk + data[end:]


def recorded_text_px(png: bytes | str | os.PathLike[str]) -> float | None:
    """The smallest text size recorded in a PNG by the book's figures, in image pixels.

    Parameters
    ----------
    png
        The image's bytes, or the path of a PNG file.

    Returns
    -------
    float or None
        The size stored under :data:`TEXT_SIZE_KEY`, or ``None`` if the image has none
        (it was not drawn by a kernel that called :func:`use_book_style`).

    Raises
    ------
    ValueError
        If ``png`` is not a PNG image.

    Examples
    --------
    >>> import io
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> buffer = io.BytesIO()
    >>> fig.savefig(buffer, format="png")
    >>> recorded_text_px(buffer.getvalue()) is None
    True
    >>> plt.close(fig)
    """
    data = png if isinstance(png, bytes) else Path(png).read_bytes()
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError(f"not a PNG image: {png if not isinstance(png, bytes) else data[:8]!r}")
    position = 8
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        if kind == b"tEXt":
            key, _, value = body.partition(b"\0")
            if key == TEXT_SIZE_KEY.encode("latin-1"):
                return float(value.decode("latin-1"))
        if kind == b"IEND":
            break
        position += 12 + length
    return None


class _RecordingPngFormatter:
    """IPython's PNG formatter for figures, with the smallest text size recorded in each image."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, fig: Any) -> str | None:
        with _drawn_text_sizes() as sizes:
            data = self.inner(fig, base64=False)
        if data is None:
            return None
        data = _png_with_text(data, TEXT_SIZE_KEY, f"{min(sizes, default=math.inf):.2f}")
        return base64.b64encode(data).decode("ascii")


def _record_text_size_in_figures(*_: Any) -> None:
    """Make the notebook's PNG of every figure carry its smallest text size (no-op outside IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with the notebook
        return
    shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return
    from matplotlib.figure import Figure as _Figure

    # The inline backend registers its own formatter when it loads (often after this call), and
    # again if reconfigured: re-wrap it after every cell, before the backend shows the cell's figures.
    events = shell.events
    if _record_text_size_in_figures not in events.callbacks.get("post_execute", []):
        events.callbacks["post_execute"].insert(0, _record_text_size_in_figures)
    formatter = shell.display_formatter.formatters["image/png"]
    try:
        current = formatter.lookup_by_type(_Figure)
    except KeyError:
        # No PNG formatter for figures yet: the inline backend registers one when it loads, which
        # pyplot does at the first figure. Load it now, so that a figure shown in the middle of
        # the next cell (plt.show()) is recorded too.
        import matplotlib

        backend = matplotlib.get_backend()
        if "inline" not in backend:
            return
        import matplotlib.pyplot as plt

        plt.switch_backend(backend)
        try:
            current = formatter.lookup_by_type(_Figure)
        except KeyError:
            return
    if not isinstance(current, _RecordingPngFormatter):
        formatter.for_type(_Figure, _RecordingPngFormatter(current))


def _orthogonal_axes(width: float, height: float, depth: float) -> tuple[Any, list[Any]]:
    """A page-wide figure with the y-x plane on top and the z-x and z-y planes below it.

    ``width``, ``height`` and ``depth`` are the physical extents along x, y and z. The two
    lower panels share their z rows and the two left panels their x columns, so each panel
    keeps the size it has in space while the figure stays as narrow as the page: a row of
    three panels would show its text at half the size on a phone.
    """
    import matplotlib.pyplot as plt

    # the panels share the page width with the axis labels and the colour bar (about 1.6 in)
    fig_height = (PAGE_WIDTH - 1.6) * (height + depth) / (width + height) + 1.4
    fig = plt.figure(figsize=(PAGE_WIDTH, min(9.0, max(3.0, fig_height))), layout="constrained")
    grid = fig.add_gridspec(2, 2, width_ratios=(width, height), height_ratios=(height, depth))
    panels = [fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])]
    return fig, panels


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
    fig, panels = _orthogonal_axes(*(shape[i] * voxel[i] for i in (2, 1, 0)))
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


# ---------------------------------------------------------------------------
# Views of OME-Zarr images that read their own metadata
# ---------------------------------------------------------------------------

_NON_SPATIAL = {"t": "time", "c": "channel"}
_DEFAULT_AXES = ("t", "c", "z", "y", "x")
PROJECTIONS = ("max", "mean", "min")
#: Unit symbols for panel titles, which have a third or half of the page width each.
_UNIT_SYMBOLS = {"nanometer": "nm", "micrometer": "µm", "millimeter": "mm", "centimeter": "cm",
                 "meter": "m", "millisecond": "ms", "second": "s"}


@dataclass(frozen=True)
class ImageView:
    """The spatial part of one level of an image: what the plotting functions draw.

    Attributes
    ----------
    data
        A lazy (dask) array of the spatial axes only (2D or 3D), chunked like the storage.
    axes, units, scale, translation
        Per spatial axis, in array order. A unit is ``None`` when the metadata gives none.
    fixed
        The index chosen on each non-spatial axis (time, channel), e.g. ``{"c": 0}``.
    level, n_levels
        The level shown and how many the image has (1 for a plain array).
    location
        The path or URL read, or ``"array"`` for an array given directly.
    """

    data: Any
    axes: tuple[str, ...]
    units: tuple[str | None, ...]
    scale: tuple[float, ...]
    translation: tuple[float, ...]
    fixed: dict[str, int]
    level: int
    n_levels: int
    location: str

    @property
    def shape(self) -> tuple[int, ...]:
        """The spatial shape, in voxels."""
        return tuple(int(n) for n in self.data.shape)

    @property
    def chunks(self) -> tuple[int, ...]:
        """The storage chunk shape along the spatial axes (the dask chunk size)."""
        return tuple(int(c) for c in self.data.chunksize)

    def label(self, axis: int) -> str:
        """Axis label with its unit, e.g. ``'z (micrometer)'``.

        Examples
        --------
        >>> import numpy as np
        >>> image_view(np.zeros((2, 3)), scale=(2, 1), unit="nanometer").label(0)
        'y (nanometer)'
        """
        return f"{self.axes[axis]} ({self.units[axis] or 'no unit'})"

    def edges(self, axis: int) -> tuple[float, float]:
        """Physical coordinates of the outer edges of the first and last voxels along ``axis``.

        OME-Zarr's translation is the centre of the first voxel, so the image starts half a voxel before it.

        Examples
        --------
        >>> import numpy as np
        >>> image_view(np.zeros((4, 3)), scale=(2, 1), unit="micrometer").edges(0)
        (-1.0, 7.0)
        """
        s, t, n = self.scale[axis], self.translation[axis], self.shape[axis]
        return (t - s / 2, t + (n - 0.5) * s)


def _fix_non_spatial(
    axes: Sequence[str], shape: Sequence[int], indices: dict[str, int | None]
) -> tuple[tuple, dict[str, int]]:
    key: list[Any] = []
    fixed: dict[str, int] = {}
    for name, n in zip(axes, shape):
        if name in _NON_SPATIAL:
            index = indices.get(name)
            index = 0 if index is None else index
            if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
                raise TypeError(f"{_NON_SPATIAL[name]} must be an integer index, got {index!r}.")
            if not -n <= index < n:
                raise IndexError(
                    f"{_NON_SPATIAL[name]}={index} is out of range: axis '{name}' has {n} "
                    f"entries, so give 0 to {n - 1}."
                )
            key.append(int(index) % n)
            fixed[name] = int(index) % n
        else:
            key.append(slice(None))
    return tuple(key), fixed


def image_view(
    source: Any,
    level: int = 0,
    *,
    channel: int | None = None,
    time: int | None = None,
    axes: Sequence[str] | None = None,
    scale: Sequence[float] | None = None,
    unit: str | None = None,
    storage_options: dict | None = None,
) -> ImageView:
    """Open the spatial part of one level of an image, lazily, with its physical metadata.

    Every plotting function of this module starts here, so they all accept the same sources:
    an OME-Zarr path or URL (its metadata gives axes, units, scale and translation), an
    :class:`~data_helpers.reading.OmeZarrLevel`, or a plain 2D to 5D array with the metadata given
    as arguments. One index is taken on the time and channel axes, so what is left is 2D or 3D.

    Parameters
    ----------
    source
        A folder or an ``http(s)://`` / ``s3://`` URL of an OME-Zarr image, an ``OmeZarrLevel``,
        or an array (NumPy, Dask, Zarr) with 2 to 5 dimensions.
    level
        The pyramid level (0 is full resolution, -1 the coarsest); only for paths and URLs.
    channel, time
        The index on the ``c`` and ``t`` axes, if the image has them (default 0).
    axes
        For an array: the axis names, e.g. ``("c", "z", "y", "x")``. Default: the last
        ``ndim`` of ``("t", "c", "z", "y", "x")``.
    scale
        For an array: the voxel size along every axis of ``axes``. Default 1.
    unit
        For an array: the unit of the spatial axes (default: none).
    storage_options
        For ``s3://`` URLs, passed to s3fs.

    Returns
    -------
    ImageView

    Raises
    ------
    ValueError
        If the source has fewer than 2 or more than 5 dimensions, or the metadata arguments do not fit.
    IndexError
        If ``channel`` or ``time`` is outside its axis (the message gives the valid range).

    Examples
    --------
    >>> import numpy as np
    >>> view = image_view(np.zeros((2, 8, 6, 4)), axes=("c", "z", "y", "x"),
    ...                   scale=(1, 3.0, 0.5, 0.5), unit="micrometer", channel=1)
    >>> view.shape, view.scale, view.fixed
    ((8, 6, 4), (3.0, 0.5, 0.5), {'c': 1})
    """
    import dask.array as da

    from data_helpers.reading import OmeZarrLevel, open_ome_zarr

    if isinstance(source, (str, os.PathLike)):
        if axes is not None or scale is not None or unit is not None:
            raise ValueError(
                "axes, scale and unit are read from the OME-Zarr metadata of a path or URL: "
                "leave them out, or pass an array instead."
            )
        source = open_ome_zarr(source, level, storage_options=storage_options)
    if isinstance(source, OmeZarrLevel):
        data, all_axes = source.data, tuple(source.axes)
        all_units, all_scale = tuple(source.units), tuple(source.scale)
        all_translation = tuple(source.translation)
        level_index, n_levels, location = source.level, source.n_levels, source.location
    else:
        shape = getattr(source, "shape", None)
        if shape is None or not hasattr(source, "__getitem__"):
            raise TypeError(
                "source must be an OME-Zarr path or URL, an OmeZarrLevel or an array, "
                f"got {type(source).__name__}."
            )
        ndim = len(shape)
        if not 2 <= ndim <= 5:
            raise ValueError(
                f"an image has 2 to 5 dimensions (t, c, z, y, x), got shape {tuple(shape)}. "
                "Remove extra axes first, e.g. with numpy.squeeze."
            )
        all_axes = tuple(axes) if axes is not None else _DEFAULT_AXES[-ndim:]
        if len(all_axes) != ndim or len(set(all_axes)) != ndim:
            raise ValueError(f"axes must name each of the {ndim} axes once, got {tuple(all_axes)!r}.")
        all_scale = tuple(float(s) for s in scale) if scale is not None else (1.0,) * ndim
        if len(all_scale) != ndim:
            raise ValueError(
                f"scale needs one voxel size per axis ({ndim}: {all_axes}), got {tuple(scale)!r}."
            )
        all_units = tuple(None if a in _NON_SPATIAL else unit for a in all_axes)
        all_translation = (0.0,) * ndim
        if isinstance(source, da.Array):
            data = source
        else:
            chunks = getattr(source, "chunks", None)
            data = da.from_array(source, chunks=chunks if isinstance(chunks, tuple) else "auto")
        level_index, n_levels, location = 0, 1, "array"
    if any(not np.isfinite(s) or s <= 0 for s in all_scale):
        raise ValueError(f"every voxel size must be a positive number, got scale {all_scale}.")
    key, fixed = _fix_non_spatial(all_axes, data.shape, {"c": channel, "t": time})
    for name, asked in (("c", channel), ("t", time)):
        if asked is not None and name not in all_axes:
            raise ValueError(f"{_NON_SPATIAL[name]}={asked} was given, but the image has no "
                             f"'{name}' axis (axes {all_axes}).")
    spatial = [i for i, a in enumerate(all_axes) if a not in _NON_SPATIAL]
    if not 2 <= len(spatial) <= 3:
        raise ValueError(
            f"expected 2 or 3 spatial axes, got {[all_axes[i] for i in spatial]} (axes {all_axes})."
        )
    return ImageView(
        data=data[key],
        axes=tuple(all_axes[i] for i in spatial),
        units=tuple(all_units[i] for i in spatial),
        scale=tuple(all_scale[i] for i in spatial),
        translation=tuple(all_translation[i] for i in spatial),
        fixed=fixed,
        level=level_index,
        n_levels=n_levels,
        location=str(location),
    )


def _as_view(source: Any, level: int, **kwargs: Any) -> ImageView:
    return source if isinstance(source, ImageView) else image_view(source, level, **kwargs)


def contrast_limits(
    source: Any,
    level: int = -1,
    percentiles: tuple[float, float] = (0.5, 99.5),
    *,
    max_voxels: int = 2**22,
    **view_options: Any,
) -> tuple[float, float]:
    """Display limits from percentiles of the intensities, computed from a coarse level.

    The coarsest level of a pyramid holds a few thousandths of the voxels and, for
    intensity images averaged on the way down, nearly the same histogram away from its
    extreme tails. If that level still holds more than ``max_voxels``, an evenly strided
    sample of it is used, so the cost stays bounded whatever the image's size.

    Parameters
    ----------
    source
        As for :func:`image_view`: a path or URL, an ``OmeZarrLevel``, an ``ImageView`` or an array.
    level
        The level to sample (default the coarsest, -1).
    percentiles
        Lower and upper percentile, 0 to 100.
    max_voxels
        At most this many voxels are read.
    **view_options
        ``channel``, ``time`` and, for arrays, ``axes``, ``scale``, ``unit``.

    Returns
    -------
    tuple of float
        ``(low, high)``, for ``vmin`` and ``vmax``.

    Raises
    ------
    ValueError
        If the percentiles are not two increasing numbers within 0 to 100.

    Examples
    --------
    >>> import numpy as np
    >>> low, high = contrast_limits(np.arange(100.0).reshape(10, 10), percentiles=(10, 90))
    >>> round(low, 1), round(high, 1)
    (9.9, 89.1)
    """
    try:
        low_p, high_p = (float(p) for p in percentiles)
    except (TypeError, ValueError):
        raise ValueError(f"percentiles must be two numbers, e.g. (1, 99), got {percentiles!r}.") from None
    if not 0 <= low_p < high_p <= 100:
        raise ValueError(f"percentiles must rise within 0 to 100, e.g. (1, 99), got {percentiles!r}.")
    if int(max_voxels) < 1:
        raise ValueError(f"max_voxels must be 1 or more, got {max_voxels!r}.")
    view = _as_view(source, level, **view_options)
    total = math.prod(view.shape)
    step = max(1, math.ceil((total / int(max_voxels)) ** (1 / len(view.shape))))
    sample = np.asarray(view.data[(slice(None, None, step),) * len(view.shape)])
    low, high = np.percentile(sample, [low_p, high_p])
    return (float(low), float(high))


def _check_point(view: ImageView, point: Sequence[int] | dict[str, int] | None) -> tuple[int, ...]:
    shape, axes = view.shape, view.axes
    if point is None:
        return tuple(n // 2 for n in shape)
    if isinstance(point, dict):
        unknown = set(point) - set(axes)
        if unknown:
            raise ValueError(f"point names axes {sorted(unknown)} that the image does not have; "
                             f"its spatial axes are {axes}.")
        values = [point.get(a, n // 2) for a, n in zip(axes, shape)]
    else:
        values = list(point)
        if len(values) != len(shape):
            raise ValueError(f"point needs one voxel index per spatial axis {axes}, got {tuple(point)!r}.")
    out = []
    for name, value, n in zip(axes, values, shape):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"the {name} index must be an integer (a voxel index), got {value!r}.")
        if not 0 <= value < n:
            raise IndexError(
                f"{name}={value} is out of range at level {view.level}: its valid range is "
                f"0 to {n - 1} ({n} voxels along {name})."
            )
        out.append(int(value))
    return tuple(out)


def _draw_grid(ax: Any, view: ImageView, row_axis: int, col_axis: int, color: str) -> None:
    for axis, draw in ((col_axis, ax.axvline), (row_axis, ax.axhline)):
        start, _ = view.edges(axis)
        for k in range(view.chunks[axis], view.shape[axis], view.chunks[axis]):
            draw(start + k * view.scale[axis], color=color, linewidth=0.8, alpha=0.8)


def _panel(ax: Any, view: ImageView, plane: np.ndarray, row_axis: int, col_axis: int,
           cmap: str, clim: tuple[float, float], chunk_grid: bool, grid_color: str) -> Any:
    left, right = view.edges(col_axis)
    top, bottom = view.edges(row_axis)
    image = ax.imshow(plane, cmap=cmap, vmin=clim[0], vmax=clim[1], interpolation="nearest",
                      extent=(left, right, bottom, top))
    ax.set_aspect("equal")
    ax.set_xlabel(view.label(col_axis))
    ax.set_ylabel(view.label(row_axis))
    if chunk_grid:
        _draw_grid(ax, view, row_axis, col_axis, grid_color)
    return image


def _limits(view: ImageView, planes: Sequence[np.ndarray], clim: Any) -> tuple[float, float]:
    if clim is None:
        lo = min(float(np.min(p)) for p in planes)
        hi = max(float(np.max(p)) for p in planes)
        return (lo, hi if hi > lo else lo + 1)
    try:
        lo, hi = (float(v) for v in clim)
    except (TypeError, ValueError):
        raise ValueError(f"clim must be (low, high), e.g. from contrast_limits(), got {clim!r}.") from None
    if not hi > lo:
        raise ValueError(f"clim must have low < high, got {clim!r}.")
    return (lo, hi)


def orthogonal_views(
    source: Any,
    level: int = 0,
    point: Sequence[int] | dict[str, int] | None = None,
    *,
    clim: tuple[float, float] | None = None,
    cmap: str = "gray",
    chunk_grid: bool = False,
    grid_color: str = "tab:orange",
    title: str | None = None,
    **view_options: Any,
) -> Figure:
    """The three orthogonal planes through a point, in physical units, read from the metadata.

    Axis labels carry the units, extents come from the scale and translation of the level, and
    each panel has equal aspect in physical space, so anisotropic voxels are not squashed. Only
    the three planes are read. A 2D image gives one panel.

    Parameters
    ----------
    source
        An OME-Zarr path or URL, an ``OmeZarrLevel``, an :class:`ImageView` or a 2D-5D array.
    level
        The pyramid level to read (paths and URLs).
    point
        Voxel indices of the level where the planes cross: ``(z, y, x)`` or a dict such as
        ``{"z": 10}`` (missing axes take the centre). Default: the centre.
    clim
        Display limits ``(low, high)``, e.g. from :func:`contrast_limits`. Default: the planes' range.
    cmap
        A perceptually uniform colour map.
    chunk_grid
        Draw the storage chunk borders over each plane.
    grid_color
        Colour of the chunk grid lines.
    title
        Figure title.
    **view_options
        ``channel``, ``time`` and, for arrays, ``axes``, ``scale``, ``unit`` (see :func:`image_view`).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    IndexError
        If the point is outside the level (the message gives the valid range).

    Examples
    --------
    >>> import numpy as np
    >>> fig = orthogonal_views(np.zeros((10, 40, 40)), scale=(4, 1, 1), unit="micrometer")
    >>> [ax.get_xlabel() for ax in fig.axes[:3]]
    ['x (micrometer)', 'x (micrometer)', 'y (micrometer)']
    """
    import matplotlib.pyplot as plt

    view = _as_view(source, level, **view_options)
    where = _check_point(view, point)
    if len(view.shape) == 2:
        planes = [(np.asarray(view.data), 0, 1, None)]
    else:
        planes = [
            (np.asarray(view.data[where[0], :, :]), 1, 2, 0),
            (np.asarray(view.data[:, where[1], :]), 0, 2, 1),
            (np.asarray(view.data[:, :, where[2]]), 0, 1, 2),
        ]
    limits = _limits(view, [p[0] for p in planes], clim)
    extents = [view.shape[i] * view.scale[i] for i in range(len(view.shape))][::-1]
    if len(planes) == 3:
        fig, axes = _orthogonal_axes(*extents)
    else:
        fig_height = min(8.0, max(2.5, PAGE_WIDTH * extents[1] / extents[0] + 1.0))
        fig, single = plt.subplots(figsize=(PAGE_WIDTH, fig_height), layout="constrained")
        axes = [single]
    for ax, (plane, row_axis, col_axis, fixed) in zip(axes, planes):
        image = _panel(ax, view, plane, row_axis, col_axis, cmap, limits, chunk_grid, grid_color)
        if fixed is not None:
            position = view.translation[fixed] + where[fixed] * view.scale[fixed]
            unit = view.units[fixed] or ""
            ax.set_title(f"{view.axes[fixed]} = {position:.4g} {_UNIT_SYMBOLS.get(unit, unit)}".rstrip())
    fig.colorbar(image, ax=axes, shrink=0.7, label="intensity")
    if title:
        fig.suptitle(title)
    return fig


def _axis_number(view: ImageView, axis: str | int) -> int:
    if isinstance(axis, str):
        if axis not in view.axes:
            raise ValueError(f"axis {axis!r} is not one of the image's spatial axes {view.axes}.")
        return view.axes.index(axis)
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not 0 <= axis < len(view.axes):
        raise ValueError(f"axis must be a name in {view.axes} or 0 to {len(view.axes) - 1}, got {axis!r}.")
    return int(axis)


def show_plane(
    source: Any,
    level: int = 0,
    index: int | None = None,
    *,
    axis: str | int = "z",
    clim: tuple[float, float] | None = None,
    cmap: str = "gray",
    chunk_grid: bool = True,
    grid_color: str = "tab:orange",
    ax: Any = None,
    **view_options: Any,
) -> Figure:
    """One plane of a 3D image (or a 2D image), with the storage chunk grid drawn over it.

    The grid shows where chunk borders fall: a region that straddles a border is read from
    every chunk it touches.

    Parameters
    ----------
    source
        An OME-Zarr path or URL, an ``OmeZarrLevel``, an :class:`ImageView` or a 2D-5D array.
    level
        The pyramid level to read (paths and URLs).
    index
        The voxel index of the plane along ``axis`` (default the middle). Ignored for 2D images.
    axis
        The axis across which the plane is cut: ``"z"`` shows a y-x plane.
    clim, cmap
        Display limits and a perceptually uniform colour map.
    chunk_grid, grid_color
        Whether to draw the chunk borders, and in which colour.
    ax
        A matplotlib axes to draw into; a new figure by default.
    **view_options
        ``channel``, ``time`` and, for arrays, ``axes``, ``scale``, ``unit``.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    IndexError
        If ``index`` is outside the axis (the message gives the valid range).

    Examples
    --------
    >>> import numpy as np
    >>> fig = show_plane(np.zeros((4, 64, 64)), index=2, scale=(2, 1, 1), unit="micrometer")
    >>> fig.axes[0].get_ylabel()
    'y (micrometer)'
    """
    import matplotlib.pyplot as plt

    view = _as_view(source, level, **view_options)
    if len(view.shape) == 2:
        plane, rows, cols, title = np.asarray(view.data), 0, 1, None
    else:
        number = _axis_number(view, axis)
        if index is None:
            index = view.shape[number] // 2
        where = _check_point(view, {view.axes[number]: index})
        key = tuple(where[number] if i == number else slice(None) for i in range(3))
        plane = np.asarray(view.data[key])
        rows, cols = [i for i in range(3) if i != number]
        position = view.translation[number] + where[number] * view.scale[number]
        title = f"{view.axes[number]} = {position:.4g} {view.units[number] or ''}".rstrip()
    if ax is None:
        _, ax = plt.subplots(figsize=(PAGE_WIDTH, 4.6), layout="constrained")
    image = _panel(ax, view, plane, rows, cols, cmap, _limits(view, [plane], clim), chunk_grid,
                   grid_color)
    if title:
        ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, shrink=0.8, label="intensity")
    return ax.figure


def projection(
    source: Any,
    level: int = 0,
    *,
    axis: str | int = "z",
    kind: str = "max",
    **view_options: Any,
) -> Any:
    """A maximum, mean or minimum intensity projection along one axis, lazily, chunk by chunk.

    Dask reduces each storage chunk to a partial projection and then combines those, so memory
    stays near a few chunks whatever the image's size. Call ``.compute()`` on the result.

    Parameters
    ----------
    source
        An OME-Zarr path or URL, an ``OmeZarrLevel``, an :class:`ImageView` or a 3D-5D array.
    level
        The pyramid level to read (paths and URLs).
    axis
        The axis projected away (a name such as ``"z"``, or its spatial position).
    kind
        ``"max"``, ``"mean"`` or ``"min"``.
    **view_options
        ``channel``, ``time`` and, for arrays, ``axes``, ``scale``, ``unit``.

    Returns
    -------
    dask.array.Array
        The 2D projection, not yet computed (float64 for ``"mean"``).

    Raises
    ------
    ValueError
        If ``kind`` or ``axis`` is not one of the allowed values, or the image is 2D.

    Examples
    --------
    >>> import numpy as np
    >>> volume = np.arange(24).reshape(2, 3, 4)
    >>> projection(volume, axis="z", kind="max").compute()[0].tolist()
    [12, 13, 14, 15]
    """
    if kind not in PROJECTIONS:
        raise ValueError(f"kind must be one of {PROJECTIONS}, got {kind!r}.")
    view = _as_view(source, level, **view_options)
    if len(view.shape) != 3:
        raise ValueError(f"a projection needs a 3D image, got spatial axes {view.axes}: show it with "
                         "show_plane instead.")
    number = _axis_number(view, axis)
    return getattr(view.data, kind)(axis=number)


def show_projection(
    source: Any,
    level: int = 0,
    *,
    axis: str | int = "z",
    kind: str = "max",
    clim: tuple[float, float] | None = None,
    cmap: str = "magma",
    ax: Any = None,
    **view_options: Any,
) -> Figure:
    """Draw a maximum, mean or minimum intensity projection, in physical units.

    Parameters
    ----------
    source
        An OME-Zarr path or URL, an ``OmeZarrLevel``, an :class:`ImageView` or a 3D-5D array.
    level
        The pyramid level to read (paths and URLs).
    axis, kind
        As for :func:`projection`.
    clim, cmap
        Display limits and a perceptually uniform colour map.
    ax
        A matplotlib axes to draw into; a new figure by default.
    **view_options
        ``channel``, ``time`` and, for arrays, ``axes``, ``scale``, ``unit``.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> fig = show_projection(np.ones((4, 6, 8)), scale=(2, 1, 1), unit="micrometer", axis="y")
    >>> fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()
    ('x (micrometer)', 'z (micrometer)')
    """
    import matplotlib.pyplot as plt

    view = _as_view(source, level, **view_options)
    number = _axis_number(view, axis) if len(view.shape) == 3 else 0
    image = np.asarray(projection(view, axis=number, kind=kind).compute())
    rows, cols = [i for i in range(3) if i != number]
    if ax is None:
        _, ax = plt.subplots(figsize=(PAGE_WIDTH, 4.6), layout="constrained")
    drawn = _panel(ax, view, image, rows, cols, cmap, _limits(view, [image], clim), False, "")
    ax.set_title(f"{kind} along {view.axes[number]}")
    ax.figure.colorbar(drawn, ax=ax, shrink=0.8, label=f"{kind} intensity")
    return ax.figure


def show_montage(
    source: Any,
    level: int = -1,
    n: int = 12,
    *,
    axis: str | int = "z",
    columns: int = 4,
    clim: tuple[float, float] | None = None,
    cmap: str = "gray",
    **view_options: Any,
) -> Figure:
    """Evenly spaced planes of a 3D image in a grid: a still stand-in for a slider.

    Parameters
    ----------
    source
        An OME-Zarr path or URL, an ``OmeZarrLevel``, an :class:`ImageView` or a 3D-5D array.
    level
        The pyramid level to read (default the coarsest: a montage is an overview).
    n
        How many planes (at most the number along ``axis``).
    axis
        The axis the planes are cut across.
    columns
        Panels per row.
    clim, cmap
        Display limits (default from :func:`contrast_limits`) and a perceptually uniform colour map.
    **view_options
        ``channel``, ``time`` and, for arrays, ``axes``, ``scale``, ``unit``.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> fig = show_montage(np.random.default_rng(0).random((8, 5, 5)), n=4, columns=2)
    >>> len(fig.axes)
    5
    """
    import matplotlib.pyplot as plt

    view = _as_view(source, level, **view_options)
    if len(view.shape) != 3:
        raise ValueError(f"a montage needs a 3D image, got spatial axes {view.axes}.")
    number = _axis_number(view, axis)
    length = view.shape[number]
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= length:
        raise ValueError(f"n must be 1 to {length} (the planes along {view.axes[number]}), got {n!r}.")
    if isinstance(columns, bool) or not isinstance(columns, (int, np.integer)) or columns < 1:
        raise ValueError(f"columns must be a positive integer, got {columns!r}.")
    limits = clim if clim is not None else contrast_limits(view)
    indices = np.linspace(0, length - 1, int(n)).round().astype(int)
    rows_n = math.ceil(n / columns)
    cols_n = min(columns, n)
    # The columns share the page width, and the panels share their axes: tick labels and axis
    # labels only once along the edges, so that narrow panels keep legible text.
    side = (PAGE_WIDTH - 1.2) / max(cols_n, 2)
    fig, panels = plt.subplots(rows_n, cols_n, figsize=(side * cols_n + 1.2, side * rows_n + 0.8),
                               layout="constrained", squeeze=False, sharex=True, sharey=True)
    rows, cols = [i for i in range(3) if i != number]
    for ax, index in zip(panels.flat, indices):
        key = tuple(int(index) if i == number else slice(None) for i in range(3))
        image = _panel(ax, view, np.asarray(view.data[key]), rows, cols, cmap, limits, False, "")
        position = view.translation[number] + index * view.scale[number]
        unit = view.units[number] or ""
        ax.set_title(f"{view.axes[number]} = {position:.4g} {_UNIT_SYMBOLS.get(unit, unit)}".rstrip())
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.label_outer()
    for ax in list(panels.flat)[n:]:
        ax.set_axis_off()
    for ax in list(panels.flat)[n - cols_n:n]:  # the lowest panel of each column shows its x ticks
        ax.xaxis.set_tick_params(labelbottom=True)
    fig.supxlabel(view.label(cols))
    fig.supylabel(view.label(rows))
    fig.colorbar(image, ax=list(panels.flat), shrink=0.6, label="intensity")
    return fig
