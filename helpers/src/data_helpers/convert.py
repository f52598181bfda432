"""Convert TIFF stacks, multi-page TIFF and HDF5 to OME-Zarr, and OME-Zarr back to TIFF, at bounded memory.

- :func:`tiff_to_ome_zarr`: a folder of 2D TIFF planes, a glob pattern, or one multi-page /
  BigTIFF / OME-TIFF / ImageJ file, read lazily (one plane per task, or tifffile's zarr interface),
  written through :func:`~data_helpers.omezarr.write_ome_zarr`.
- :func:`hdf5_to_ome_zarr`: a 3D dataset of an HDF5 file, read a slab at a time.
- :func:`ome_zarr_to_tiff`: a level of an image, or a region of it, to a folder of TIFF planes or
  one BigTIFF, with the voxel size in the tags that Fiji reads.

Every check runs before anything is written: a bad source or target raises :class:`ConvertError`
(or :class:`~data_helpers.units.UnitError`, :class:`FileExistsError`) and leaves the disk as it was.
"""

from __future__ import annotations

import contextlib
import glob as _glob
import json
import math
import mmap
import os
import re
import shutil
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import dask.array as da
import numpy as np

from data_helpers.omezarr import OmeZarrImage, read_ome_metadata, write_ome_zarr
from data_helpers.reading import level_transform, multiscale_axes
from data_helpers.units import convert_units, normalize_unit
from data_helpers.errors import BookError
from data_helpers.safety import (
    STAGING_OWNER,
    NotOursError,
    NotWritableError,
    UnsafePathError,
    commit_lock,
    entry_identity,
    identity_matches,
    make_staging,
    owned_entries,
    path_inside,
    remove_staging,
    rename_noreplace,
)

__all__ = ["ConvertError", "TiffExport", "hdf5_to_ome_zarr", "ome_zarr_to_tiff", "tiff_to_ome_zarr"]

TIFF_SUFFIXES = (".tif", ".tiff")
EXPORT_MANIFEST = ".made-by-data_helpers-export.json"
_SLAB_BYTES = 64 * 2**20  # an HDF5 read task reads at most this many bytes (see _h5_block)
_EXPORT_SLAB_BYTES = 256 * 2**20  # an export reads this many bytes of planes at most at a time

# ImageJ / Fiji unit strings for the UDUNITS-2 names (Fiji shows "micron" as µm)
_IMAGEJ_UNITS = {"micrometer": "micron", "nanometer": "nm", "millimeter": "mm", "centimeter": "cm",
                 "meter": "m", "angstrom": "A", "picometer": "pm", "kilometer": "km"}
# OME-XML's PhysicalSizeUnit symbols
_OME_UNITS = {"µm": "micrometer", "um": "micrometer", "nm": "nanometer", "mm": "millimeter", "cm": "centimeter",
              "m": "meter", "Å": "angstrom", "pm": "picometer", "km": "kilometer"}


class ConvertError(BookError, ValueError):
    """A source or target that cannot be converted; the message says what is wrong and how to fix it."""


# -- reading TIFF --------------------------------------------------------------------------------------


def _natural_key(name: str) -> list:
    """Sort key where numbers compare as numbers: ``z9`` before ``z10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _plane_files(source: str | os.PathLike) -> tuple[list[Path], str]:
    """The plane files of a folder or glob pattern, naturally sorted, and a description of where they came from."""
    text = os.fspath(source)
    if Path(text).is_dir():
        folder = Path(text)
        files = [p for p in folder.iterdir()
                 if p.suffix.lower() in TIFF_SUFFIXES and not p.name.startswith(".") and p.is_file()]
        where = f"folder {folder}"
        if not files:
            raise ConvertError(f"{where} holds no TIFF files (*.tif, *.tiff); give the folder of the planes, "
                               f"a glob pattern such as '{folder}/z*.tif', or one multi-page TIFF file.")
    else:
        files = [Path(p) for p in _glob.glob(text) if Path(p).is_file()]
        where = f"pattern {text!r}"
        if not files:
            raise ConvertError(f"{where} matches no files; check the folder and the pattern "
                               f"(for example 'scan/z*.tif').")
    files.sort(key=lambda p: _natural_key(p.name))
    return files, where


def _name_template(stem: str) -> str:
    """A file name with each run of digits replaced by ``#``: names of one numbered series share it."""
    return re.sub(r"\d+", "#", stem).lower()


def _check_numbering(files: list[Path], where: str) -> None:
    """Refuse files that do not follow the series' numbering, and a sequence with a gap or a repeated number.

    The series is the name pattern most files share (``z#``: ``z0.tif``, ``z1.tif``, ...); a file named
    otherwise (``overview.tif``, a browser's duplicate ``z2 (1).tif``) is refused by name, with any gap in the
    numbers of the others, rather than sorted in among the planes.
    """
    if len(files) < 2:
        return
    templates = [_name_template(f.stem) for f in files]
    counts: dict[str, int] = {}
    for t in templates:
        counts[t] = counts.get(t, 0) + 1
    series = max(counts, key=lambda t: (counts[t], -templates.index(t)))  # the commonest, the first on a tie
    problems = []
    odd = [f for f, t in zip(files, templates) if t != series]
    if "#" not in series:
        problems.append(f"no plane numbers in the file names ({', '.join(f.name for f in files[:5])}"
                        f"{', ...' if len(files) > 5 else ''}), so their order is unknown")
    elif odd:
        shown = ", ".join(f.name for f in odd[:10]) + (f" and {len(odd) - 10} more" if len(odd) > 10 else "")
        problems.append(f"{shown} {'does' if len(odd) == 1 else 'do'} not follow the numbering of the other "
                        f"planes (names like {files[templates.index(series)].name})")
    kept = [f for f, t in zip(files, templates) if t == series]
    if "#" in series and len(kept) >= 2:
        groups = [[int(n) for n in re.findall(r"\d+", f.stem)] for f in kept]
        # the plane number is the last number that changes from file to file (not a constant channel or date)
        varying = [i for i in range(len(groups[0])) if len({g[i] for g in groups}) > 1]
        numbers = [g[varying[-1] if varying else -1] for g in groups]
        for a, b, fa, fb in zip(numbers, numbers[1:], kept, kept[1:]):
            if b == a:
                raise ConvertError(f"{where}: {fa.name} and {fb.name} carry the same plane number {a}; "
                                   "remove one of them, or give a glob pattern that selects one series.")
        steps = [b - a for a, b in zip(numbers, numbers[1:])]
        step = min(steps)
        for s, a, b, fa, fb in zip(steps, numbers, numbers[1:], kept, kept[1:]):
            if s != step:
                missing = list(range(a + step, b, step))
                shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
                problems.append(f"plane number {shown} is missing between {fa.name} and {fb.name} (the planes "
                                f"are numbered in steps of {step})")
                break
    if problems:
        raise ConvertError(f"{where}: " + "; ".join(problems) + ". Move the odd files out of the folder (or give "
                           "a glob pattern that leaves them out), and restore any missing plane. Nothing was "
                           "written.")


