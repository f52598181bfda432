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
  replaces only such an image's metadata and level folders, after checking on
  disk that each level folder holds one Zarr array and nothing else (the one
  rule is :func:`_replaceable_entries`); any other entry of the folder stays;
- a write that fails leaves no half-written image behind: the image is built in
  a hidden sibling folder and moved into place only once it is complete, and of
  two writes to one path at the same time, exactly one gets in;
- the pyramid is right for every shape and dtype: integer means are exact
  (int64 and uint64 included), rounded half up.

The write runs in five steps, each a small function: check the arguments, plan
the levels, check the target, write into staging, commit. The first three only
read, so their errors come before anything is computed.

It writes OME-Zarr 0.4 (Zarr v2), 0.5 (Zarr v3, the default) or 0.6 (Zarr v3, with the
coordinate systems and transformations of RFC-5); the pixels, chunks and pyramid are the same in each.
The metadata it writes is checked with ngff-zarr's JSON schemas and opens with
ome-zarr-models; see :mod:`data_helpers.validation` for checking any image.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import threading
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
from data_helpers.workspace import display_path
from data_helpers.units import normalize_unit
from data_helpers.errors import BookError
from data_helpers.safety import (  # the safety rules of every writer: see data_helpers.safety
    _GROUP_METADATA,
    _MARKER_KEY,
    _PLAIN_NAME,
    _STAGING_OWNER,
    _VERSIONS,
    NotWritableError,
    _array_node_problem,
    _carries_marker,
    _commit,
    _commit_lock,
    _commit_order,
    _make_staging,
    _move_onto_empty_folder,
    _owner_alive,
    _read_attrs,
    _read_owner,
    _remove_stale_staging,
    _remove_staging,
    _replaceable_entries,
    _same_device,
    _swap_entries,
    _Target,
    _this_process,
)

