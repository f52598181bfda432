"""Write OME-Zarr multiscale images safely, from arrays of any size.

:func:`write_ome_zarr` is the one function most chapters need. It does what
ngff-zarr 0.50's ``to_multiscales`` + ``to_ngff_zarr`` do, without their traps:

- units are checked and written as the UDUNITS-2 names the specification wants
  (a plain string ``"um"`` is silently dropped by ngff-zarr);
- the pyramid goes down until a level fits in one chunk, and it keeps voxels
  near-isotropic: a coarse z axis is not halved until x and y have caught up;
- memory stays bounded whatever the input size: each level is written chunk by
  chunk, then read back to make the next one;
- it never deletes what it did not write: a non-empty folder that is not an
  OME-Zarr image written by this package is refused, and ``overwrite=True``
  replaces only such an image, leaving any other file in the folder alone;
- a write that fails leaves no half-written image behind: the image is built in
  a hidden sibling folder and moved into place only once it is complete.

The metadata it writes is checked with ngff-zarr's JSON schemas and opens with
ome-zarr-models; see :mod:`data_helpers.validation` for checking any image.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import dask
import dask.array as da
import numpy as np
import zarr
from dask.callbacks import Callback

from data_helpers.chunking import format_bytes
from data_helpers.units import normalize_unit

__all__ = [
    "DEFAULT_CHUNK",
    "DEFAULT_CLEVEL",
    "METHODS",
    "OmeZarrError",
    "OmeZarrImage",
    "plan_pyramid",
    "read_ome_metadata",
    "write_ome_zarr",
]

#: Default chunk length along each space axis. 128³ voxels of 16-bit data is 4 MiB.
DEFAULT_CHUNK = 128
#: Default Blosc level (Zstandard level 5 inside Blosc): on noisy 16-bit images, level 5 (Zstandard 9) writes
#: about 3 times slower for files about 6 % smaller (measured in the chunks-and-compression chapter).
DEFAULT_CLEVEL = 3
#: Downsampling methods: how 2 (or 2×2, 2×2×2) voxels become one.
METHODS = ("mean", "nearest", "max", "mode")
_DEFAULT_METHOD = {"intensity": "mean", "labels": "mode"}
_AXIS_ORDER = ("t", "c", "z", "y", "x")
_DEFAULT_DIMS = {2: ("y", "x"), 3: ("z", "y", "x"), 4: ("c", "z", "y", "x"), 5: ("t", "c", "z", "y", "x")}
_MARKER_KEY = "data_helpers"  # an extra attribute: lets overwrite=True know that this package wrote the image
_PROGRESS_MIN_BYTES = 256 * 2**20
_STAGING_BUDGET = 128 * 2**20  # bytes of input one block may need before the input is copied into better chunks


class OmeZarrError(ValueError):
    """The input or the target of an OME-Zarr write is not valid; the message says how to fix it."""


@dataclass(frozen=True)
class OmeZarrImage:
    """What :func:`write_ome_zarr` wrote: where, in which version, and each level's shape and scale.

    Attributes
    ----------
    path
        The image's folder.
    version
        ``"0.4"`` (Zarr v2) or ``"0.5"`` (Zarr v3).
    dims
        Axis names, e.g. ``("z", "y", "x")``.
    units
        Unit of each axis (``None`` for a channel axis).
    shapes, scales, translations
        One entry per level, finest first.
    chunks
        The chunk shape of level 0 (lower levels use the same, clipped to their shape).
    dtype
        The data type.
    method
        The downsampling method.
    """

    path: Path
    version: str
    dims: tuple[str, ...]
    units: tuple[str | None, ...]
    shapes: tuple[tuple[int, ...], ...]
    scales: tuple[tuple[float, ...], ...]
    translations: tuple[tuple[float, ...], ...]
    chunks: tuple[int, ...]
    dtype: np.dtype
    method: str
    nbytes_stored: int = field(default=0)

    @property
    def n_levels(self) -> int:
        return len(self.shapes)

    def __str__(self) -> str:
        lines = [f"OME-Zarr {self.version} image at {self.path}", f"  axes {', '.join(self.dims)}; {self.dtype}; chunks {self.chunks}; {self.method} pyramid"]
        for i, (shape, scale) in enumerate(zip(self.shapes, self.scales)):
            scale_text = " x ".join(f"{s:g}" for s in scale)
            lines.append(f"  level {i}: {' x '.join(map(str, shape))} voxels, scale {scale_text}")
        lines.append(f"  {format_bytes(self.nbytes_stored)} on disk")
        return "\n".join(lines)


# -- input checks ----------------------------------------------------------------------------------


def _check_dims(dims: Sequence[str] | None, ndim: int) -> tuple[str, ...]:
    if ndim not in _DEFAULT_DIMS:
        raise OmeZarrError(f"OME-Zarr images here have 2 to 5 dimensions (t, c, z, y, x); this array has {ndim}.")
    if dims is None:
        return _DEFAULT_DIMS[ndim]
    if isinstance(dims, str):
        dims = tuple(dims)
    dims = tuple(dims)
    if len(dims) != ndim:
        raise OmeZarrError(
            f"dims {dims} names {len(dims)} axes but the array has {ndim} dimensions; "
            f"give one name per dimension, e.g. dims={_DEFAULT_DIMS[ndim]}."
        )
    unknown = [d for d in dims if d not in _AXIS_ORDER]
    if unknown:
        raise OmeZarrError(f"unknown axis names {unknown}; use names from {_AXIS_ORDER}.")
    if len(set(dims)) != len(dims):
        raise OmeZarrError(f"dims {dims} repeats an axis name; each axis needs its own name.")
    if not any(d in ("z", "y", "x") for d in dims) or sum(d in ("y", "x") for d in dims) < 2:
        raise OmeZarrError(f"dims {dims} needs at least the axes y and x.")
    ordered = tuple(d for d in _AXIS_ORDER if d in dims)
    if dims != ordered:
        order = [dims.index(d) for d in ordered]
        raise OmeZarrError(
            f"OME-Zarr requires the axes in the order t, c, z, y, x; dims {dims} are not. "
            f"Reorder the array first, e.g. data = data.transpose({', '.join(map(str, order))}) "
            f"(np.transpose for numpy), then pass dims={ordered}."
        )
    return dims


def _per_axis(name: str, value, spatial: Sequence[str]) -> tuple[float, ...]:
    if isinstance(value, (int, float, np.integer, np.floating)):
        value = (float(value),) * len(spatial)
    try:
        value = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise OmeZarrError(f"{name} must be a number or one number per space axis {tuple(spatial)}, got {value!r}.") from None
    if len(value) != len(spatial):
        raise OmeZarrError(
            f"{name} has {len(value)} values but the image has {len(spatial)} space axes {tuple(spatial)}; "
            "give one value per space axis, in the same order."
        )
    return value


def _as_dask(data: Any, chunks: tuple[int, ...]) -> da.Array:
    if isinstance(data, da.Array):
        arr = data
    elif isinstance(data, zarr.Array):
        arr = da.from_zarr(data)
    elif isinstance(data, np.ndarray) or hasattr(data, "__array__") and hasattr(data, "shape") and hasattr(data, "dtype"):
        arr = da.from_array(data, chunks=chunks)
    else:
        raise OmeZarrError(
            f"data must be a numpy, dask or zarr array (or array-like with shape and dtype), got {type(data).__name__}."
        )
    if arr.dtype.kind not in "biuf":
        raise OmeZarrError(f"data has dtype {arr.dtype}; OME-Zarr images need a numeric (bool, int or float) dtype.")
    if 0 in arr.shape:
        raise OmeZarrError(f"data has an empty axis (shape {arr.shape}); there is nothing to write.")
    return arr


def _staging_chunks(in_chunks: tuple[int, ...], block: tuple[int, ...], shape: tuple[int, ...], itemsize: int,
                    budget: int) -> tuple[int, ...] | None:
    """Chunks of an intermediate copy that keeps memory bounded, or None if the input's chunks are fine as they are.

    Assembling one block from input chunks that are thin along an axis (planes, for a TIFF stack) and wide along
    the others needs every input chunk that the block touches, whole: for 2048 x 2048 planes and blocks 256 deep,
    2 GiB. Then the input is first copied, a few planes at a time, into chunks that are thin where the input is
    thin and block-sized where it is wide; blocks are read from that copy.
    """
    need = itemsize
    for i, b, n in zip(in_chunks, block, shape):
        need *= min(n, -(-b // i) * i if i < b else i)
    if need <= budget:
        return None
    inter = [min(b, n) if i >= b else i for i, b, n in zip(in_chunks, block, shape)]
    thin = [a for a, (i, b) in enumerate(zip(in_chunks, block)) if i < b]
    # grow the thin axes while a copy task (thin axes at their copy depth, wide axes whole input chunks) stays in budget
    wide_bytes = itemsize
    for a, (i, n) in enumerate(zip(in_chunks, shape)):
        if a not in thin:
            wide_bytes *= min(n, -(-i // inter[a]) * inter[a])
    for a in thin:
        while inter[a] * 2 <= min(block[a], shape[a]) and wide_bytes * math.prod(inter[t] for t in thin) * 2 <= budget // 2:
            inter[a] *= 2
    return tuple(inter)


# -- the pyramid ---------------------------------------------------------------------------------------


def plan_pyramid(
    shape: Sequence[int],
    dims: Sequence[str],
    voxel_size: Sequence[float],
    chunks: Sequence[int],
    n_levels: int | None = None,
) -> list[tuple[int, ...]]:
    """Plan a pyramid: the downsampling factor of each level along each axis, relative to level 0.

    At each step every space axis is halved, except an axis whose voxels are
    already at least twice as long as the finest space axis: that one waits
    until the others catch up, so coarse z stays coarse z rather than becoming
    absurdly flat voxels. Axes t and c are never downsampled. Without
    ``n_levels``, levels are added until one fits in a single chunk.

    Parameters
    ----------
    shape
        Shape of level 0.
    dims
        Axis names, as for :func:`write_ome_zarr`.
    voxel_size
        Voxel size along each space axis.
    chunks
        Chunk shape, one length per axis.
    n_levels
        Number of levels including level 0, or ``None`` for "until one chunk".

    Returns
    -------
    list of tuple of int
        One tuple of factors per level, the first all ones.

    Raises
    ------
    OmeZarrError
        If the lengths of ``shape``, ``dims``, ``chunks`` and ``voxel_size`` do
        not fit together, or ``n_levels`` is below 1 or asks for more levels than
        the shape allows.

    Examples
    --------
    >>> from data_helpers import plan_pyramid
    >>> plan_pyramid((120, 120, 139), "zyx", (1.27, 1.27, 1.27), (64, 64, 64))
    [(1, 1, 1), (2, 2, 2), (4, 4, 4)]
    >>> plan_pyramid((100, 1024, 1024), "zyx", (4.0, 1.0, 1.0), (64, 128, 128))
    [(1, 1, 1), (1, 2, 2), (1, 4, 4), (2, 8, 8)]
    """
    dims = tuple(dims)
    shape = tuple(int(n) for n in shape)
    chunks = tuple(int(c) for c in chunks)
    if not len(shape) == len(dims) == len(chunks):
        raise OmeZarrError(
            f"shape {shape}, dims {dims} and chunks {chunks} must have one entry per axis each; "
            f"got {len(shape)}, {len(dims)} and {len(chunks)}."
        )
    spatial = [i for i, d in enumerate(dims) if d in ("z", "y", "x")]
    voxel_size = tuple(float(v) for v in voxel_size)
    if len(voxel_size) != len(spatial) or not all(v > 0 for v in voxel_size):
        raise OmeZarrError(f"voxel_size needs one positive value per space axis {[dims[i] for i in spatial]}, got {voxel_size}.")
    if any(n < 1 for n in shape) or any(c < 1 for c in chunks):
        raise OmeZarrError(f"shape {shape} and chunks {chunks} must be positive.")
    spacing = dict(zip(spatial, voxel_size))
    factors = [(1,) * len(shape)]
    limit = n_levels if n_levels is not None else 64
    if n_levels is not None and (not isinstance(n_levels, (int, np.integer)) or n_levels < 1):
        raise OmeZarrError(f"n_levels must be a whole number of levels, 1 or more, got {n_levels!r}.")
    while len(factors) < limit:
        current = factors[-1]
        level_shape = [n // f for n, f in zip(shape, current)]
        fits = all(level_shape[i] <= chunks[i] for i in spatial)
        if n_levels is None and fits:
            break
        size = {i: spacing[i] * current[i] for i in spatial}
        finest = min(size[i] for i in spatial if level_shape[i] >= 2) if any(level_shape[i] >= 2 for i in spatial) else None
        if finest is None:
            if n_levels is not None:
                raise OmeZarrError(f"shape {tuple(shape)} allows only {len(factors)} levels, not n_levels={n_levels}.")
            break
        step = [2 if i in spatial and level_shape[i] >= 2 and size[i] < 2 * finest * (1 - 1e-9) else 1 for i in range(len(shape))]
        factors.append(tuple(f * s for f, s in zip(current, step)))
    return factors


def _block_mean(block: np.ndarray, step: tuple[int, ...]) -> np.ndarray:
    """Mean of each block of voxels, by adding strided views pairwise: much faster than a reshaped mean."""
    small_int = block.dtype.kind in "biu" and block.dtype.itemsize <= 2
    acc_type = np.int64 if block.dtype.kind == "i" else np.uint32 if small_int else np.float64
    acc = block
    for axis, s in enumerate(step):
        if s == 1:
            continue
        parts = [acc[(slice(None),) * axis + (slice(k, None, s),)] for k in range(s)]
        total = parts[0].astype(acc_type)
        for part in parts[1:]:
            total += part
        acc = total
    count = math.prod(step)
    if block.dtype.kind == "b":
        return acc * 2 >= count
    if block.dtype.kind in "iu":
        # round half up, in integers: (sum + count // 2) // count
        return ((acc + count // 2) // count).astype(block.dtype)
    return (acc / count).astype(block.dtype)


def _copy_in_slabs(source: da.Array, target: zarr.Array, show: bool) -> None:
    """Store ``source`` into ``target`` a few blocks at a time along axis 0.

    One ``da.store`` of the whole array lets dask read input far ahead of what it
    has written, so memory grows with the input; slabs of as many blocks as there
    are threads keep it at a few blocks.
    """
    step = source.chunks[0][0] * max(1, os.cpu_count() or 1)
    starts = list(range(0, source.shape[0], step))
    progress = None
    if show:
        from rich.progress import Progress

        progress = Progress()
        task = progress.add_task("copying the input into chunks that fit in memory", total=len(starts))
        progress.start()
    try:
        with dask.config.set(scheduler="threads"):
            for start in starts:
                stop = min(start + step, source.shape[0])
                region = (slice(start, stop),) + (slice(None),) * (source.ndim - 1)
                da.store(source[region], target, regions=region, lock=False)
                if progress is not None:
                    progress.advance(task)
    finally:
        if progress is not None:
            progress.stop()


def _downsample_and_store(block: np.ndarray, step, method: str, also_write, block_info=None) -> np.ndarray:
    if also_write is not None:
        also_write[tuple(slice(lo, hi) for lo, hi in block_info[0]["array-location"])] = block
    return _downsample_block(block, step, method)


def _downsample_block(block: np.ndarray, step: tuple[int, ...], method: str) -> np.ndarray:
    trimmed = block[tuple(slice(0, (n // s) * s) for n, s in zip(block.shape, step))]
    if all(s == 1 for s in step):
        return trimmed
    if method == "nearest":
        return trimmed[tuple(slice(None, None, s) for s in step)].copy()
    new_shape = []
    for n, s in zip(trimmed.shape, step):
        new_shape += [n // s, s]
    blocks = trimmed.reshape(new_shape)
    axes = tuple(range(1, len(new_shape), 2))
    if method == "mean":
        return _block_mean(trimmed, step)
    if method == "max":
        return blocks.max(axis=axes)
    # mode: the most frequent value among the voxels of each block; ties go to the smallest value
    order = [i for i in range(len(new_shape)) if i % 2 == 0] + list(axes)
    cand = blocks.transpose(order).reshape(tuple(n // s for n, s in zip(trimmed.shape, step)) + (-1,))
    cand = np.sort(cand, axis=-1)
    k = cand.shape[-1]
    best = cand[..., 0].copy()
    best_count = np.zeros(best.shape, np.int32)
    run = np.ones(best.shape, np.int32)
    for j in range(1, k + 1):
        if j < k:
            same = cand[..., j] == cand[..., j - 1]
        else:
            same = np.zeros(best.shape, bool)
        ended = ~same
        better = ended & (run > best_count)
        best = np.where(better, cand[..., j - 1], best)
        best_count = np.where(better, run, best_count)
        run = np.where(same, run + 1, 1)
    return best


# -- writing -------------------------------------------------------------------------------------------


class _Progress(Callback):
    """A rich progress bar over the tasks of one dask computation."""

    def __init__(self, description: str):
        super().__init__()
        self.description = description

    def _start_state(self, dsk, state):
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
        total = sum(len(state[k]) for k in ("ready", "waiting", "running", "finished"))
        self.task = self.progress.add_task(self.description, total=total)
        self.progress.start()

    def _posttask(self, key, result, dsk, state, worker_id):
        self.progress.advance(self.task)

    def _finish(self, dsk, state, errored):
        self.progress.stop()


def _is_own_image(path: Path) -> bool:
    try:
        attrs = _read_attrs(path)
    except (ValueError, OSError):
        return False
    return attrs is not None and _MARKER_KEY in attrs and ("ome" in attrs or "multiscales" in attrs)


def _own_entries(path: Path) -> list[Path]:
    """The entries of an image folder that this package wrote: metadata files and level arrays."""
    attrs = _read_attrs(path)
    written = attrs[_MARKER_KEY].get("levels", [])
    names = {"zarr.json", ".zattrs", ".zgroup", ".zmetadata"} | {str(p) for p in written}
    return [path / n for n in sorted(names) if (path / n).exists()]


def _read_attrs(path: Path) -> dict | None:
    """The attributes of the Zarr group in ``path`` (v3 or v2), or None if it holds no group metadata."""
    if (path / "zarr.json").is_file():
        return json.loads((path / "zarr.json").read_text()).get("attributes", {})
    if (path / ".zattrs").is_file():
        return json.loads((path / ".zattrs").read_text())
    if (path / ".zgroup").is_file():
        return {}
    return None


def _check_target(path: Path, overwrite: bool) -> None:
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} exists and is a file, not a folder; choose another path for the image.")
    if not path.exists() or not any(path.iterdir()):
        return
    if not _is_own_image(path):
        raise FileExistsError(
            f"{path} is not empty and is not an OME-Zarr image written by data_helpers, so nothing was written "
            "and nothing was deleted. Write to a new path, or move its contents away yourself if you are sure."
        )
    if not overwrite:
        raise FileExistsError(f"{path} already holds an OME-Zarr image; pass overwrite=True to replace it, or use a new path.")


def _multiscale_metadata(
    name: str, dims, units, scales, translations, method: str, version: str, kind: str
) -> dict:
    axes = []
    for d, u in zip(dims, units):
        axis = {"name": d, "type": "time" if d == "t" else "channel" if d == "c" else "space"}
        if u is not None:
            axis["unit"] = u
        axes.append(axis)
    datasets = [
        {
            "path": str(i),
            "coordinateTransformations": [
                {"type": "scale", "scale": list(scale)},
                {"type": "translation", "translation": list(tr)},
            ],
        }
        for i, (scale, tr) in enumerate(zip(scales, translations))
    ]
    multiscale = {"name": name, "axes": axes, "datasets": datasets, "type": method,
                  "metadata": {"method": f"data_helpers.write_ome_zarr ({method} of each block of voxels)",
                               "kind": kind}}
    if version == "0.4":
        multiscale = {"version": "0.4", **multiscale}
    return multiscale


def write_ome_zarr(
    data: Any,
    path: str | os.PathLike,
    *,
    voxel_size: float | Sequence[float],
    unit: str = "micrometer",
    dims: Sequence[str] | None = None,
    name: str | None = None,
    kind: Literal["intensity", "labels"] = "intensity",
    method: str | None = None,
    chunks: int | Sequence[int] | None = None,
    n_levels: int | None = None,
    version: Literal["0.4", "0.5"] = "0.5",
    clevel: int = DEFAULT_CLEVEL,
    translation: float | Sequence[float] | None = None,
    time_unit: str = "second",
    time_step: float = 1.0,
    overwrite: bool = False,
    progress: bool | None = None,
) -> OmeZarrImage:
    """Write an array as an OME-Zarr multiscale image: checked metadata, a full pyramid, bounded memory.

    Parameters
    ----------
    data
        A numpy, dask or zarr array with 2 to 5 dimensions. It is read chunk by
        chunk, so it may be far larger than memory (dask or zarr).
    path
        The image folder to create, e.g. ``"data/heart.ome.zarr"``. It must not
        exist, be empty, or hold an image written by this function.
    voxel_size
        Physical size of a voxel along each space axis (z, y, x order), or one
        number for all. Required: an image without it cannot be measured.
    unit
        Unit of ``voxel_size``. Common spellings (``"um"``, ``"µm"``,
        ``"micron"``) are written as the UDUNITS-2 name (``"micrometer"``);
        an unknown unit raises :class:`~data_helpers.units.UnitError`.
    dims
        Axis names in order, from ``t, c, z, y, x``. Default by dimensions:
        ``yx``, ``zyx``, ``czyx``, ``tczyx``.
    name
        Name stored in the metadata. Default: the folder's name without ``.ome.zarr``.
    kind
        ``"intensity"`` (an image of measured values) or ``"labels"`` (a
        segmentation: integers that name regions). It sets the default ``method``.
    method
        How each block of 2 (or 2×2, 2×2×2) voxels becomes one: ``"mean"``
        (default for intensity), ``"mode"`` (the most frequent value; default for
        labels, which must never be averaged), ``"nearest"`` or ``"max"``.
    chunks
        Chunk length per axis, or one integer for all space axes. Default
        128 for space axes (4 MiB at 16 bit) and 1 for t and c; clipped to the shape.
    n_levels
        Number of pyramid levels including full resolution. Default: halve
        until a level fits in one chunk (see :func:`plan_pyramid`).
    version
        ``"0.5"`` (default) writes OME-Zarr 0.5 on Zarr v3: the current release,
        what ngff-zarr and zarr-python 3 write by default, and the only one
        that allows sharding. Use ``"0.4"`` (Zarr v2) for tools that do not read
        Zarr v3 yet.
    clevel
        Blosc compression level, 1 to 9, for blosc-zstd with byte shuffle.
        Blosc runs Zstandard at level ``2 * clevel - 1``, so the default 3 is
        Zstandard level 5.
    translation
        Physical position of the first voxel's centre, per space axis. Default 0.
        Lower levels are shifted by half a voxel so that they stay aligned.
    time_unit, time_step
        Unit and interval of a ``t`` axis, if there is one.
    overwrite
        Replace an image that this function wrote earlier at ``path``. Other
        files in the folder are left alone. Never deletes anything else.
    progress
        Show a progress bar. Default: only for inputs of 256 MiB or more.

    Returns
    -------
    OmeZarrImage
        The path, version, axes and each level's shape and scale; print it for a summary.

    Raises
    ------
    OmeZarrError
        If dims, voxel size, chunks, method or version are not valid.
    UnitError
        If a unit is unknown (with a suggestion).
    FileExistsError
        If ``path`` is not empty and not an image this function wrote, or holds
        one and ``overwrite`` is ``False``. Nothing is written or deleted then.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from data_helpers import write_ome_zarr
    >>> folder = tempfile.mkdtemp()
    >>> image = write_ome_zarr(np.zeros((40, 300, 300), np.uint16), f"{folder}/a.ome.zarr",
    ...                        voxel_size=(2.0, 0.5, 0.5), unit="um", chunks=64)
    >>> print(image)  # doctest: +ELLIPSIS
    OME-Zarr 0.5 image at .../a.ome.zarr
      axes z, y, x; uint16; chunks (40, 64, 64); mean pyramid
      level 0: 40 x 300 x 300 voxels, scale 2 x 0.5 x 0.5
      level 1: 40 x 150 x 150 voxels, scale 2 x 1 x 1
      level 2: 40 x 75 x 75 voxels, scale 2 x 2 x 2
      level 3: 20 x 37 x 37 voxels, scale 4 x 4 x 4
      ... KiB on disk
    >>> image.units
    ('micrometer', 'micrometer', 'micrometer')
    """
    target = Path(path)
    if version not in ("0.4", "0.5"):
        raise OmeZarrError(f"version must be '0.4' (Zarr v2) or '0.5' (Zarr v3), got {version!r}.")
    if kind not in _DEFAULT_METHOD:
        raise OmeZarrError(f"kind must be 'intensity' or 'labels', got {kind!r}.")
    method = method or _DEFAULT_METHOD[kind]
    if method not in METHODS:
        raise OmeZarrError(f"method must be one of {METHODS}, got {method!r}.")
    if kind == "labels" and method == "mean":
        raise OmeZarrError("labels must not be averaged (the mean of labels 1 and 3 is a label 2 that is not there); use method='mode' or 'nearest'.")
    if not isinstance(clevel, (int, np.integer)) or not 1 <= clevel <= 9:
        raise OmeZarrError(f"clevel must be an integer from 1 to 9, got {clevel!r}.")
    ndim = len(getattr(data, "shape", ()))
    dims = _check_dims(dims, ndim)
    spatial = [d for d in dims if d in ("z", "y", "x")]
    voxel = _per_axis("voxel_size", voxel_size, spatial)
    if not all(v > 0 and math.isfinite(v) for v in voxel):
        raise OmeZarrError(f"voxel_size must be positive and finite, got {voxel}.")
    origin = _per_axis("translation", 0.0 if translation is None else translation, spatial)
    space_unit = normalize_unit(unit, "space")
    t_unit = normalize_unit(time_unit, "time") if "t" in dims else None
    if kind == "labels" and getattr(data, "dtype", np.dtype("f")).kind not in "biu":
        raise OmeZarrError(f"labels need an integer dtype, got {data.dtype}; convert with data.astype(np.uint32).")

    shape = tuple(int(n) for n in data.shape)
    if chunks is None:
        chunks = DEFAULT_CHUNK
    if isinstance(chunks, (int, np.integer)):
        chunk_shape = tuple(int(chunks) if d in spatial else 1 for d in dims)
    else:
        chunk_shape = tuple(int(c) for c in chunks)
        if len(chunk_shape) != ndim:
            raise OmeZarrError(f"chunks {chunk_shape} has {len(chunk_shape)} lengths but the array has {ndim} dimensions {dims}.")
    if any(c < 1 for c in chunk_shape):
        raise OmeZarrError(f"chunk lengths must be at least 1, got {chunk_shape}.")
    chunk_shape = tuple(min(c, n) for c, n in zip(chunk_shape, shape))
    name = name or target.name.removesuffix(".zarr").removesuffix(".ome")

    _check_target(target, overwrite)
    source = _as_dask(data, chunk_shape)

    full_voxel = [time_step if d == "t" else 1.0 if d == "c" else voxel[spatial.index(d)] for d in dims]
    factors = plan_pyramid(shape, dims, voxel, chunk_shape, n_levels)
    scales = [tuple(v * f for v, f in zip(full_voxel, fac)) for fac in factors]
    full_origin = [0.0 if d in ("t", "c") else origin[spatial.index(d)] for d in dims]
    translations = [tuple(o + (s - v) / 2 for o, s, v in zip(full_origin, scale, full_voxel)) for scale in scales]
    units = tuple(t_unit if d == "t" else None if d == "c" else space_unit for d in dims)

    zarr_format = 2 if version == "0.4" else 3
    if zarr_format == 3:
        compressors = zarr.codecs.BloscCodec(cname="zstd", clevel=int(clevel), shuffle="shuffle")
        extra = {"dimension_names": dims}
    else:
        from numcodecs import Blosc

        compressors = Blosc(cname="zstd", clevel=int(clevel), shuffle=Blosc.SHUFFLE)
        extra = {"chunk_key_encoding": {"name": "v2", "separator": "/"}}
    show = progress if progress is not None else source.nbytes >= _PROGRESS_MIN_BYTES

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        group = zarr.create_group(staging, zarr_format=zarr_format)
        level_shapes = [shape]
        for prev, fac in zip(factors, factors[1:]):
            level_shapes.append(tuple(n // (f // p) for n, f, p in zip(level_shapes[-1], fac, prev)))
        arrays = [
            group.create_array(
                str(level),
                shape=level_shape,
                chunks=tuple(min(c, n) for c, n in zip(chunk_shape, level_shape)),
                dtype=source.dtype,
                compressors=compressors,
                fill_value=0,
                config={"write_empty_chunks": True},
                **extra,
            )
            for level, level_shape in enumerate(level_shapes)
        ]
        first_step = tuple(f // p for f, p in zip(factors[1], factors[0])) if len(factors) > 1 else (1,) * ndim
        first_block = tuple(min(c * st, n) for c, st, n in zip(chunk_shape, first_step, shape))
        inter = _staging_chunks(tuple(source.chunksize), first_block, shape, source.dtype.itemsize, _STAGING_BUDGET)
        if inter is not None:
            copy_chunks = tuple(c if c < b else min(n, -(-i // c) * c)
                                for c, i, b, n in zip(inter, source.chunksize, first_block, shape))
            copy = zarr.create_array(staging / "_rechunk.zarr", shape=shape, dtype=source.dtype, chunks=inter,
                                     compressors=zarr.codecs.BloscCodec(cname="lz4", clevel=1, shuffle="shuffle"),
                                     config={"write_empty_chunks": True})
            _copy_in_slabs(source.rechunk(copy_chunks), copy, show)
            source = da.from_zarr(copy)
        stages = [(0, source.rechunk(chunk_shape))] if len(factors) == 1 else []
        for level in range(1, len(factors)):
            # Level 1 is made from the input blocks while they are in memory, which also writes level 0;
            # each later level is read back from the one just written, a block of step x chunk at a time.
            step = tuple(f // p for f, p in zip(factors[level], factors[level - 1]))
            above = level_shapes[level - 1]
            block = tuple(min(c * st, n) for c, st, n in zip(chunk_shape, step, above))
            src = source.rechunk(block) if level == 1 else da.from_zarr(arrays[level - 1], chunks=block)
            out_chunks = tuple(tuple(b // st for b in bc) for bc, st in zip(src.chunks, step))
            also_write = arrays[0] if level == 1 else None
            stages.append((level, src.map_blocks(_downsample_and_store, step, method, also_write,
                                                 dtype=src.dtype, chunks=out_chunks)))
        for level, result in stages:
            label = "levels 0 and 1" if level == 1 else f"level {level}"
            bar = _Progress(f"{label} of {len(factors) - 1}: {' x '.join(map(str, level_shapes[level]))}")
            with dask.config.set(scheduler="threads"), (bar if show else contextlib.nullcontext()):
                da.store(result, arrays[level], lock=False)
        multiscale = _multiscale_metadata(name, dims, units, scales, translations, method, version, kind)
        marker = {"version": _package_version(), "levels": [str(i) for i in range(len(factors))]}
        if zarr_format == 3:
            group.attrs.put({"ome": {"version": "0.5", "multiscales": [multiscale]}, _MARKER_KEY: marker})
        else:
            group.attrs.put({"multiscales": [multiscale], _MARKER_KEY: marker})
        if (staging / "_rechunk.zarr").exists():
            shutil.rmtree(staging / "_rechunk.zarr")  # the intermediate copy made above, inside our own staging folder
        _move_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # only the staging folder this call created
        raise
    stored = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    return OmeZarrImage(
        path=target,
        version=version,
        dims=dims,
        units=units,
        shapes=tuple(level_shapes),
        scales=tuple(scales),
        translations=tuple(translations),
        chunks=chunk_shape,
        dtype=np.dtype(source.dtype),
        method=method,
        nbytes_stored=stored,
    )


def _package_version() -> str:
    from data_helpers import __version__

    return __version__


def _move_into_place(staging: Path, target: Path) -> None:
    if not target.exists():
        staging.rename(target)
        return
    # target is empty or holds an image this package wrote (checked before writing): swap our entries only
    if any(target.iterdir()):
        if not _is_own_image(target):  # changed since the check: refuse rather than delete
            raise FileExistsError(f"{target} changed during the write and is no longer an image written by data_helpers.")
        trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        for entry in _own_entries(target):
            entry.rename(trash / entry.name)
        for entry in staging.iterdir():
            entry.rename(target / entry.name)
        shutil.rmtree(trash)
        staging.rmdir()
    else:
        target.rmdir()
        staging.rename(target)


def read_ome_metadata(path: str | os.PathLike) -> dict:
    """Return the OME-Zarr metadata of an image folder, for version 0.4 or 0.5 alike.

    Parameters
    ----------
    path
        An OME-Zarr image folder, or its ``http(s)://`` or ``s3://`` URL.

    Returns
    -------
    dict
        ``{"version": ..., "multiscales": [...]}`` (plus ``omero`` and other OME keys if present).

    Raises
    ------
    FileNotFoundError
        If ``path`` holds no Zarr group metadata.
    OmeZarrError
        If the group has no OME-Zarr multiscales metadata.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from data_helpers import read_ome_metadata, write_ome_zarr
    >>> folder = tempfile.mkdtemp()
    >>> _ = write_ome_zarr(np.ones((8, 8), np.uint8), f"{folder}/b.ome.zarr", voxel_size=1, unit="nm", version="0.4")
    >>> meta = read_ome_metadata(f"{folder}/b.ome.zarr")
    >>> meta["version"], [a["unit"] for a in meta["multiscales"][0]["axes"]]
    ('0.4', ['nanometer', 'nanometer'])
    """
    if isinstance(path, str) and "://" in path:  # http(s):// and s3:// URLs, read as the validator reads them
        from data_helpers.storeaccess import read_attributes

        root, (zarr_format, attrs) = path, read_attributes(path)
    else:
        root = Path(path)
        attrs = _read_attrs(root)
        zarr_format = 3 if (root / "zarr.json").is_file() else 2
    if attrs is None:
        raise FileNotFoundError(f"{root} holds no Zarr metadata (zarr.json, .zattrs or .zgroup); is this the image folder?")
    if zarr_format == 3:
        ome = attrs.get("ome")
        if not isinstance(ome, dict) or "multiscales" not in ome:
            raise OmeZarrError(f"{root} is a Zarr v3 node without OME-Zarr 'ome.multiscales' attributes.")
        return dict(ome)
    if "multiscales" not in attrs:
        raise OmeZarrError(f"{root} is a Zarr v2 group without OME-Zarr 'multiscales' attributes.")
    version = (attrs["multiscales"][0] or {}).get("version") if attrs["multiscales"] else None
    return {"version": version, **attrs}