def _page_layout(file: Path) -> tuple[tuple[int, ...], np.dtype, int | None]:
    """Shape and dtype of a TIFF file's first series, and where its data starts if it can be memory-mapped.

    The offset is given only for one uncompressed, contiguous plane in this machine's byte order; a block of
    such planes is then read through ``np.memmap`` without decoding (or even reading) the rest of each plane.
    """
    import tifffile

    try:
        with tifffile.TiffFile(file) as tif:
            series = tif.series[0]
            page = tif.pages.first
            offset = None
            if (len(tif.pages) == 1 and page.is_memmappable and page.dataoffsets
                    and np.dtype(series.dtype).newbyteorder(tif.byteorder).isnative):
                offset = int(page.dataoffsets[0])
            # a file cut short (an interrupted copy) ends before its plane's data: refused now, by name,
            # rather than failing deep inside the conversion
            size = os.fstat(tif.filehandle.fileno()).st_size if hasattr(tif.filehandle, "fileno") else None
            end = max((o + n for o, n in zip(page.dataoffsets or (), page.databytecounts or ())), default=0)
            if size is not None and end > size:
                raise ConvertError(f"{file.name} is truncated: its plane's data ends at byte {end}, but the file "
                                   f"has {size} bytes (an interrupted copy or download?). Copy it again, or move "
                                   "it out of the folder.")
            return tuple(series.shape), np.dtype(series.dtype), offset
    except (tifffile.TiffFileError, OSError, IndexError) as exc:
        raise ConvertError(f"{file} cannot be read as a TIFF file ({exc}); remove it from the folder or "
                           "give a glob pattern that leaves it out.") from exc


class _PlaneStack:
    """A lazy 3D array over one 2D TIFF file per plane: indexing reads only the planes it needs.

    With ``offsets`` (uncompressed planes, see :func:`_page_layout`), each plane is memory-mapped, so a
    block reads only its own rows and columns of each plane; otherwise whole planes are decoded by tifffile.
    """

    def __init__(self, files: list[Path], shape: tuple[int, int], dtype: np.dtype,
                 offsets: list[int] | None = None):
        self.files, self.dtype, self.offsets = files, dtype, offsets
        self.shape = (len(files), *shape)
        self.ndim = 3

    def _plane(self, z: int, rows_cols: tuple, out: np.ndarray) -> None:
        """Copy part of plane ``z`` into ``out``."""
        if self.offsets is None:
            import tifffile

            out[...] = tifffile.imread(self.files[z])[rows_cols]
            return
        rows = rows_cols[0]
        if not (isinstance(rows, slice) and rows.step in (None, 1)):
            out[...] = np.memmap(self.files[z], dtype=self.dtype, mode="r", offset=self.offsets[z],
                                 shape=self.shape[1:])[rows_cols]
            return
        y0, y1, _ = rows.indices(self.shape[1])
        if y1 <= y0:
            return
        # map only the rows wanted, with mmap itself: np.memmap costs more than the copy of a block's rows
        row_bytes = self.shape[2] * self.dtype.itemsize
        start = self.offsets[z] + y0 * row_bytes
        aligned = start - start % mmap.ALLOCATIONGRANULARITY
        fd = os.open(self.files[z], os.O_RDONLY)
        try:
            mapped = mmap.mmap(fd, start - aligned + (y1 - y0) * row_bytes, offset=aligned, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)
        try:
            view = np.frombuffer(mapped, self.dtype, count=(y1 - y0) * self.shape[2], offset=start - aligned)
            out[...] = view.reshape(y1 - y0, self.shape[2])[(slice(None), *rows_cols[1:])]
            del view
        finally:
            mapped.close()

    def __getitem__(self, key):
        if not isinstance(key, tuple):
            key = (key,)
        key = key + (slice(None),) * (3 - len(key))
        zs = range(*key[0].indices(self.shape[0])) if isinstance(key[0], slice) else [key[0]]
        window = np.empty(self.shape[1:], dtype=bool)[key[1:]].shape  # the shape of one plane's part
        out = np.empty((len(zs), *window), self.dtype)  # filled plane by plane: no list of planes to stack
        for i, z in enumerate(zs):
            try:
                self._plane(z, key[1:], out[i])
            except Exception as exc:  # a file cut short or changed since it was checked: name it
                if isinstance(exc, ConvertError):
                    raise
                raise ConvertError(f"{self.files[z]} could not be read as plane {z} ({type(exc).__name__}: {exc}); "
                                   "it may have been truncated or changed during the conversion. Copy it again "
                                   "and convert anew.") from exc
        return out if isinstance(key[0], slice) else out[0]


#: Read blocks of memory-mappable planes: one block of the pyramid's first step (2 x the default chunk of
#: 128 voxels a side), so write_ome_zarr needs neither an intermediate copy nor a rechunk. Blocks 4 times as
#: wide map each page of a 2048-wide plane twice instead of 8 times: on a 4 GiB stack with z coarser they
#: made the conversion about 10 % faster but doubled its peak (helpers/README.md, "Left out: wider blocks").
_MAPPED_BLOCK = (256, 256, 256)


@dataclass
class _Source:
    data: Any
    voxel_size: tuple[float, ...] | None
    unit: str | None
    origin: str  # where the voxel size came from, for messages
    dims: tuple[str, ...] | None = None  # the axes the source itself names (t, c, z, y, x), if it does
    time: tuple[float, str] | None = None  # the interval between time points and its unit, if the source gives it


def _open_plane_folder(source) -> _Source:
    files, where = _plane_files(source)
    _check_numbering(files, where)
    shape, dtype, offset = _page_layout(files[0])
    if len(shape) != 2:
        raise ConvertError(f"{where}: {files[0].name} holds an array of shape {shape}, not one 2D plane; "
                           "convert a multi-page file on its own (give its path), not in a folder of planes.")
    offsets: list[int | None] = [offset]
    for f in files[1:]:
        s, d, o = _page_layout(f)
        if s != shape or d != dtype:
            raise ConvertError(f"{where}: {f.name} is the first odd plane: shape {s}, dtype {d}, where "
                               f"{files[0].name} has shape {shape}, dtype {dtype}. Every plane must have the "
                               "same shape and dtype; remove or fix that file.")
        offsets.append(o)
    if all(o is not None for o in offsets):  # uncompressed planes: read blocks, not whole planes
        stack = _PlaneStack(files, shape, dtype, offsets)
        chunks = tuple(min(c, n) for c, n in zip(_MAPPED_BLOCK, (len(files), *shape)))
    else:
        stack, chunks = _PlaneStack(files, shape, dtype), (1, *shape)
    data = da.from_array(stack, chunks=chunks, name=f"tiff-planes-{id(files)}")
    return _Source(data, None, None, where)