__all__ = [
    "DEFAULT_CHUNK",
    "DEFAULT_CLEVEL",
    "METHODS",
    "OmeZarrError",
    "OmeZarrImage",
    "level_translation",
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
_PROGRESS_MIN_BYTES = 256 * 2**20
_STAGING_BUDGET = 128 * 2**20  # bytes of input one block may need before the input is copied into better chunks
#: zarr-python's synchronous codec pipeline (opt-in in zarr 3.4), one chunk after the other in each dask thread.
#: The default pipeline hands every chunk to a pool of cpu_count + 4 threads: on 2 cores, 6 threads compressing
#: at once for 2 dask tasks. Writing a 4 GiB TIFF stack took 33-34 s against 37-39 s, and peaked at 125-130 MiB
#: above baseline against 258-278 MiB (helpers/README.md). Arrays keep the pipeline they were opened with.
_ZARR_PIPELINE = {"codec_pipeline.path": "zarr.core.codec_pipeline.FusedCodecPipeline",
                  "codec_pipeline.max_workers": 1}


class OmeZarrError(BookError, ValueError):
    """The input or the target of an OME-Zarr write is not valid; the message says how to fix it."""


@dataclass(frozen=True)
class OmeZarrImage:
    """What :func:`write_ome_zarr` wrote: where, in which version, and each level's shape and scale.

    Attributes
    ----------
    path
        The image's folder.
    version
        ``"0.4"`` (Zarr v2), ``"0.5"`` or ``"0.6"`` (Zarr v3).
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
        # Relative to the book's repository (data/...), or to a nearby working folder, so that printed
        # images do not show this machine's folders (see display_path).
        shown = display_path(self.path)
        lines = [f"OME-Zarr {self.version} image at {shown}", f"  axes {', '.join(self.dims)}; {self.dtype}; chunks {self.chunks}; {self.method} pyramid"]
        for i, (shape, scale) in enumerate(zip(self.shapes, self.scales)):
            scale_text = " x ".join(f"{s:g}" for s in scale)
            lines.append(f"  level {i}: {' x '.join(map(str, shape))} voxels, scale {scale_text}")
        lines.append(f"  {format_bytes(self.nbytes_stored)} on disk")
        return "\n".join(lines)


# -- input checks ----------------------------------------------------------------------------------


def _is_whole_number(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


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
    """One finite number per space axis, from one number or a sequence; booleans, NaN and infinity are refused."""
    if isinstance(value, (int, float, np.integer, np.floating)):
        value = (value,) * len(spatial)
    try:
        if isinstance(value, str) or any(isinstance(v, (bool, np.bool_)) for v in value):
            raise TypeError
        value = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise OmeZarrError(f"{name} must be a number or one number per space axis {tuple(spatial)}, got {value!r}.") from None
    if len(value) != len(spatial):
        raise OmeZarrError(
            f"{name} has {len(value)} values but the image has {len(spatial)} space axes {tuple(spatial)}; "
            "give one value per space axis, in the same order."
        )
    if not all(math.isfinite(v) for v in value):
        raise OmeZarrError(f"{name} must be finite numbers (no NaN or infinity), got {value}.")
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
    if not all(_is_whole_number(n) for n in (*shape, *chunks)):
        raise OmeZarrError(f"shape {tuple(shape)} and chunks {tuple(chunks)} must be whole numbers.")
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
    if n_levels is not None and (not _is_whole_number(n_levels) or n_levels < 1):
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


#: Large blocks are averaged a slab of about this many bytes at a time along the first axis, so that each
#: slab's sums stay in the CPU's cache. For a 256³ uint16 block on a 2-core machine with 512 KiB of L2 cache
#: a core, that took 11-15 ms against 28-39 ms for one pass whose sums fill fresh memory the block's size.
_MEAN_SLAB_BYTES = 1 << 20


def _block_mean(block: np.ndarray, step: tuple[int, ...]) -> np.ndarray:
    """Mean of each ``step`` block of voxels (see :func:`_mean_of_blocks`), a slab along axis 0 at a time."""
    plane_bytes = block[0].nbytes if block.ndim > 1 and block.shape[0] else 0
    depth = max(1, _MEAN_SLAB_BYTES // max(1, plane_bytes * step[0])) * step[0]  # whole steps: no block is split
    if block.ndim < 2 or block.shape[0] <= depth:
        return _mean_of_blocks(block, step)
    n0 = block.shape[0] // step[0] * step[0]
    out = None
    for z in range(0, n0, depth):
        slab = _mean_of_blocks(block[z:min(z + depth, n0)], step)
        if out is None:  # the output's dtype is whatever the one-pass mean gives, not decided twice
            out = np.empty((n0 // step[0],) + slab.shape[1:], slab.dtype)
        out[z // step[0]:(z + depth) // step[0]] = slab
    return out


def _mean_of_blocks(block: np.ndarray, step: tuple[int, ...]) -> np.ndarray:
    """Mean of each block of voxels, by adding strided views pairwise: much faster than a reshaped mean.

    Integers get the exact mean rounded half up, ``floor(mean + 1/2)`` (so 1.5 -> 2 and -1.5 -> -1), computed
    in integers without ever passing through floats. Up to 32 bits, sums are taken in int64, which cannot
    overflow for the 8 voxels of a block. For int64 and uint64 each value is split as ``v = q * count + r``
    (floor division, ``0 <= r < count``): the sum of the ``q`` stays in range because each is at most
    ``v / count``, and the mean is ``sum(q) + (sum(r) + count // 2) // count``, exactly. Booleans become
    True where at least half the voxels are True. Floats are averaged in float64, halving before adding so
    that values near the largest float64 do not overflow, and cast back.
    """
    count = math.prod(step)
    kind, itemsize = block.dtype.kind, block.dtype.itemsize
    if kind in "iu" and itemsize == 8:
        quotient = _block_sum(block // count, step, block.dtype)
        remainder = _block_sum(block % count, step, block.dtype)  # each below count: no overflow
        return (quotient + (remainder + count // 2) // count).astype(block.dtype)
    if kind == "f":
        return _block_sum(block, step, np.float64, scale=True).astype(block.dtype)
    small_unsigned = kind in "bu" and itemsize <= 2
    acc = _block_sum(block, step, np.uint32 if small_unsigned else np.int64)
    if kind == "b":
        return acc * 2 >= count
    if kind in "iu":
        # round half up, in integers: (sum + count // 2) // count; floor division rounds towards -inf, and so
        # does a right shift (arithmetic for signed integers), which is faster when count is a power of 2
        acc += count // 2
        if count & (count - 1) == 0:
            acc >>= count.bit_length() - 1
        else:
            acc //= count
        return acc.astype(block.dtype)


def _block_sum(block: np.ndarray, step: tuple[int, ...], acc_type, scale: bool = False) -> np.ndarray:
    """Sum of each block of voxels in ``acc_type``, adding strided views pairwise.

    With ``scale``, each part is divided by the step before it is added, which gives the mean: for floats,
    dividing by 2 is exact (but for subnormal numbers), so the result is the same as dividing the sum, and
    values near the largest float64 do not overflow to infinity.
    """
    acc = block
    for axis, s in enumerate(step):
        if s == 1:
            continue
        n = (acc.shape[axis] // s) * s
        parts = [acc[(slice(None),) * axis + (slice(k, n, s),)] for k in range(s)]
        if scale:
            total = np.multiply(parts[0], 1 / s, dtype=acc_type)
            for part in parts[1:]:
                total += np.multiply(part, 1 / s, dtype=acc_type)
        else:
            total = np.add(parts[0], parts[1], dtype=acc_type)  # s >= 2: no separate cast of the first part
            for part in parts[2:]:
                total += part
        acc = total
    return acc if acc is not block else block.astype(acc_type)


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
    """One block of the next level: each ``step`` block of voxels becomes one; a trailing odd voxel is dropped.

    A block may be thinner than its step along an axis (the last block of an axis of odd length, such as 65
    voxels in chunks of 32): it then gives an empty block of the right shape.
    """
    trimmed = block[tuple(slice(0, (n // s) * s) for n, s in zip(block.shape, step))]
    if all(s == 1 for s in step):
        return trimmed
    out_shape = tuple(n // s for n, s in zip(trimmed.shape, step))
    if trimmed.size == 0:
        return np.empty(out_shape, dtype=block.dtype)
    if method == "nearest":
        return trimmed[tuple(slice(None, None, s) for s in step)].copy()
    if method == "mean":
        return _block_mean(trimmed, step)
    new_shape = []
    for n, s in zip(trimmed.shape, step):
        new_shape += [n // s, s]
    blocks = trimmed.reshape(new_shape)
    axes = tuple(range(1, len(new_shape), 2))
    if method == "max":
        return blocks.max(axis=axes)
    # mode: the most frequent value among the voxels of each block; ties go to the smallest value
    order = [i for i in range(len(new_shape)) if i % 2 == 0] + list(axes)
    cand = np.sort(blocks.transpose(order).reshape(out_shape + (-1,)), axis=-1)
    k = cand.shape[-1]
    best = cand[..., 0].copy()
    best_count = np.zeros(best.shape, np.int32)
    run = np.ones(best.shape, np.int32)
    for j in range(1, k + 1):
        same = cand[..., j] == cand[..., j - 1] if j < k else np.zeros(best.shape, bool)
        better = ~same & (run > best_count)
        best = np.where(better, cand[..., j - 1], best)
        best_count = np.where(better, run, best_count)
        run = np.where(same, run + 1, 1)
    return best


# -- writing -------------------------------------------------------------------------------------------
#
# write_ome_zarr runs five steps, each a small function below:
#
#   1. _check_arguments -> _Request  every argument checked; nothing on disk is read or written
#   2. _plan_levels     -> _Plan     the shape, chunks, scale and translation of every level
#   3. _check_target    -> _Target   what is at the path now, and which of its entries an overwrite replaces;
#                                    the one rule of what may be deleted is _replaceable_entries
#   4. _write_staging                the whole image, in a hidden sibling folder made by this call
#   5. _commit                       the image moved into place under a lock; the replaced entries go last
#
# Steps 1-3 only read, so every error they raise comes before anything is computed or written.

_COORDINATE_SYSTEM = "physical"  # 0.6: the name of the image's own ("intrinsic") coordinate system


@dataclass(frozen=True)
class _Request:
    """The checked arguments of one write."""

    source: da.Array
    target: Path
    dims: tuple[str, ...]
    space_voxel: tuple[float, ...]  # one per space axis, for plan_pyramid
    voxel: tuple[float, ...]  # one per axis: the time step for t, 1 for c
    origin: tuple[float, ...]  # one per axis
    units: tuple[str | None, ...]
    chunks: tuple[int, ...]
    name: str
    kind: str
    method: str
    version: str
    clevel: int
    n_levels: int | None
    overwrite: bool
    show_progress: bool
    extra_ome: dict = field(default_factory=dict)  # more OME keys for the image's metadata, e.g. "image-label"

    @property
    def zarr_format(self) -> int:
        return _VERSIONS[self.version]


@dataclass(frozen=True)
class _Plan:
    """Every level of the pyramid, finest first."""

    factors: tuple[tuple[int, ...], ...]
    shapes: tuple[tuple[int, ...], ...]
    scales: tuple[tuple[float, ...], ...]
    translations: tuple[tuple[float, ...], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(str(level) for level in range(len(self.shapes)))



# -- step 1: check the arguments


def _check_arguments(data: Any, path: str | os.PathLike, *, voxel_size, unit, dims, name, kind, method, chunks,
                     n_levels, version, clevel, translation, time_unit, time_step, overwrite, progress) -> _Request:
    """Check every argument of :func:`write_ome_zarr`, without touching the disk."""
    target = Path(path)
    if target.name in ("", ".", ".."):
        raise OmeZarrError(f"path {str(path)!r} does not name a folder of its own; give the image's folder, "
                           "e.g. 'data/scan.ome.zarr'.")
    if not isinstance(version, str) or version not in _VERSIONS:
        raise OmeZarrError(f"version must be '0.4' (Zarr v2), '0.5' or '0.6' (Zarr v3), got {version!r}; "
                           "'0.5' is read by the most tools today.")
    if kind not in _DEFAULT_METHOD:
        raise OmeZarrError(f"kind must be 'intensity' or 'labels', got {kind!r}.")
    method = method or _DEFAULT_METHOD[kind]
    if method not in METHODS:
        raise OmeZarrError(f"method must be one of {METHODS}, got {method!r}.")
    if kind == "labels" and method == "mean":
        raise OmeZarrError("labels must not be averaged (the mean of labels 1 and 3 is a label 2 that is not there); "
                           "use method='mode' or 'nearest'.")
    if not _is_whole_number(clevel) or not 1 <= clevel <= 9:
        raise OmeZarrError(f"clevel must be an integer from 1 to 9, got {clevel!r}.")
    if n_levels is not None and (not _is_whole_number(n_levels) or n_levels < 1):
        raise OmeZarrError(f"n_levels must be a whole number of levels, 1 or more, got {n_levels!r}.")
    if not isinstance(overwrite, (bool, np.bool_)):
        raise OmeZarrError(f"overwrite must be True or False, got {overwrite!r}.")
    if progress is not None and not isinstance(progress, (bool, np.bool_)):
        raise OmeZarrError(f"progress must be True, False or None, got {progress!r}.")
    if name is not None and not isinstance(name, str):
        raise OmeZarrError(f"name must be a string, got {name!r}.")
    ndim = len(getattr(data, "shape", ()))
    dims = _check_dims(dims, ndim)
    spatial = [d for d in dims if d in ("z", "y", "x")]
    space_voxel = _per_axis("voxel_size", voxel_size, spatial)
    if not all(v > 0 for v in space_voxel):
        raise OmeZarrError(f"voxel_size must be positive and finite, got {space_voxel}.")
    space_origin = _per_axis("translation", 0.0 if translation is None else translation, spatial)
    if not isinstance(time_step, (int, float, np.integer, np.floating)) or isinstance(time_step, (bool, np.bool_)) \
            or not math.isfinite(time_step) or time_step <= 0:
        raise OmeZarrError(f"time_step must be a positive, finite number (the interval between time points), "
                           f"got {time_step!r}.")
    space_unit = normalize_unit(unit, "space")
    t_unit = normalize_unit(time_unit, "time") if "t" in dims else None
    if kind == "labels" and getattr(data, "dtype", np.dtype("f")).kind not in "biu":
        raise OmeZarrError(f"labels need an integer dtype, got {data.dtype}; convert with data.astype(np.uint32).")

    shape = tuple(int(n) for n in data.shape)
    chunk_shape = _check_chunks(DEFAULT_CHUNK if chunks is None else chunks, dims, spatial)
    chunk_shape = tuple(min(c, n) for c, n in zip(chunk_shape, shape))
    source = _as_dask(data, chunk_shape)
    voxel = tuple(float(time_step) if d == "t" else 1.0 if d == "c" else space_voxel[spatial.index(d)] for d in dims)
    origin = tuple(0.0 if d in ("t", "c") else space_origin[spatial.index(d)] for d in dims)
    units = tuple(t_unit if d == "t" else None if d == "c" else space_unit for d in dims)
    return _Request(
        source=source, target=target, dims=dims, space_voxel=space_voxel, voxel=voxel, origin=origin, units=units,
        chunks=chunk_shape, name=name or target.name.removesuffix(".zarr").removesuffix(".ome"), kind=kind,
        method=method, version=version, clevel=int(clevel), n_levels=None if n_levels is None else int(n_levels),
        overwrite=bool(overwrite),
        show_progress=bool(progress) if progress is not None else source.nbytes >= _PROGRESS_MIN_BYTES,
    )


def _check_chunks(chunks: Any, dims: tuple[str, ...], spatial: Sequence[str]) -> tuple[int, ...]:
    """Chunk lengths, one per axis, from one whole number (for every space axis) or one per axis."""
    if _is_whole_number(chunks):
        chunk_shape = tuple(int(chunks) if d in spatial else 1 for d in dims)
    elif isinstance(chunks, (Sequence, np.ndarray)) and not isinstance(chunks, str) \
            and all(_is_whole_number(c) for c in chunks):
        chunk_shape = tuple(int(c) for c in chunks)
        if len(chunk_shape) != len(dims):
            raise OmeZarrError(f"chunks {chunk_shape} has {len(chunk_shape)} lengths but the array has {len(dims)} "
                               f"dimensions {dims}.")
    else:
        raise OmeZarrError(f"chunks must be a whole number of voxels (for every space axis) or one whole number per "
                           f"axis {dims}, got {chunks!r}; e.g. chunks=64 or chunks={tuple(64 if d in spatial else 1 for d in dims)}.")
    if any(c < 1 for c in chunk_shape):
        raise OmeZarrError(f"chunk lengths must be at least 1, got {chunk_shape}.")
    return chunk_shape


# -- step 2: plan the levels


def level_translation(origin: float, voxel: float, factor: int, method: str = "mean") -> float:
    """Physical position of the first voxel's centre in a level downsampled by ``factor`` along one axis.

    A level made by ``"mean"``, ``"mode"`` or ``"max"`` stands for blocks of ``factor`` voxels, so its first
    voxel is centred on the first block: ``origin + (factor - 1) * voxel / 2``, half a coarse voxel minus half
    a fine one further in. A level made by ``"nearest"`` (striding) keeps the first voxel of each block, so its
    first voxel stays at ``origin``.

    Parameters
    ----------
    origin
        Position of the centre of the first voxel of level 0 (its translation).
    voxel
        Voxel size of level 0 along the axis.
    factor
        Downsampling factor of the level along the axis, relative to level 0.
    method
        The downsampling method, one of :data:`METHODS`.

    Returns
    -------
    float
        The translation of the level along the axis.

    Raises
    ------
    OmeZarrError
        If ``method`` is not one of :data:`METHODS`.

    Examples
    --------
    >>> from data_helpers.omezarr import level_translation
    >>> level_translation(0.0, 1.0, 4), level_translation(0.0, 1.0, 4, "nearest")
    (1.5, 0.0)
    """
    if method not in METHODS:
        raise OmeZarrError(f"method must be one of {METHODS}, got {method!r}.")
    if method == "nearest":
        return float(origin)
    return origin + (factor * voxel - voxel) / 2


def _plan_levels(request: _Request, factors: Sequence[tuple[int, ...]] | None = None) -> _Plan:
    """The shape, scale and translation of every level; a coarser level's first voxel is centred on its block.

    ``factors`` (one tuple per level, relative to level 0, each a multiple of the one before) replaces the
    schedule of :func:`plan_pyramid`, e.g. to give a label image the pyramid of the image it labels.
    """
    shape = tuple(int(n) for n in request.source.shape)
    if factors is None:
        factors = plan_pyramid(shape, request.dims, request.space_voxel, request.chunks, request.n_levels)
    factors = [tuple(int(f) for f in fac) for fac in factors]
    shapes = [shape]
    for prev, fac in zip(factors, factors[1:]):
        shapes.append(tuple(n // (f // p) for n, f, p in zip(shapes[-1], fac, prev)))
    if any(n < 1 for level_shape in shapes for n in level_shape):
        raise OmeZarrError(f"the pyramid {factors} leaves an empty axis for the shape {shape}; use fewer levels.")
    scales = [tuple(v * f for v, f in zip(request.voxel, fac)) for fac in factors]
    translations = [tuple(level_translation(o, v, f, request.method) for o, v, f in zip(request.origin, request.voxel, fac))
                    for fac in factors]
    if not all(math.isfinite(x) for values in (*scales, *translations) for x in values):
        raise OmeZarrError(f"the scales or translations of the coarser levels overflow to infinity (voxel_size "
                           f"{request.space_voxel}, translation {request.origin}); use a larger unit so that the "
                           "numbers are smaller.")
    return _Plan(tuple(factors), tuple(shapes), tuple(scales), tuple(translations))


def _written_names(request: _Request, plan: _Plan) -> tuple[str, ...]:
    """The entries the new image has in its folder: the group metadata and one folder per level."""
    return _GROUP_METADATA[request.zarr_format] + plan.names


# -- step 3: check the target


def _check_target(path: Path, overwrite: bool, written: Sequence[str]) -> _Target:
    """What is at ``path``, refusing every target that the commit could not use without losing data.

    Accepted: a path that does not exist (its parent folders are made), an empty folder, or, with
    ``overwrite=True``, a folder that holds an earlier image whose entries :func:`_replaceable_entries`
    allows to replace. Refused, with an error that says why: a file, a symbolic link (dangling or not),
    a folder on another file system than its parent (a mount point), any other non-empty folder.
    """
    if path.is_symlink():
        if not path.exists():
            raise FileExistsError(f"{path} is a dangling symbolic link (to {os.readlink(path)}); remove the link or "
                                  "choose another path. Nothing was written.")
        raise FileExistsError(f"{path} is a symbolic link to {path.resolve()}; pass that folder itself "
                              f"(path={str(path.resolve())!r}) or choose another path. Nothing was written.")
    if not path.exists():
        return _Target(path, "new")
    if not path.is_dir():
        raise FileExistsError(f"{path} exists and is a file, not a folder; choose another path for the image.")
    if not _same_device(path, path.parent):
        raise OmeZarrError(f"{path} is on another file system than the folder it is in (a mount point), so a "
                           f"finished image cannot be moved into it in one step; write to a folder inside it, "
                           f"e.g. {path / 'image.ome.zarr'}.")
    if not any(path.iterdir()):
        return _Target(path, "empty")
    if not _carries_marker(path):
        raise FileExistsError(
            f"{path} is not empty and is not an OME-Zarr image written by data_helpers, so nothing was written "
            "and nothing was deleted. Write to a new path, or move its contents away yourself if you are sure."
        )
    if not overwrite:
        raise FileExistsError(f"{path} already holds an OME-Zarr image; pass overwrite=True to replace it, or use a new path.")
    return _Target(path, "image", _replaceable_entries(path, written))






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


def _multiscale_metadata(
    name: str, dims, units, scales, translations, method: str, version: str, kind: str
) -> dict:
    """The one multiscale of the image, in the form of ``version``.

    0.4 and 0.5 list the ``axes`` and give each level a scale and a translation. 0.6 (RFC-5) names the space
    they describe, a coordinate system (here ``"physical"``) with those axes, and gives each level one
    transformation that says what it maps from (``input``: the level's array, by its path) and to
    (``output``: that coordinate system): a ``sequence`` of the same scale and translation.
    """
    axes = []
    for d, u in zip(dims, units):
        axis = {"name": d, "type": "time" if d == "t" else "channel" if d == "c" else "space"}
        if u is not None:
            axis["unit"] = u
        axes.append(axis)
    pairs = [
        [{"type": "scale", "scale": list(scale)}, {"type": "translation", "translation": list(tr)}]
        for scale, tr in zip(scales, translations)
    ]
    if version == "0.6":
        datasets = [
            {
                "path": str(i),
                "coordinateTransformations": [
                    {"type": "sequence", "input": {"path": str(i)}, "output": {"name": _COORDINATE_SYSTEM},
                     "transformations": pair},
                ],
            }
            for i, pair in enumerate(pairs)
        ]
        space = {"coordinateSystems": [{"name": _COORDINATE_SYSTEM, "axes": axes}]}
    else:
        datasets = [{"path": str(i), "coordinateTransformations": pair} for i, pair in enumerate(pairs)]
        space = {"axes": axes}
    multiscale = {"name": name, **space, "datasets": datasets, "type": method,
                  "metadata": {"method": f"data_helpers.write_ome_zarr ({method} of each block of voxels)",
                               "kind": kind}}
    if version == "0.4":
        multiscale = {"version": "0.4", **multiscale}
    return multiscale


_PIPELINE_LOCK = threading.Lock()
_pipeline_users = 0
_pipeline_setting = contextlib.ExitStack()  # holds zarr's config.set while any write runs; closing it restores


@contextlib.contextmanager
def _synchronous_zarr_pipeline():
    """Use :data:`_ZARR_PIPELINE` while any write runs, then restore zarr's config as it was before the first.

    zarr's ``config.set`` restores what it saw on entry, so two writes in overlapping threads would leave the
    second one's setting behind when the first ends first: a count of writes in progress decides instead.
    """
    global _pipeline_users
    with _PIPELINE_LOCK:
        if _pipeline_users == 0:
            _pipeline_setting.enter_context(zarr.config.set(_ZARR_PIPELINE))
        _pipeline_users += 1
    try:
        yield
    finally:
        with _PIPELINE_LOCK:
            _pipeline_users -= 1
            if _pipeline_users == 0:
                _pipeline_setting.close()


def _write_staging(request: _Request, plan: _Plan, staging: Path) -> None:
    """Write every level and the metadata into ``staging``, a block at a time."""
    with _synchronous_zarr_pipeline():
        _write_levels(request, plan, staging)


def _write_levels(request: _Request, plan: _Plan, staging: Path) -> None:
    source, chunk_shape, shape = request.source, request.chunks, plan.shapes[0]
    factors, level_shapes = plan.factors, plan.shapes
    if request.zarr_format == 3:
        compressors = zarr.codecs.BloscCodec(cname="zstd", clevel=request.clevel, shuffle="shuffle")
        extra = {"dimension_names": request.dims}
    else:
        from numcodecs import Blosc

        compressors = Blosc(cname="zstd", clevel=request.clevel, shuffle=Blosc.SHUFFLE)
        extra = {"chunk_key_encoding": {"name": "v2", "separator": "/"}}
    group = zarr.create_group(staging, zarr_format=request.zarr_format)
    arrays = [
        group.create_array(
            name,
            shape=level_shape,
            chunks=tuple(min(c, n) for c, n in zip(chunk_shape, level_shape)),
            dtype=source.dtype,
            compressors=compressors,
            fill_value=0,
            config={"write_empty_chunks": True},
            **extra,
        )
        for name, level_shape in zip(plan.names, level_shapes)
    ]
    first_step = tuple(f // p for f, p in zip(factors[1], factors[0])) if len(factors) > 1 else (1,) * len(shape)
    first_block = tuple(min(c * st, n) for c, st, n in zip(chunk_shape, first_step, shape))
    inter = _staging_chunks(tuple(source.chunksize), first_block, shape, source.dtype.itemsize, _STAGING_BUDGET)
    if inter is not None:
        copy_chunks = tuple(c if c < b else min(n, -(-i // c) * c)
                            for c, i, b, n in zip(inter, source.chunksize, first_block, shape))
        copy = zarr.create_array(staging / "_rechunk.zarr", shape=shape, dtype=source.dtype, chunks=inter,
                                 compressors=zarr.codecs.BloscCodec(cname="lz4", clevel=1, shuffle="shuffle"),
                                 config={"write_empty_chunks": True})
        _copy_in_slabs(source.rechunk(copy_chunks), copy, request.show_progress)
        # one read task per block, which reads the copy's thin chunks itself: a rechunk of the copy into blocks
        # would let dask hold thin pieces of many blocks at once
        source = da.from_zarr(copy, chunks=first_block)
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
        stages.append((level, src.map_blocks(_downsample_and_store, step, request.method, also_write,
                                             dtype=src.dtype, chunks=out_chunks)))
    for level, result in stages:
        label = "levels 0 and 1" if level == 1 else f"level {level}"
        bar = _Progress(f"{label} of {len(factors) - 1}: {' x '.join(map(str, level_shapes[level]))}")
        with dask.config.set(scheduler="threads"), (bar if request.show_progress else contextlib.nullcontext()):
            da.store(result, arrays[level], lock=False)
    multiscale = _multiscale_metadata(request.name, request.dims, request.units, plan.scales, plan.translations,
                                      request.method, request.version, request.kind)
    marker = {"version": _package_version(), "levels": list(plan.names)}
    if request.zarr_format == 3:
        group.attrs.put({"ome": {"version": request.version, "multiscales": [multiscale], **request.extra_ome},
                         _MARKER_KEY: marker})
    else:
        group.attrs.put({"multiscales": [multiscale], **request.extra_ome, _MARKER_KEY: marker})
    if (staging / "_rechunk.zarr").exists():
        shutil.rmtree(staging / "_rechunk.zarr")  # the intermediate copy made above, inside this call's staging folder


# -- step 4: write into staging (data_helpers.safety.make_staging), step 5: commit (data_helpers.safety._commit)




def _own_nbytes(folder: Path, names: Sequence[str]) -> int:
    """Bytes of the files under the entries ``names`` of ``folder`` (the image's own), links not followed."""
    total = 0
    for name in names:
        entry = folder / name
        if entry.is_symlink():
            continue
        if entry.is_file():
            total += entry.stat().st_size
        for root, _, files in os.walk(entry):
            total += sum(os.lstat(os.path.join(root, f)).st_size for f in files
                         if not os.path.islink(os.path.join(root, f)))
    return total


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
    version: Literal["0.4", "0.5", "0.6"] = "0.5",
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
        (default for intensity), ``"mode"`` (the most frequent value, ties to the
        smallest; default for labels, which must never be averaged),
        ``"nearest"`` or ``"max"``. The mean of integers is exact for every
        integer type, rounded half up (1.5 becomes 2, -1.5 becomes -1).
    chunks
        Chunk length per axis, or one whole number for all space axes. Default
        128 for space axes (4 MiB at 16 bit) and 1 for t and c; clipped to the shape.
    n_levels
        Number of pyramid levels including full resolution. Default: halve
        until a level fits in one chunk (see :func:`plan_pyramid`).
    version
        ``"0.5"`` (default) writes OME-Zarr 0.5 on Zarr v3: the version read by
        the most tools today, and what ngff-zarr writes by default. ``"0.6"``
        (Zarr v3) writes the newest release, where the axes belong to a named
        coordinate system (``"physical"``) and each level's scale and
        translation form one transformation from that level's array to it; the
        levels, paths, chunks and compression are the same as in 0.5. It is not
        the default because widely used viewers do not read it yet: Neuroglancer
        2.41 rejects it, vizarr and iohub 0.3 do not find its axes (see the
        version table in the book's appendix). Use ``"0.4"`` (Zarr v2) for tools
        that do not read Zarr v3 yet.
    clevel
        Blosc compression level, 1 to 9, for blosc-zstd with byte shuffle.
        Blosc runs Zstandard at level ``2 * clevel - 1``, so the default 3 is
        Zstandard level 5.
    translation
        Physical position of the first voxel's centre, per space axis (finite
        numbers). Default 0. A coarser level's first voxel is centred on the
        block of voxels it stands for (see :func:`level_translation`), so
        the levels stay aligned; with ``method="nearest"`` it is the first
        voxel of that block, which is not shifted.
    time_unit, time_step
        Unit and interval (positive, finite) of a ``t`` axis, if there is one.
    overwrite
        Replace an image that this function wrote earlier at ``path``. Only its
        group metadata and its level folders are replaced, and only after
        checking on disk that each level folder holds one Zarr array and nothing
        else; every other entry of the folder is left alone. See the rule in the
        package README ("What may be deleted").
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
        If ``path`` is a file or a link, is not empty and not an image this
        function wrote, holds one and ``overwrite`` is ``False``, holds one with
        an entry that an overwrite may not delete (the message names it), or was
        created by another write at the same time. These are found before
        anything is computed (except the last); nothing is written or deleted then.
    NotWritableError
        If the folder of ``path`` cannot be written (a system or read-only
        folder, no permission); nothing is computed.

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

    The same image in OME-Zarr 0.6:

    >>> image6 = write_ome_zarr(np.zeros((40, 300, 300), np.uint16), f"{folder}/a6.ome.zarr",
    ...                         voxel_size=(2.0, 0.5, 0.5), unit="um", chunks=64, version="0.6")
    >>> image6.version, image6.scales == image.scales
    ('0.6', True)
    """
    request = _check_arguments(
        data, path, voxel_size=voxel_size, unit=unit, dims=dims, name=name, kind=kind, method=method, chunks=chunks,
        n_levels=n_levels, version=version, clevel=clevel, translation=translation, time_unit=time_unit,
        time_step=time_step, overwrite=overwrite, progress=progress,
    )
    plan = _plan_levels(request)
    written = _written_names(request, plan)
    target = _check_target(request.target, request.overwrite, written)
    staging = _make_staging(request.target)
    try:
        _write_staging(request, plan, staging)
        _commit(staging, target, written)
    except BaseException:
        _remove_staging(staging)  # only the staging folder this call created
        raise
    return OmeZarrImage(
        path=request.target,
        version=request.version,
        dims=request.dims,
        units=request.units,
        shapes=plan.shapes,
        scales=plan.scales,
        translations=plan.translations,
        chunks=request.chunks,
        dtype=np.dtype(request.source.dtype),
        method=request.method,
        nbytes_stored=_own_nbytes(request.target, written),
    )


def _package_version() -> str:
    from data_helpers import __version__

    return __version__


def _scene_hint(ome: Any) -> str:
    """For an OME-Zarr 0.6 scene (a group that places images, without pixels of its own): where its images are."""
    scene = ome.get("scene") if isinstance(ome, dict) else None
    if not isinstance(scene, dict):
        return ""
    paths = []
    for t in scene.get("coordinateTransformations") or []:
        for end in (t.get("input"), t.get("output")) if isinstance(t, dict) else ():
            if isinstance(end, dict) and isinstance(end.get("path"), str) and end["path"] not in paths:
                paths.append(end["path"])
    images = f": its images are the subgroups {', '.join(paths)}; read one of those" if paths else ""
    return f"; it is an OME-Zarr {ome.get('version')} scene, which places images in one space{images}"


def read_ome_metadata(path: str | os.PathLike, storage_options: dict | None = None) -> dict:
    """Return the OME-Zarr metadata of an image folder, for version 0.4, 0.5 or 0.6 alike.

    Parameters
    ----------
    path
        An OME-Zarr image folder, or its ``http(s)://`` or ``s3://`` URL.
    storage_options
        For an ``s3://`` URL, passed to s3fs (for example ``{"anon": True}``).

    Returns
    -------
    dict
        ``{"version": ..., "multiscales": [...]}`` (plus ``omero`` and other OME keys if present),
        as stored. A 0.4 or 0.5 multiscale lists its ``axes``; a 0.6 multiscale has them in its
        ``coordinateSystems`` instead, and each dataset's transformation names its ``input`` and ``output``.

    Raises
    ------
    FileNotFoundError
        If ``path`` holds no Zarr group metadata.
    OmeZarrError
        If the group has no OME-Zarr multiscales metadata (for a 0.6 scene, the message names its images).

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from data_helpers import read_ome_metadata, write_ome_zarr
    >>> folder = tempfile.mkdtemp()
    >>> _ = write_ome_zarr(np.ones((8, 8), np.uint8), f"{folder}/b.ome.zarr", voxel_size=1, unit="nm", version="0.4")
    >>> meta = read_ome_metadata(f"{folder}/b.ome.zarr")
    >>> meta["version"], [a["unit"] for a in meta["multiscales"][0]["axes"]]
    ('0.4', ['nanometer', 'nanometer'])
    >>> _ = write_ome_zarr(np.ones((8, 8), np.uint8), f"{folder}/c.ome.zarr", voxel_size=1, unit="nm", version="0.6")
    >>> system = read_ome_metadata(f"{folder}/c.ome.zarr")["multiscales"][0]["coordinateSystems"][0]
    >>> system["name"], [a["unit"] for a in system["axes"]]
    ('physical', ['nanometer', 'nanometer'])
    """
    if isinstance(path, str) and "://" in path:  # http(s):// and s3:// URLs, read as the validator reads them
        from data_helpers.storeaccess import read_attributes

        root, (zarr_format, attrs) = path, read_attributes(path, storage_options)
    else:
        root = Path(path)
        attrs = _read_attrs(root)
        zarr_format = 3 if (root / "zarr.json").is_file() else 2
    if attrs is None:
        shown = root if isinstance(root, str) else display_path(root)
        raise FileNotFoundError(f"{shown} holds no Zarr metadata (zarr.json, .zattrs or .zgroup); is this the image "
                                f"folder? If a chapter wrote it, run the cell that writes it again.")
    if zarr_format == 3:
        ome = attrs.get("ome")
        if not isinstance(ome, dict) or "multiscales" not in ome:
            raise OmeZarrError(f"{root} is a Zarr v3 node without OME-Zarr 'ome.multiscales' attributes"
                               f"{_scene_hint(ome)}.")
        return dict(ome)
    if "multiscales" not in attrs:
        raise OmeZarrError(f"{root} is a Zarr v2 group without OME-Zarr 'multiscales' attributes.")
    version = (attrs["multiscales"][0] or {}).get("version") if attrs["multiscales"] else None
    return {"version": version, **attrs}
