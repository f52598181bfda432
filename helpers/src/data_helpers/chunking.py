"""Chunk arithmetic and advice: how many chunks and files, what a read touches, which shape to pick.

Everything here is pure arithmetic on shapes: no data is read or written, so you
can reason about a 1 TB dataset as easily as about a small one.

Zarr stores every chunk at its full shape, even at the far edge of the array
where part of it lies outside; the byte counts below follow that rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import DTypeLike

__all__ = [
    "ChunkLayout",
    "ReadCost",
    "chunk_layout",
    "chunks_touched",
    "format_bytes",
    "suggest_chunk_shape",
]


def format_bytes(nbytes: float) -> str:
    """Write a number of bytes with a binary unit, e.g. ``'4.0 MiB'``.

    Parameters
    ----------
    nbytes
        A number of bytes, 0 or more.

    Returns
    -------
    str
        The size with one decimal and the largest unit that keeps it at 1 or more.

    Raises
    ------
    ValueError
        If ``nbytes`` is negative or not a number.

    Examples
    --------
    >>> from data_helpers import format_bytes
    >>> format_bytes(7614 * 7614 * 8480 * 2)
    '915.7 GiB'
    >>> format_bytes(512)
    '512 B'
    """
    try:
        value = float(nbytes)
    except (TypeError, ValueError):
        raise ValueError(f"nbytes must be a number of bytes, got {nbytes!r}.") from None
    if not value >= 0:
        raise ValueError(f"nbytes must be 0 or more, got {nbytes!r}.")
    if value < 1024:
        return f"{int(value)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        value /= 1024
        if value < 1024 or unit == "PiB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def _as_shape(name: str, value: Sequence[int] | int, ndim: int | None = None) -> tuple[int, ...]:
    if isinstance(value, (int, np.integer)):
        if ndim is None:
            raise TypeError(f"{name} must be a sequence of integers, got {value!r}.")
        value = (int(value),) * ndim
    try:
        out = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of integers, got {value!r}.") from None
    if ndim is not None and len(out) != ndim:
        raise ValueError(f"{name} {out} has {len(out)} dimensions but the array has {ndim}; give one length per axis.")
    if any(v < 1 for v in out):
        raise ValueError(f"every length in {name} must be at least 1, got {out}.")
    return out


def _as_dtype(dtype: DTypeLike) -> np.dtype:
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be a numpy dtype or its name such as 'uint16', got {dtype!r}.") from None


@dataclass(frozen=True)
class ChunkLayout:
    """How an array of a given shape splits into chunks (and shards) on disk.

    Attributes
    ----------
    shape, chunks, dtype
        The array's shape, the chunk shape and the data type.
    shards
        The shard shape (Zarr v3 sharding), or ``None`` without sharding.
    grid
        Chunks along each axis.
    n_chunks
        Number of chunks in all.
    chunk_nbytes
        Bytes of one chunk before compression.
    shard_grid
        Shards along each axis (equal to ``grid`` without sharding).
    n_files
        Chunk or shard files, not counting metadata files, when every chunk is written.
    total_nbytes
        Bytes of all chunks before compression, edge padding included.
    """

    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    dtype: np.dtype
    shards: tuple[int, ...] | None
    grid: tuple[int, ...]
    n_chunks: int
    chunk_nbytes: int
    shard_grid: tuple[int, ...]
    n_files: int
    total_nbytes: int

    def __str__(self) -> str:
        lines = [
            f"array {' x '.join(map(str, self.shape))} {self.dtype} ({format_bytes(math.prod(self.shape) * self.dtype.itemsize)})",
            f"chunks {' x '.join(map(str, self.chunks))}: {self.n_chunks:,} chunks of {format_bytes(self.chunk_nbytes)}"
            f" (grid {' x '.join(map(str, self.grid))})",
        ]
        if self.shards is not None:
            lines.append(f"shards {' x '.join(map(str, self.shards))}: {self.n_files:,} shard files")
        else:
            lines.append(f"{self.n_files:,} chunk files")
        return "\n".join(lines)


def chunk_layout(
    shape: Sequence[int], chunks: Sequence[int] | int, dtype: DTypeLike = "uint16", shards: Sequence[int] | int | None = None
) -> ChunkLayout:
    """Count the chunks, files and bytes that a chunk (and shard) shape gives.

    Parameters
    ----------
    shape
        The array's shape, e.g. ``(z, y, x)``.
    chunks
        The chunk shape, one length per axis, or one integer for every axis.
        Lengths larger than the array are clipped to it, as Zarr tools usually do.
    dtype
        The data type, for byte counts. Default ``uint16``.
    shards
        A Zarr v3 shard shape, or ``None``. Each shard length must be a multiple
        of the chunk length.

    Returns
    -------
    ChunkLayout
        Grid, counts and sizes; ``print()`` it for a summary.

    Raises
    ------
    ValueError
        If a shape has the wrong number of axes or a length below 1, or a shard
        is not a whole number of chunks.

    Examples
    --------
    >>> from data_helpers import chunk_layout
    >>> layout = chunk_layout((512, 512, 512), 64, "uint16")
    >>> layout.n_chunks, layout.chunk_nbytes
    (512, 524288)
    >>> print(chunk_layout((512, 512, 512), 16, "uint16", shards=128))
    array 512 x 512 x 512 uint16 (256.0 MiB)
    chunks 16 x 16 x 16: 32,768 chunks of 8.0 KiB (grid 32 x 32 x 32)
    shards 128 x 128 x 128: 64 shard files
    """
    shape = _as_shape("shape", shape)
    ndim = len(shape)
    chunks = tuple(min(c, n) for c, n in zip(_as_shape("chunks", chunks, ndim), shape))
    dtype = _as_dtype(dtype)
    grid = tuple(-(-n // c) for n, c in zip(shape, chunks))
    n_chunks = math.prod(grid)
    chunk_nbytes = math.prod(chunks) * dtype.itemsize
    if shards is None:
        shard_tuple, shard_grid = None, grid
    else:
        shard_tuple = _as_shape("shards", shards, ndim)
        bad = [(s, c) for s, c in zip(shard_tuple, chunks) if s % c]
        if bad:
            raise ValueError(
                f"shard shape {shard_tuple} is not a whole number of chunks {chunks}; "
                "make each shard length a multiple of the chunk length."
            )
        shard_grid = tuple(-(-n // s) for n, s in zip(shape, shard_tuple))
    return ChunkLayout(
        shape=shape,
        chunks=chunks,
        dtype=dtype,
        shards=shard_tuple,
        grid=grid,
        n_chunks=n_chunks,
        chunk_nbytes=chunk_nbytes,
        shard_grid=shard_grid,
        n_files=math.prod(shard_grid),
        total_nbytes=n_chunks * chunk_nbytes,
    )


@dataclass(frozen=True)
class ReadCost:
    """What one read (a selection of an array) costs in chunks and bytes.

    Attributes
    ----------
    n_chunks
        Chunks the read touches: each must be fetched and decoded whole.
    n_files
        Chunk or shard files the read opens.
    nbytes_read
        Bytes decoded: ``n_chunks`` times the chunk's size before compression.
    nbytes_wanted
        Bytes of the selection itself.
    amplification
        ``nbytes_read / nbytes_wanted``: 1 is perfect, 100 means 99 bytes wasted per byte used.
    """

    n_chunks: int
    n_files: int
    nbytes_read: int
    nbytes_wanted: int

    @property
    def amplification(self) -> float:
        return self.nbytes_read / self.nbytes_wanted


def _selection_ranges(selection, shape: tuple[int, ...]) -> list[tuple[int, int]]:
    if not isinstance(selection, tuple):
        selection = (selection,)
    if sum(s is Ellipsis for s in selection) > 1:
        raise ValueError("a selection may hold at most one Ellipsis (...).")
    if Ellipsis in selection:
        i = selection.index(Ellipsis)
        selection = selection[:i] + (slice(None),) * (len(shape) - len(selection) + 1) + selection[i + 1 :]
    if len(selection) > len(shape):
        raise ValueError(f"the selection has {len(selection)} entries but the array has {len(shape)} axes.")
    selection = selection + (slice(None),) * (len(shape) - len(selection))
    ranges = []
    for axis, (item, n) in enumerate(zip(selection, shape)):
        if isinstance(item, (int, np.integer)):
            i = int(item) + n if item < 0 else int(item)
            if not 0 <= i < n:
                raise IndexError(f"index {item} is out of bounds for axis {axis} of length {n}.")
            ranges.append((i, i + 1))
        elif isinstance(item, slice):
            start, stop, step = item.indices(n)
            if step != 1:
                raise ValueError(f"only step-1 slices are supported, axis {axis} has step {step}.")
            if stop <= start:
                raise ValueError(f"the slice on axis {axis} selects nothing ({item}); a read must select something.")
            ranges.append((start, stop))
        else:
            raise TypeError(f"axis {axis}: use integers and slices such as 10 or 0:64, got {item!r}.")
    return ranges


def chunks_touched(
    shape: Sequence[int],
    chunks: Sequence[int] | int,
    selection: tuple | int | slice,
    dtype: DTypeLike = "uint16",
    shards: Sequence[int] | int | None = None,
) -> ReadCost:
    """Count the chunks, files and bytes that reading ``array[selection]`` touches.

    Parameters
    ----------
    shape
        The array's shape.
    chunks
        The chunk shape (one integer for every axis, or one per axis).
    selection
        What is read, written as for numpy: integers, step-1 slices and at most
        one ``...``. Build it with :data:`numpy.s_`, e.g. ``np.s_[70, :, :]``.
    dtype
        The data type, for byte counts.
    shards
        A Zarr v3 shard shape, or ``None``; it changes only ``n_files``.

    Returns
    -------
    ReadCost
        Chunks, files, bytes decoded against bytes wanted.

    Raises
    ------
    ValueError, IndexError, TypeError
        If the shapes or the selection do not fit together.

    Examples
    --------
    >>> import numpy as np
    >>> from data_helpers import chunks_touched
    >>> cost = chunks_touched((512, 512, 512), 64, np.s_[:, 100, :])  # one y-slice
    >>> cost.n_chunks, round(cost.amplification)
    (64, 64)
    >>> chunks_touched((512, 512, 512), (1, 512, 512), np.s_[:, 100, :]).n_chunks
    512
    """
    layout = chunk_layout(shape, chunks, dtype, shards)
    ranges = _selection_ranges(selection, layout.shape)
    per_axis = [(stop - 1) // c - start // c + 1 for (start, stop), c in zip(ranges, layout.chunks)]
    shard_lengths = layout.shards or layout.chunks
    files_per_axis = [(stop - 1) // s - start // s + 1 for (start, stop), s in zip(ranges, shard_lengths)]
    n_chunks = math.prod(per_axis)
    wanted = math.prod(stop - start for start, stop in ranges) * layout.dtype.itemsize
    return ReadCost(
        n_chunks=n_chunks,
        n_files=math.prod(files_per_axis),
        nbytes_read=n_chunks * layout.chunk_nbytes,
        nbytes_wanted=wanted,
    )


ACCESS_PATTERNS = ("blocks", "planes")


def suggest_chunk_shape(
    shape: Sequence[int],
    dtype: DTypeLike = "uint16",
    access: Literal["blocks", "planes"] = "blocks",
    target_nbytes: int = 4 * 2**20,
    plane_axis: int = 0,
    voxel_size: Sequence[float] | None = None,
) -> tuple[int, ...]:
    """Suggest a chunk shape for an access pattern and a target chunk size in bytes.

    Lengths are powers of two (or the whole axis), and the chunk stays at or
    below ``target_nbytes`` before compression.

    Parameters
    ----------
    shape
        The array's shape.
    dtype
        The data type.
    access
        ``"blocks"``: reads of 3D sub-volumes, slices in every orientation,
        downsampling, processing in blocks. The chunk is as near a cube as the
        target allows, in physical space if ``voxel_size`` is given.
        ``"planes"``: whole planes across ``plane_axis``, one at a time (slice-by-slice
        processing, export to a TIFF stack). The chunk is one voxel thick on
        that axis and as wide as the target allows on the others.
    target_nbytes
        Upper bound on a chunk's size before compression. The default, 4 MiB,
        is 128³ at 16 bit: big enough that per-chunk overhead is small on a
        local disk and in object stores, small enough that a read of one
        slice does not decode far more than it needs.
    plane_axis
        The axis the planes are taken across, for ``access="planes"``.
    voxel_size
        Physical size of a voxel along each axis. With ``"blocks"`` the chunk
        then covers a similar physical length along each axis.

    Returns
    -------
    tuple of int
        The suggested chunk shape.

    Raises
    ------
    ValueError
        If the access pattern is unknown, the target is smaller than one voxel
        (or one plane row), or ``voxel_size`` does not match ``shape``.

    Examples
    --------
    >>> from data_helpers import suggest_chunk_shape
    >>> suggest_chunk_shape((2048, 2048, 2048), "uint16")
    (128, 128, 128)
    >>> suggest_chunk_shape((2048, 2048, 2048), "uint16", access="planes")
    (1, 1024, 2048)
    >>> suggest_chunk_shape((300, 2048, 2048), "uint16", voxel_size=(4.0, 1.0, 1.0))
    (32, 256, 256)
    """
    shape = _as_shape("shape", shape)
    dtype = _as_dtype(dtype)
    ndim = len(shape)
    if access not in ACCESS_PATTERNS:
        raise ValueError(f"access must be one of {ACCESS_PATTERNS}, got {access!r}.")
    if not isinstance(target_nbytes, (int, np.integer)) or target_nbytes < dtype.itemsize:
        raise ValueError(f"target_nbytes must be an integer of at least one voxel ({dtype.itemsize} bytes), got {target_nbytes!r}.")
    if voxel_size is None:
        spacing = (1.0,) * ndim
    else:
        spacing = tuple(float(v) for v in voxel_size)
        if len(spacing) != ndim or any(not v > 0 for v in spacing):
            raise ValueError(f"voxel_size needs {ndim} positive numbers (one per axis of {shape}), got {voxel_size!r}.")
    chunk = [1] * ndim
    growable = list(range(ndim))
    if access == "planes":
        if not -ndim <= plane_axis < ndim:
            raise ValueError(f"plane_axis must be an axis of a {ndim}D array, got {plane_axis}.")
        growable.remove(plane_axis % ndim)

    def nbytes(c):
        return math.prod(c) * dtype.itemsize

    while True:
        # Grow the axis whose chunk is physically shortest (ties: the last axis, the fastest in memory).
        candidates = [a for a in growable if chunk[a] < shape[a]]
        if not candidates:
            break
        axis = min(candidates, key=lambda a: (chunk[a] * spacing[a], -a))
        trial = list(chunk)
        trial[axis] = min(chunk[axis] * 2, shape[axis])
        if nbytes(trial) > target_nbytes:
            growable.remove(axis)
            continue
        chunk = trial
    return tuple(chunk)