def _tiff_file_metadata(tif, index: int = 0) -> tuple[dict[str, float], str | None]:
    """Voxel size per axis (``z``, ``y``, ``x``) and unit of series ``index`` from OME-XML or ImageJ tags.

    The interval between time points, when the file gives one, is under the key ``"t"``, with its unit
    under ``"t-unit"``.
    """
    import tifffile

    sizes: dict[str, Any] = {}
    unit = None
    if tif.is_ome and tif.ome_metadata:
        image = tifffile.xml2dict(tif.ome_metadata).get("OME", {}).get("Image", {})
        images = image if isinstance(image, list) else [image]
        pixels = images[index].get("Pixels", {}) if index < len(images) else {}
        units = set()
        for ax in "zyx":
            value = pixels.get(f"PhysicalSize{ax.upper()}")
            if value is not None:
                sizes[ax] = float(value)
                units.add(pixels.get(f"PhysicalSize{ax.upper()}Unit", "µm"))
        if len(units) > 1:
            raise ConvertError(f"the OME-XML gives different units per axis ({sorted(units)}); pass voxel_size "
                               "and unit explicitly, in one unit.")
        if units:
            symbol = units.pop()
            unit = _OME_UNITS.get(symbol, symbol)
        if pixels.get("TimeIncrement") is not None:
            sizes["t"], sizes["t-unit"] = float(pixels["TimeIncrement"]), pixels.get("TimeIncrementUnit", "s")
    elif tif.is_imagej and tif.imagej_metadata is not None:
        meta = tif.imagej_metadata
        page = tif.pages.first
        for ax, tag in (("x", "XResolution"), ("y", "YResolution")):
            t = page.tags.get(tag)
            if t is not None:
                num, den = t.value
                if num and den and num / den != 1:  # 1 pixel per unit is ImageJ's "not calibrated"
                    sizes[ax] = den / num
        if "spacing" in meta:
            sizes["z"] = float(meta["spacing"])
        unit = meta.get("unit")
        if isinstance(unit, str):
            unit = unit.replace("\\u00B5", "µ")
            if unit in ("pixel", ""):
                unit, sizes = None, {}
        if meta.get("finterval"):  # ImageJ's frame interval, in seconds unless the file names a unit
            sizes["t"], sizes["t-unit"] = float(meta["finterval"]), meta.get("tunit") or "second"
    return sizes, unit


#: TIFF axis letters (tifffile's) as OME-Zarr axes; a file's other axes (angles, phases, ...) are refused.
_TIFF_AXES = {"T": "t", "C": "c", "Z": "z", "Y": "y", "X": "x"}
#: Axes that tifffile names when a file does not say what they are: taken as z when there is no Z axis.
_UNNAMED_AXES = "QIS"


def _series_list(tif) -> str:
    return "; ".join(f"{i}: shape {tuple(s.shape)}, axes {s.axes}, name {s.name or '(none)'!r}"
                     for i, s in enumerate(tif.series))


def _file_dims(file: Path, shape: tuple[int, ...], axes: str) -> tuple[list[int], tuple[str, ...]]:
    """Which axes of a TIFF series to keep, and their OME-Zarr names in OME-Zarr's t, c, z, y, x order.

    Axes of length 1 are dropped (except y and x). Channels and time points stay ``c`` and ``t`` axes: they
    are never taken for z, which would put channels a voxel size apart in space.
    """
    kept = [i for i, (n, a) in enumerate(zip(shape, axes)) if n != 1 or a in "YX"]
    letters = [axes[i] for i in kept]
    unnamed = [a for a in letters if a in _UNNAMED_AXES]
    if unnamed and len(unnamed) == 1 and "Z" not in letters:
        letters = ["Z" if a in _UNNAMED_AXES else a for a in letters]
    odd = [a for a in letters if a not in _TIFF_AXES]
    if odd or len(set(letters)) != len(letters) or letters[-2:] != ["Y", "X"]:
        raise ConvertError(f"{file} holds axes {axes!r} of shape {shape}; this converter takes the axes T (time), "
                           "C (channel), Z, Y and X, with Y and X last, each once. Axes "
                           f"{''.join(sorted(set(odd))) or axes!r} cannot be placed: split or reorder the file "
                           "first (for example with tifffile), and convert the parts.")
    names = [_TIFF_AXES[a] for a in letters]
    order = sorted(range(len(names)), key=lambda i: "tczyx".index(names[i]))
    return [kept[i] for i in order], tuple(names[i] for i in order)


def _open_tiff_file(file: Path, series: int | None = None) -> _Source:
    import tifffile
    import zarr

    try:
        with tifffile.TiffFile(file) as tif:
            n_series = len(tif.series)
            if series is None and n_series > 1:
                raise ConvertError(f"{file} holds {n_series} series (images), and which one to convert is not "
                                   f"clear: {_series_list(tif)}. Pass series=INDEX (command line: --series INDEX), "
                                   "and convert each series you want to its own OME-Zarr image.")
            if series is not None and (isinstance(series, bool) or not isinstance(series, (int, np.integer))):
                raise ConvertError(f"series={series!r}; give the index of a series, 0 to {n_series - 1}.")
            index = 0 if series is None else int(series)
            if not 0 <= index < n_series:
                raise ConvertError(f"series={series!r}, but {file} holds {n_series} series: {_series_list(tif)}.")
            chosen = tif.series[index]
            shape, axes = tuple(chosen.shape), chosen.axes
            sizes, unit = _tiff_file_metadata(tif, index)
    except (tifffile.TiffFileError, IndexError) as exc:
        raise ConvertError(f"{file} cannot be read as a TIFF file ({exc}).") from exc
    kept, dims = _file_dims(file, shape, axes)
    if len(dims) == 2:
        raise ConvertError(f"{file} holds one 2D plane (shape {shape}); a 3D image needs a z axis. Give the "
                           "folder or glob pattern of all the planes, or pass dims=('y', 'x') to write a 2D image.")
    store = tifffile.imread(file, aszarr=True, series=index, level=0)
    arr = zarr.open(store, mode="r")
    if hasattr(arr, "shape") is False or not hasattr(arr, "dtype"):  # a multiscale group: level 0
        arr = arr["0"]
    data = da.from_zarr(arr)
    data = data.reshape(tuple(n for n, a in zip(shape, axes))) if data.shape != shape else data
    data = data.transpose(kept + [i for i in range(len(shape)) if i not in kept])  # kept axes first, in order
    data = data.reshape(tuple(shape[i] for i in kept))  # drop the axes of length 1
    spatial = [d for d in dims if d in "zyx"]
    voxel = tuple(sizes.get(a) for a in spatial)
    time = (sizes["t"], sizes["t-unit"]) if "t" in dims and "t" in sizes else None
    if all(v is not None for v in voxel) and unit:
        return _Source(data, tuple(float(v) for v in voxel), unit, f"the metadata of {file.name}", dims, time)
    shown = {k: v for k, v in sizes.items() if k in "zyx"} or "no voxel size"
    return _Source(data, None, None, f"{file.name} (metadata: {shown})", dims, time)


