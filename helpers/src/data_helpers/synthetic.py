"""Synthetic 3D volumes of any size, generated lazily and deterministically.

Benchmarks and chapters that need data bigger than memory use these instead of
a download. The volume looks like a scanned specimen: a round body on a dark
background, with smooth internal structure ("vessels") and a little noise, so
that compressors have something realistic to work on. A label image of the same
regions comes with it.

Every voxel is a function of its global index and the seed alone, so the same
volume comes out whatever chunking you ask for, and any chunk can be computed
on its own. Nothing is held in memory beyond the chunks being computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import dask.array as da
import numpy as np
from dask.base import tokenize

__all__ = ["LABEL_NAMES", "synthetic_labels", "synthetic_volume"]

#: The meaning of each value of :func:`synthetic_labels`.
LABEL_NAMES: dict[int, str] = {0: "background", 1: "tissue", 2: "vessel"}

_DEFAULT_CHUNK = 128


def _check_shape(shape: Sequence[int]) -> tuple[int, int, int]:
    try:
        shape = tuple(int(n) for n in shape)
    except TypeError:
        raise TypeError(f"shape must be a sequence of 3 integers (z, y, x), got {shape!r}.") from None
    if len(shape) != 3 or any(n < 1 for n in shape):
        raise ValueError(f"shape must be 3 positive integers (z, y, x), got {shape!r}.")
    return shape  # type: ignore[return-value]


def _check_chunks(chunks: int | Sequence[int] | None, shape: tuple[int, int, int]) -> tuple[int, int, int]:
    if chunks is None:
        chunks = _DEFAULT_CHUNK
    if isinstance(chunks, (int, np.integer)):
        chunks = (int(chunks),) * 3
    chunks = tuple(int(c) for c in chunks)
    if len(chunks) != 3 or any(c < 1 for c in chunks):
        raise ValueError(f"chunks must be a positive integer or 3 positive integers (z, y, x), got {chunks!r}.")
    return tuple(min(c, n) for c, n in zip(chunks, shape))  # type: ignore[return-value]


class _Field:
    """The smooth field and the body mask, from 1D profiles broadcast together."""

    def __init__(self, shape: tuple[int, int, int], seed: int):
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
        rng = np.random.default_rng(int(seed))
        self.shape = shape
        # Wavelengths scale with the volume, so the structure looks alike at every size.
        self.freq = 2 * np.pi * rng.uniform(3.0, 6.0, size=(2, 3)) / np.array(shape, dtype=float)
        self.phase = rng.uniform(0, 2 * np.pi, size=(2, 3))
        self.centre = np.array(shape, dtype=float) / 2 + rng.uniform(-0.05, 0.05, size=3) * np.array(shape)
        self.radius = 0.42 * np.array(shape, dtype=float)
        self.salt = np.uint32((int(seed) * 0x9E3779B9 + 0x632BE5AB) & 0xFFFFFFFF)

    def profiles(self, block_start: Sequence[int], block_shape: Sequence[int], row: int):
        coords = [np.arange(s, s + n, dtype=np.float32) for s, n in zip(block_start, block_shape)]
        waves = [np.sin(self.freq[row, a] * coords[a] + self.phase[row, a]).astype(np.float32) for a in range(3)]
        return coords, waves

    def block(self, block_start: Sequence[int], block_shape: Sequence[int]):
        """Return (smooth field in [-1, 1], inside-body mask) for one block."""
        coords, w0 = self.profiles(block_start, block_shape, 0)
        _, w1 = self.profiles(block_start, block_shape, 1)
        z, y, x = (slice(None), None, None), (None, slice(None), None), (None, None, slice(None))
        # A sum of two separable products of sines: smooth, cheap, no axis favored.
        field = w0[0][z] * w0[1][y] * w0[2][x]
        field += w1[0][z] * w1[1][y] * w1[2][x]
        field *= np.float32(0.5)
        r = [((c - m) / rad).astype(np.float32) ** 2 for c, m, rad in zip(coords, self.centre, self.radius)]
        inside = (r[0][z] + r[1][y]) + r[2][x] <= 1.0
        return field, inside

    def noise_block(self, block_start: Sequence[int], block_shape: Sequence[int]) -> np.ndarray:
        """Noise of mean 0 and standard deviation 1 that never repeats within a volume of up to 2**32 voxels.

        Each voxel's value is a hash of its global index and the seed, so a block is the same whatever the
        chunking. (Tiling a small block of random numbers would be faster, but its repeats let compressors
        favor large chunks, which real noise never does.)
        """
        z, y, x = (np.arange(s, s + n, dtype=np.uint64).astype(np.uint32) for s, n in zip(block_start, block_shape))
        with np.errstate(over="ignore"):
            plane = (z[:, None] * np.uint32(self.shape[1]) + y[None, :]) * np.uint32(self.shape[2]) + self.salt
            h = plane[:, :, None] + x[None, None, :]
            # lowbias32 integer hash (C. Wellons): every output bit depends on every input bit
            h ^= h >> np.uint32(16)
            h *= np.uint32(0x7FEB352D)
            h ^= h >> np.uint32(15)
            h *= np.uint32(0x846CA68B)
            h ^= h >> np.uint32(16)
        # the sum of the two 16-bit halves: a triangular distribution, then scaled to unit variance
        noise = (h & np.uint32(0xFFFF)).astype(np.float32)
        noise += (h >> np.uint32(16)).astype(np.float32)
        noise -= np.float32(65535)
        noise *= np.float32(1 / (65535 * np.sqrt(2 / 12)))
        return noise


def _block_starts(block_info) -> list[int]:
    return [lo for lo, _ in block_info[None]["array-location"]]


def synthetic_volume(
    shape: Sequence[int] = (256, 256, 256),
    dtype: str | np.dtype = "uint16",
    chunks: int | Sequence[int] | None = None,
    seed: int = 0,
    noise: float = 0.002,
) -> da.Array:
    """A lazily generated, deterministic 3D intensity image of any size.

    A round body of bright, textured "tissue" with smooth darker "vessels", on a
    dark background, plus Gaussian noise. It compresses somewhat like a real
    scan: far better than random numbers, far worse than a constant.

    Parameters
    ----------
    shape
        ``(z, y, x)`` in voxels. Any size: nothing is computed until you ask.
    dtype
        ``"uint8"``, ``"uint16"`` (default), ``"float32"`` or ``"float64"``.
        Values span about 5%-85% of the range: the type's range for integers, 0 to 1 for floats.
    chunks
        Dask chunk shape, one integer for all axes or ``(z, y, x)``. Default 128.
        The values do not depend on the chunks.
    seed
        Selects the volume. The same seed always gives the same voxels.
    noise
        Standard deviation of the noise, as a fraction of the value range.
        The default, 0.2 %, gives a compression ratio near 1.5 with blosc-zstd,
        as on real 16-bit scans; ``0`` gives a noiseless volume, which
        compresses several times better. The noise never repeats, so it does
        not favor large chunks over small ones.

    Returns
    -------
    dask.array.Array
        The volume, not yet computed.

    Raises
    ------
    ValueError
        If the shape, chunks, seed, noise or dtype are not valid.

    Examples
    --------
    >>> from data_helpers import synthetic_volume
    >>> vol = synthetic_volume((64, 64, 64), chunks=32)
    >>> vol
    dask.array<synthetic-volume, shape=(64, 64, 64), dtype=uint16, chunksize=(32, 32, 32), chunktype=numpy.ndarray>
    >>> bool((synthetic_volume((64, 64, 64), chunks=16)[10:20] == vol[10:20]).all())
    True
    """
    shape = _check_shape(shape)
    chunks = _check_chunks(chunks, shape)
    dtype = np.dtype(dtype)
    if dtype not in (np.uint8, np.uint16, np.float32, np.float64):
        raise ValueError(f"dtype must be uint8, uint16, float32 or float64, got {dtype}.")
    if not (0 <= float(noise) <= 1):
        raise ValueError(f"noise is a fraction of the value range and must be in [0, 1], got {noise!r}.")
    model = _Field(shape, seed)
    top = float(np.iinfo(dtype).max) if dtype.kind == "u" else 1.0
    noise = np.float32(noise)

    def make(block_info=None):
        start = _block_starts(block_info)
        bshape = block_info[None]["chunk-shape"]
        field, inside = model.block(start, bshape)
        # background 0.05, tissue 0.55 +- 0.25, vessels dip to about 0.3
        value = np.where(inside, np.float32(0.55) + np.float32(0.3) * field, np.float32(0.05))
        if noise:
            value += noise * model.noise_block(start, bshape)
        np.clip(value, 0, 1, out=value)
        if dtype.kind == "u":
            value *= np.float32(top)
            return np.rint(value, out=value).astype(dtype)
        return value.astype(dtype, copy=False)

    return da.map_blocks(make, dtype=dtype, chunks=da.core.normalize_chunks(chunks, shape), name="synthetic-volume-" + tokenize(shape, chunks, seed, str(dtype), float(noise)))


def synthetic_labels(
    shape: Sequence[int] = (256, 256, 256),
    chunks: int | Sequence[int] | None = None,
    seed: int = 0,
    dtype: Literal["uint8", "uint16", "uint32"] | np.dtype | str = "uint8",
) -> da.Array:
    """The label image that goes with :func:`synthetic_volume` of the same shape and seed.

    Values are ``0`` background, ``1`` tissue and ``2`` vessel (see
    :data:`LABEL_NAMES`). The regions are those of the noiseless intensity
    image: vessels are where the smooth field is low, inside the body.

    Parameters
    ----------
    shape, chunks, seed
        As for :func:`synthetic_volume`. Use the same values to get matching labels.
    dtype
        An unsigned integer type for the labels. Default ``uint8``.

    Returns
    -------
    dask.array.Array
        The labels, not yet computed.

    Raises
    ------
    ValueError
        If the shape, chunks, seed or dtype are not valid.

    Examples
    --------
    >>> import numpy as np
    >>> from data_helpers import synthetic_labels
    >>> labels = synthetic_labels((64, 64, 64), chunks=32)
    >>> np.unique(labels.compute()).tolist()
    [0, 1, 2]
    """
    shape = _check_shape(shape)
    chunks = _check_chunks(chunks, shape)
    dtype = np.dtype(dtype)
    if dtype.kind != "u":
        raise ValueError(f"labels need an unsigned integer dtype (uint8, uint16, uint32), got {dtype}.")
    model = _Field(shape, seed)

    def make(block_info=None):
        start = _block_starts(block_info)
        field, inside = model.block(start, block_info[None]["chunk-shape"])
        labels = inside.astype(dtype)
        labels[inside & (field < -0.3)] = 2
        return labels

    return da.map_blocks(make, dtype=dtype, chunks=da.core.normalize_chunks(chunks, shape), name="synthetic-labels-" + tokenize(shape, chunks, seed, str(dtype)))