def _open_tiff(source, series: int | None = None) -> _Source:
    text = os.fspath(source)
    if Path(text).is_file():
        return _open_tiff_file(Path(text), series)
    if not Path(text).exists() and not any(ch in text for ch in "*?["):
        raise ConvertError(f"{text} does not exist; give a folder of TIFF planes, a glob pattern, or a TIFF file.")
    if series is not None:
        raise ConvertError(f"series={series!r} applies to one multi-series TIFF file; {text} is a folder or "
                           "pattern of planes. Leave series out.")
    return _open_plane_folder(source)


# -- writing --------------------------------------------------------------------------------------------


def _resolve_voxel_size(src: _Source, voxel_size, unit, n_space: int) -> tuple[tuple[float, ...] | float, str]:
    """The voxel size and unit to write: explicit, or the source's own, converted to ``unit`` when one is given."""
    if voxel_size is not None:
        if unit is None:
            raise ConvertError("voxel_size was given without its unit; pass unit= too (for example unit='micrometer').")
        return voxel_size, normalize_unit(unit)
    if unit is not None and src.voxel_size is None:
        normalize_unit(unit)  # an unknown unit is the first thing to report
    if src.voxel_size is not None:
        found = src.voxel_size[-n_space:]
        if unit is None:
            return found, normalize_unit(src.unit)
        # a unit alone asks for the source's own voxel size in that unit: 0.65 um becomes 650 nm, never 0.65 nm
        return convert_units(found, src.unit, unit), normalize_unit(unit)
    raise ConvertError(
        f"no voxel size in {src.origin}. Pass it explicitly in z, y, x order with its unit, e.g. "
        "voxel_size=(2.0, 0.65, 0.65), unit='micrometer' (command line: --voxel-size 2.0 0.65 0.65 --unit um). "
        "A voxel size of 1 is never assumed.")


def _check_new_target(path, write_options: dict) -> None:
    target = Path(path)
    if (target.exists() or target.is_symlink()) and not write_options.get("overwrite", False):
        raise FileExistsError(f"{target} already exists; choose a new path, or pass overwrite=True to replace an "
                              "image that this package wrote there (nothing else is ever replaced).")
    # the writer makes missing parent folders; the nearest existing one must be a folder that takes new entries
    folder = target.absolute().parent
    while not (folder.exists() or folder.is_symlink()) and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ConvertError(f"{folder} is a file, not a folder, so {target} cannot be created; choose another "
                           "target.")
    # a folder that refuses new entries (read-only, or a system folder such as /proc or /sys, where even root
    # may not write) is found here, before anything is read: a hidden probe folder is made and removed at once
    import tempfile

    try:
        probe = tempfile.mkdtemp(prefix=f".{target.name}.probe-", dir=folder)
    except OSError as exc:
        raise NotWritableError(f"cannot create {target.name} in {folder} ({exc.strerror or exc}); choose a target "
                               "inside a folder of yours (the chapter's output folder, your home folder).") from None
    os.rmdir(probe)


def _check_before_reading(path, unit, write_options: dict) -> None:
    """The checks that need no source: the target is new (or may be replaced) and can be made, the unit is known."""
    _check_new_target(path, write_options)
    if unit is not None:
        normalize_unit(unit)


def _write(src: _Source, path, voxel_size, unit, dims, write_options) -> OmeZarrImage:
    """Resolve the voxel size (explicit, or from the source's metadata) and write ``src`` as OME-Zarr."""
    data = src.data
    if dims is None:
        dims = src.dims or (("y", "x") if data.ndim == 2 else ("z", "y", "x"))
    n_space = sum(d in ("z", "y", "x") for d in dims)
    voxel_size, unit = _resolve_voxel_size(src, voxel_size, unit, n_space)
    if "t" in dims and src.time is not None and "time_step" not in write_options:
        # the file's own interval between time points, unless the caller gives one (in the caller's unit, if any)
        time_unit = write_options.get("time_unit", src.time[1])
        step = convert_units(src.time[0], src.time[1], time_unit, kind="time")[0]
        write_options = {**write_options, "time_step": step, "time_unit": time_unit}
    return write_ome_zarr(data, path, voxel_size=voxel_size, unit=unit, dims=dims, **write_options)


def tiff_to_ome_zarr(
    source: str | os.PathLike,
    path: str | os.PathLike,
    *,
    voxel_size: float | Sequence[float] | None = None,
    unit: str | None = None,
    dims: Sequence[str] | None = None,
    series: int | None = None,
    **write_options: Any,
) -> OmeZarrImage:
    """Convert a TIFF stack or a multi-page TIFF file to an OME-Zarr image, reading it lazily.

    Parameters
    ----------
    source
        A folder of 2D TIFF planes (one file per z, sorted by their numbers, so
        ``z10`` comes after ``z9``), a glob pattern (``"scan/z*.tif"``), or one
        multi-page, BigTIFF, OME-TIFF or ImageJ file. Planes are read one per
        task; a single file through tifffile's zarr interface. Every plane file
        must follow one numbering (``z0.tif``, ``z1.tif``, ...) without gaps: a
        file named otherwise (``overview.tif``, ``z2 (1).tif``) is refused by
        name. A file's channels and time points (ImageJ or OME axes ``C``,
        ``T``) become ``c`` and ``t`` axes, never z.
    path
        The OME-Zarr folder to create. An existing path is refused unless
        ``overwrite=True`` is passed (then only an image this package wrote
        there is replaced, as :func:`~data_helpers.omezarr.write_ome_zarr` does).
    voxel_size
        Voxel size in z, y, x order (or one number). Default: the OME-XML
        ``PhysicalSize*`` or the ImageJ ``spacing`` and resolution tags of the
        file. An explicit value wins over the metadata. When neither is there,
        :class:`ConvertError` says how to pass it: 1 is never assumed.
    unit
        Unit of ``voxel_size`` (``"um"``, ``"micrometer"``, ...); required with
        an explicit ``voxel_size``. Given alone, it is the unit to write: the
        file's own voxel size is converted into it (0.65 µm is written as
        650 nm with ``unit="nm"``).
    dims
        Axis names; default ``("z", "y", "x")``, or the file's own axes
        (``("c", "z", "y", "x")``, ``("t", "y", "x")``, ...). ``("y", "x")``
        accepts a single 2D plane.
    series
        Which series (image) of a multi-series file, such as an OME-TIFF with
        several images: 0, 1, ... A file with more than one series is refused
        without it, with a list of its series (index, shape, name).
    **write_options
        Passed to :func:`~data_helpers.omezarr.write_ome_zarr` (``version``,
        ``chunks``, ``n_levels``, ``overwrite``, ``progress``, ...).

    Returns
    -------
    OmeZarrImage
        The image written.

    Raises
    ------
    ConvertError
        An empty folder, planes of different shapes or dtypes (naming the first
        odd file), files outside the numbering or a missing plane, a truncated
        plane file, a multi-series file without ``series``, a 2D source where
        3D is wanted, or no voxel size. Nothing is written.
    NotWritableError
        The target's folder cannot be written to (read-only, or a system
        folder such as ``/proc``); found before anything is read.
    UnitError
        An unknown unit.
    FileExistsError
        ``path`` exists (without ``overwrite=True``).

    Examples
    --------
    >>> import tempfile, numpy as np, tifffile
    >>> from data_helpers import tiff_to_ome_zarr
    >>> folder = tempfile.mkdtemp()
    >>> for z in range(4):
    ...     tifffile.imwrite(f"{folder}/z{z}.tif", np.full((8, 8), z, np.uint8))
    >>> image = tiff_to_ome_zarr(folder, f"{folder}/scan.ome.zarr", voxel_size=(2, 0.5, 0.5), unit="um")
    >>> image.shapes[0]
    (4, 8, 8)
    """
    _check_before_reading(path, unit, write_options)
    if dims is not None and len(dims) == 2:
        file = Path(os.fspath(source))
        import tifffile

        data = da.from_array(tifffile.imread(file)) if file.is_file() else None
        if data is None or data.ndim != 2:
            raise ConvertError(f"dims={tuple(dims)} asks for a 2D image; give one TIFF file that holds one plane.")
        src = _Source(data, None, None, file.name)
    else:
        src = _open_tiff(source, series)
    return _write(src, path, voxel_size, unit, dims, write_options)


# -- HDF5 -------------------------------------------------------------------------------------------------


class _H5Slabs:
    """A lazy view of an HDF5 dataset: each read opens the file, reads its slab and closes it (thread-safe)."""

    def __init__(self, file: Path, name: str, shape: tuple[int, ...], dtype: np.dtype):
        self.file, self.name, self.shape, self.dtype, self.ndim = file, name, shape, dtype, len(shape)

    def __getitem__(self, key):
        import h5py

        with h5py.File(self.file, "r") as f:
            return f[self.name][key]


def _h5_block(shape: tuple[int, ...], itemsize: int, h5chunks: tuple[int, ...] | None,
              budget: int) -> tuple[int, ...]:
    """The block that one read of an HDF5 dataset takes: at most ``budget`` bytes, whatever the chunking.

    Whole HDF5 chunks where they fit, so that no chunk is decompressed twice: as many whole planes (or chunk
    depths) as fit, else one chunk depth of whole chunk rows, and so on. When a single HDF5 chunk is larger
    than the budget, the block cuts through it: as many planes as fit (or rows of one plane, ...).
    """
    grain = list(h5chunks) if h5chunks else [1] * len(shape)
    block = list(shape)
    for i in range(len(shape)):
        per_unit = math.prod(block[:i]) * math.prod(shape[i + 1:]) * itemsize * grain[i]
        units = budget // max(1, per_unit)
        if units >= 1:
            block[i] = min(shape[i], units * grain[i])
            return tuple(block)
        block[i] = min(grain[i], shape[i])  # one chunk deep along this axis; cut the next axis
    for i in range(len(shape)):  # even one HDF5 chunk is over the budget: cut inside it
        per_unit = math.prod(block[i + 1:]) * itemsize
        if per_unit <= budget:
            block[i] = max(1, min(block[i], budget // per_unit))
            return tuple(block)
        block[i] = 1
    return tuple(block)


def _h5_dataset(f, file: Path, dataset: str):
    """The dataset at ``dataset`` in the open file ``f``; a clear error for a missing one or a broken link."""
    import h5py

    names: list[str] = []
    f.visititems(lambda n, obj: names.append("/" + n) if isinstance(obj, h5py.Dataset) else None)
    listing = f"its datasets are: {', '.join(names[:20]) or 'none'}{', ...' if len(names) > 20 else ''}"
    if not isinstance(dataset, str) or not dataset.strip("/"):
        raise ConvertError(f"dataset={dataset!r}: give the path of a dataset inside {file.name}; {listing}.")
    parts = [p for p in dataset.split("/") if p]
    for depth in range(1, len(parts) + 1):
        here = "/" + "/".join(parts[:depth])
        try:
            link = f.get(here, getlink=True)
        except (KeyError, ValueError, RuntimeError):
            link = None
        if link is None:
            raise ConvertError(f"{file} has no dataset {dataset!r}; {listing}.")
        try:
            f[here]
        except (KeyError, OSError, ValueError, RuntimeError):
            if isinstance(link, h5py.ExternalLink):
                target = f"{link.path!r} in the file {link.filename!r}"
            elif isinstance(link, h5py.SoftLink):
                target = repr(link.path)
            else:
                target = None
            what = "an external link" if isinstance(link, h5py.ExternalLink) else "a soft link"
            if target is None:
                raise ConvertError(f"{here} in {file} cannot be opened; {listing}.") from None
            raise ConvertError(f"{here} in {file} is {what} to {target}, which does not exist (a broken link). "
                               f"Give the dataset's own path, or restore what the link points to; {listing}.") from None
    obj = f[dataset]
    if not isinstance(obj, h5py.Dataset):
        raise ConvertError(f"{dataset!r} in {file} is a group, not a dataset; {listing}.")
    return obj


def _element_size(attr, ndim: int, dataset: str, file: Path) -> tuple[float, ...]:
    """The ``element_size_um`` attribute as one finite, positive number per axis, or a clear error."""
    values = np.asarray(attr)
    if values.ndim != 1 or len(values) != ndim:
        raise ConvertError(f"the 'element_size_um' attribute of {dataset!r} in {file.name} is {attr!r}; it must "
                           f"hold one number per axis ({ndim}, in z, y, x order). Pass the voxel size explicitly "
                           "instead: voxel_size=(z, y, x), unit='micrometer'.")
    try:
        found = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        found = ()
    if len(found) != ndim or not all(math.isfinite(v) and v > 0 for v in found):
        raise ConvertError(f"the 'element_size_um' attribute of {dataset!r} in {file.name} is {attr!r}, not "
                           "finite positive numbers. Pass the voxel size explicitly instead: voxel_size=(z, y, x), "
                           "unit='micrometer'.")
    return found


def hdf5_to_ome_zarr(
    source: str | os.PathLike,
    dataset: str,
    path: str | os.PathLike,
    *,
    voxel_size: float | Sequence[float] | None = None,
    unit: str | None = None,
    dims: Sequence[str] | None = None,
    **write_options: Any,
) -> OmeZarrImage:
    """Convert a 3D dataset of an HDF5 file to an OME-Zarr image, reading it a slab of planes at a time.

    Each read takes at most 64 MiB, whatever the dataset's chunking: whole
    HDF5 chunks where they fit (so none is decompressed twice), else part of
    a chunk depth. The HDF5 library still decompresses a compressed chunk
    whole, so a dataset whose single chunks are larger than that needs that
    much memory whatever reads it.

    Parameters
    ----------
    source
        The HDF5 file (``.h5``, ``.hdf5``, ``.nxs``, ...).
    dataset
        The dataset's path inside the file, e.g. ``"/entry/data/data"``.
    path
        The OME-Zarr folder to create (an existing path is refused unless ``overwrite=True``).
    voxel_size
        Voxel size in z, y, x order. Default: the dataset's ``element_size_um``
        attribute (the convention of ilastik and Fiji's HDF5 plugin), in
        micrometres. When neither is there, :class:`ConvertError` says how to pass it.
    unit
        Unit of ``voxel_size``; required with an explicit ``voxel_size``. Given
        alone, ``element_size_um`` is converted into it (``unit="nm"``: 0.65
        becomes 650).
    dims
        Axis names; default ``("z", "y", "x")``.
    **write_options
        Passed to :func:`~data_helpers.omezarr.write_ome_zarr`.

    Returns
    -------
    OmeZarrImage
        The image written.

    Raises
    ------
    ConvertError
        A missing file or dataset (the message lists the datasets there are), a broken soft or external link,
        a dataset that is not 3D, no voxel size or an ``element_size_um`` that is not one number per axis.
    NotWritableError
        The target's folder cannot be written to (read-only, or a system folder such as ``/proc``).
    FileExistsError
        ``path`` exists (without ``overwrite=True``).

    Examples
    --------
    >>> import tempfile, numpy as np, h5py
    >>> from data_helpers import hdf5_to_ome_zarr
    >>> folder = tempfile.mkdtemp()
    >>> with h5py.File(f"{folder}/scan.h5", "w") as f:
    ...     _ = f.create_dataset("volume", data=np.zeros((4, 8, 8), np.uint16), chunks=(1, 8, 8))
    >>> image = hdf5_to_ome_zarr(f"{folder}/scan.h5", "volume", f"{folder}/scan.ome.zarr", voxel_size=1.5, unit="um")
    >>> image.shapes[0]
    (4, 8, 8)
    """
    import h5py

    _check_before_reading(path, unit, write_options)
    file = Path(source)
    if not file.is_file():
        raise ConvertError(f"{file} is not a file; give the path of the HDF5 file.")
    try:
        with h5py.File(file, "r") as f:
            ds = _h5_dataset(f, file, dataset)
            shape, dtype, h5chunks = tuple(ds.shape), ds.dtype, ds.chunks
            attr = ds.attrs.get("element_size_um")
    except OSError as exc:
        raise ConvertError(f"{file} cannot be read as an HDF5 file ({exc}).") from exc
    want = len(dims) if dims is not None else 3
    if len(shape) != want:
        raise ConvertError(f"dataset {dataset!r} in {file} has shape {shape} ({len(shape)}D); a {want}D dataset "
                           "is needed (pass dims= for other axes, or select a 3D dataset).")
    block = _h5_block(shape, dtype.itemsize, h5chunks, _SLAB_BYTES)
    data = da.from_array(_H5Slabs(file, dataset, shape, dtype), chunks=block,
                         name=f"hdf5-{file.name}-{dataset}-{id(file)}")
    origin = f"dataset {dataset!r} of {file.name} (no 'element_size_um' attribute)"
    found = _element_size(attr, len(shape), dataset, file) if attr is not None and voxel_size is None else None
    src = _Source(data, found, "micrometer" if found else None, origin)
    return _write(src, path, voxel_size, unit, dims, write_options)


# -- export to TIFF ---------------------------------------------------------------------------------------


@dataclass
class TiffExport:
    """What :func:`ome_zarr_to_tiff` wrote: where, which region of which level, and its voxel size."""

    target: Path
    files: list[Path]
    level: int
    offset: tuple[int, ...]  # first voxel of the region, in the level's voxel indices (z, y, x)
    shape: tuple[int, ...]
    voxel_size: tuple[float, ...]
    unit: str
    origin: tuple[float, ...] = field(default=())  # physical position of the region's first voxel

    def __str__(self) -> str:
        return (f"{self.target}: level {self.level}, voxels {self.offset} + {self.shape}, voxel size "
                f"{self.voxel_size} {self.unit}, {len(self.files)} file(s)")


def _region_slices(region, shape, scale, translation, coordinates: str) -> tuple[slice, ...]:
    if coordinates not in ("voxel", "physical"):
        raise ConvertError(f"coordinates={coordinates!r}; use 'voxel' or 'physical'.")
    if region is None:
        return tuple(slice(0, n) for n in shape)
    if isinstance(region, (str, bytes, slice)) or not hasattr(region, "__len__"):
        raise ConvertError(f"region={region!r}: give one entry per axis (z, y, x), e.g. "
                           "region=(slice(0, 10), slice(None), slice(20, 60)).")
    if len(region) != len(shape):
        raise ConvertError(f"region has {len(region)} entries; the image has {len(shape)} axes (z, y, x).")

    def whole(v) -> bool:
        return v is None or (isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)))

    def real(v) -> bool:
        return v is None or (isinstance(v, (int, float, np.integer, np.floating))
                             and not isinstance(v, (bool, np.bool_)) and math.isfinite(v))

    out = []
    for ax, (r, n, s, t) in enumerate(zip(region, shape, scale, translation)):
        if coordinates == "voxel":
            if not isinstance(r, slice) or r.step not in (None, 1):
                raise ConvertError(f"region[{ax}] = {r!r}: in voxel coordinates give slices without a step, "
                                   "e.g. region=(slice(0, 10), slice(None), slice(20, 60)).")
            if not (whole(r.start) and whole(r.stop)):
                raise ConvertError(f"region[{ax}] = {r!r}: voxel bounds are whole numbers (or None for an open "
                                   "end); for bounds in the image's unit pass coordinates='physical'.")
            start, stop, _ = r.indices(n)
        else:
            pair = (r.start, r.stop) if isinstance(r, slice) else r
            if isinstance(r, slice) and r.step is not None:
                raise ConvertError(f"region[{ax}] = {r!r}: a physical range has no step.")
            if isinstance(pair, (str, bytes)) or not hasattr(pair, "__len__") or len(pair) != 2:
                raise ConvertError(f"region[{ax}] = {r!r}: in physical coordinates give a (start, stop) pair "
                                   "per axis in the image's unit, None for an open end, e.g. (12.5, 40.0).")
            lo, hi = pair
            if not (real(lo) and real(hi)):
                raise ConvertError(f"region[{ax}] = {r!r}: bounds must be finite numbers in the image's unit "
                                   "(or None for an open end); infinity and NaN are not positions.")
            if lo is not None and hi is not None and hi <= lo:
                raise ConvertError(f"region[{ax}] = {r!r}: the stop must be greater than the start.")

            def first_index(v, n=n, s=s, t=t) -> int:
                """The first voxel whose centre is at ``v`` or beyond, clipped to 0..n (huge bounds too)."""
                q = (v - t) / s - 1e-9
                return 0 if q <= 0 else n if q >= n else math.ceil(q)

            # voxel i is centred at t + i * s; take the voxels whose centres lie in [lo, hi)
            start = 0 if lo is None else first_index(lo)
            stop = n if hi is None else first_index(hi)
        if stop <= start:
            raise ConvertError(f"region[{ax}] = {r!r} selects no voxel of an axis of {n} voxels "
                               f"(scale {s}, translation {t}).")
        out.append(slice(start, stop))
    return tuple(out)


def _manifest_path(target: Path, multipage: bool) -> Path:
    """Where an export's manifest is: inside the folder, or beside the multi-page file."""
    return target.with_name(f".{target.name}{EXPORT_MANIFEST}") if multipage else target / EXPORT_MANIFEST


def _read_manifest(manifest: Path) -> dict | None:
    """An export manifest, or None if there is none, it is a link, or it is not a record of this package."""
    if manifest.is_symlink() or not manifest.is_file():
        return None
    try:
        record = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("files"), dict) else None


def _recorded_files(files: dict) -> dict:
    """The manifest's ``{name: identity}``; an older manifest's ``[size, mtime_ns]`` is read as a file's identity."""
    return {name: {"kind": "file", "size": ident[0], "mtime_ns": ident[1]}
            if isinstance(ident, list) and len(ident) == 2 else ident for name, ident in files.items()}


def _own_files(target: Path, multipage: bool) -> tuple[list[str], dict]:
    """The files an earlier export wrote at ``target``, checked on disk by the safety rules; raise if anything else is there.

    Returns the names (inside the folder ``target``, or ``[target.name]`` for a multi-page file) and the
    identities the manifest recorded of them.
    """
    record = _read_manifest(_manifest_path(target, multipage))
    refuse = NotOursError(f"{target} exists and was not written by ome_zarr_to_tiff (or was changed since); "
                          "it is never replaced. Choose a new target, or move it away yourself.")
    if target.is_symlink() or record is None or record.get("target") != str(target.resolve()):
        raise refuse
    files = _recorded_files(record["files"])
    if multipage:
        if list(files) != [target.name] or owned_entries(target.parent, files) != [target.name]:
            raise refuse
        return [target.name], files
    if not target.is_dir():
        raise refuse
    names = owned_entries(target, files)  # refuses a name that is not plain, or a file changed since
    for entry in os.scandir(target):
        if entry.name != EXPORT_MANIFEST and entry.name not in names:
            raise NotOursError(f"{target} holds {entry.name}, which ome_zarr_to_tiff did not write (or which "
                               "changed since); the folder is never replaced. Choose a new target.")
    return names, files


def _commit_new(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target``, which must not exist; one made meanwhile by someone else wins."""
    try:
        rename_noreplace(source, target)
    except FileExistsError:
        raise FileExistsError(f"{target} was created by someone else while this export ran, so this export was "
                              "discarded; nothing was replaced.") from None


def _commit_planes(staging: Path, target: Path, replace: bool) -> None:
    """Move a folder of planes from ``staging`` to ``target``; an earlier export there goes only if it is ours."""
    if not replace or not os.path.lexists(target):  # nothing there (an earlier export removed meanwhile)
        _commit_new(staging, target)
        return
    names, files = _own_files(target, multipage=False)  # again, now that the commit lock is held
    aside = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:12]}")
    rename_noreplace(target, aside)
    try:
        if sorted(owned_entries(aside, files)) != sorted(names) or any(
                e.name not in names and e.name != EXPORT_MANIFEST for e in os.scandir(aside)):
            raise NotOursError(f"{target} changed while this export ran, so it was not replaced; nothing was "
                               "deleted. Run the export again.")
        rename_noreplace(staging, target)
    except BaseException:
        rename_noreplace(aside, target)
        raise
    for name in [*names, EXPORT_MANIFEST]:
        with contextlib.suppress(FileNotFoundError):
            (aside / name).unlink()
    try:
        aside.rmdir()
    except OSError:
        warnings.warn(f"{aside} holds something that appeared during the export; it was left there for you.",
                      RuntimeWarning, stacklevel=3)


def _commit_file(staging: Path, target: Path, replace: bool) -> None:
    """Move a multi-page file from ``staging`` to ``target``; an earlier export there goes only if it is ours."""
    if not replace or not os.path.lexists(target):  # nothing there (an earlier export removed meanwhile)
        _commit_new(staging / target.name, target)
        return
    _, files = _own_files(target, multipage=True)  # again, now that the commit lock is held
    aside = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:12]}")
    rename_noreplace(target, aside)
    try:
        if not identity_matches(aside, files[target.name]):
            raise NotOursError(f"{target} changed while this export ran, so it was not replaced. Run it again.")
        rename_noreplace(staging / target.name, target)
    except BaseException:
        rename_noreplace(aside, target)
        raise
    aside.unlink()


def _imagej_unit(unit: str) -> str:
    return _IMAGEJ_UNITS.get(unit, unit)


def ome_zarr_to_tiff(
    path: str | os.PathLike,
    target: str | os.PathLike,
    *,
    level: int = 0,
    region: Sequence[slice | tuple[float | None, float | None]] | None = None,
    coordinates: str = "voxel",
    multipage: bool = False,
    overwrite: bool = False,
) -> TiffExport:
    """Export a level of an OME-Zarr image, or a region of it, to TIFF that Fiji reads with its voxel size.

    Parameters
    ----------
    path
        A 3D (z, y, x) OME-Zarr image folder.
    target
        With ``multipage=False``: a folder to create, which gets one 2D TIFF per
        plane (``z0000.tif``, ...). With ``multipage=True``: one BigTIFF file.
    level
        The pyramid level (0 is full resolution).
    region
        Which part, one entry per axis in z, y, x order. With
        ``coordinates="voxel"`` (default): slices of the level's voxel indices,
        ``(slice(10, 20), slice(None), slice(0, 64))``. With
        ``coordinates="physical"``: ``(start, stop)`` pairs in the image's unit,
        translation included; the voxels whose centres lie in ``[start, stop)``
        are taken (``None`` for an open end). Default: the whole level.
    coordinates
        ``"voxel"`` or ``"physical"``: how ``region`` is given.
    multipage
        One multi-page BigTIFF instead of a folder of planes.
    overwrite
        Replace an earlier export at ``target``. Only files this function wrote
        there (listed by plain name in its manifest,
        ``.made-by-data_helpers-export.json``, and unchanged since: same kind,
        size and modification time) are replaced; anything else at ``target``
        makes it refuse. The export is written into a hidden staging folder
        beside ``target`` and moved into place at the end, never over a file
        that appeared meanwhile (see :mod:`data_helpers.safety`).

    Returns
    -------
    TiffExport
        The files written, the region's voxel offset and shape in the level,
        its physical origin, and the voxel size and unit written in the tags.

    Raises
    ------
    FileExistsError
        ``target`` exists (without ``overwrite=True``, or holds files this function did not write:
        :class:`~data_helpers.safety.NotOursError`), or was created by another writer during the export.
    ConvertError
        A level or region that the image does not have (``level`` must be a whole number, not a bool), a
        dataset path in the metadata that leads out of the image, or a dtype that ImageJ cannot read.
    NotWritableError
        ``target``'s folder cannot be written (a system or read-only folder, no permission).

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from data_helpers import ome_zarr_to_tiff, write_ome_zarr
    >>> folder = tempfile.mkdtemp()
    >>> _ = write_ome_zarr(np.zeros((4, 16, 16), np.uint16), f"{folder}/a.ome.zarr", voxel_size=(2, 1, 1), unit="um")
    >>> out = ome_zarr_to_tiff(f"{folder}/a.ome.zarr", f"{folder}/planes", region=(slice(1, 3), slice(None), slice(None)))
    >>> len(out.files), out.offset, out.shape
    (2, (1, 0, 0), (2, 16, 16))
    """
    import tifffile
    import zarr

    source, target = Path(path), Path(target)
    meta = read_ome_metadata(source)
    ms = meta["multiscales"][0]
    axes_meta = multiscale_axes(ms)  # 0.4 and 0.5: "axes"; 0.6: those of the coordinate system
    axes = [a["name"] for a in axes_meta]
    if axes != ["z", "y", "x"]:
        raise ConvertError(f"{source} has axes {axes}; export takes 3D images with axes z, y, x.")
    datasets = ms["datasets"]
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level < len(datasets):
        raise ConvertError(f"level={level!r}; {source} has levels 0 to {len(datasets) - 1} (a whole number, "
                           "not True or False).")
    scale, translation = level_transform(datasets[level], 3)  # 0.6: its sequence of scale and translation
    unit = axes_meta[2].get("unit") or "pixel"
    try:
        level_path = path_inside(source, datasets[level].get("path"), f"dataset path of level {level}")
    except UnsafePathError as error:
        raise ConvertError(str(error).split("\nTroubleshooting:")[0]) from None
    arr = zarr.open_array(level_path, mode="r")
    if arr.dtype not in (np.uint8, np.uint16, np.float32):
        raise ConvertError(f"level {level} has dtype {arr.dtype}; Fiji reads 8- and 16-bit unsigned and 32-bit "
                           "float TIFF. Convert a copy first (e.g. to float32) and export that.")
    sl = _region_slices(region, arr.shape, scale, translation, coordinates)
    replace = target.exists() or target.is_symlink()
    if replace:
        if not overwrite:
            raise FileExistsError(f"{target} already exists; choose a new target, or pass overwrite=True to "
                                  "replace an earlier export there (only the files it wrote are replaced).")
        _own_files(target, multipage)
    if not target.parent.is_dir():
        raise ConvertError(f"{target.parent} is not a folder; create it first.")
    offset = tuple(s.start for s in sl)
    shape = tuple(s.stop - s.start for s in sl)
    origin = tuple(t + o * s for t, o, s in zip(translation, offset, scale))
    resolution = (1.0 / scale[2], 1.0 / scale[1])
    ij = {"spacing": scale[0], "unit": _imagej_unit(unit)}
    staging = make_staging(target, kind="tiff")  # beside the target; cleans what killed writers left there
    try:
        def planes():
            # a slab as deep as the chunks (at most about 256 MiB) per read, so each chunk is decompressed once
            plane_bytes = shape[1] * shape[2] * arr.dtype.itemsize
            depth = max(1, min(arr.chunks[0], _EXPORT_SLAB_BYTES // max(1, plane_bytes)))
            for z0 in range(sl[0].start, sl[0].stop, depth):
                slab = arr[z0:min(z0 + depth, sl[0].stop), sl[1], sl[2]]
                yield from slab

        if multipage:
            with tifffile.TiffWriter(staging / target.name, bigtiff=True) as tw:
                tw.write(planes(), shape=shape, dtype=arr.dtype, resolution=resolution,
                         resolutionunit=tifffile.RESUNIT.NONE,
                         # the axes name the first one z: without them ImageJ takes it for channels
                         description=tifffile.imagej_description(shape, "ZYX", **ij),
                         metadata=None)
            names = [target.name]
        else:
            width = max(4, len(str(shape[0] - 1)))
            names = []
            for i, plane in enumerate(planes()):
                name = f"z{i:0{width}d}.tif"
                tifffile.imwrite(staging / name, plane, imagej=True, resolution=resolution,
                                 metadata={**ij, "axes": "YX"})
                names.append(name)
        # a rename keeps each file's size and modification time, so the identities hold at the target too
        record = {"target": str(target.resolve()), "source": str(source.resolve()), "level": level,
                  "offset": list(offset), "shape": list(shape),
                  "files": {n: entry_identity(staging / n) for n in names}}
        (staging / EXPORT_MANIFEST).write_text(json.dumps(record, indent=1))
        with commit_lock(target, staging=staging):  # the lock stands for the owner record from here
            (staging / STAGING_OWNER).unlink()
            if multipage:
                _commit_file(staging, target, replace)
                os.replace(staging / EXPORT_MANIFEST, _manifest_path(target, True))  # a name only this package uses
                staging.rmdir()
            else:
                _commit_planes(staging, target, replace)
    except BaseException:
        remove_staging(staging)  # only the staging folder this call made
        raise
    files = [target] if multipage else [target / n for n in names]
    return TiffExport(target, files, level, offset, shape, tuple(scale), unit, origin)
