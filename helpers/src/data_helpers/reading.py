"""Open one level of an OME-Zarr image, local or remote, as a lazy dask array with its physical metadata.

:func:`open_ome_zarr` reads the image's metadata (OME-Zarr 0.4, 0.5 or 0.6), picks a level,
and returns an :class:`OmeZarrLevel`: a dask array whose chunks are the storage chunks (or
shards), so each task reads whole stored objects, and the level's axes, units, scale and
translation. It works the same for a folder, an ``http(s)://`` URL and an ``s3://`` URL.

A local image can be deleted or replaced while its array is open (a notebook cell run again, a
clean-up). Zarr reads a missing chunk as the array's fill value, so a level whose files are gone
would read as zeros without an error. Each block read from a folder therefore first checks
(one ``stat``) that the level's metadata file is still there, and raises
:class:`~data_helpers.storeaccess.StoreAccessError` if it is not.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from data_helpers.storeaccess import StoreAccessError

__all__ = ["OmeZarrLevel", "level_transform", "multiscale_axes", "open_ome_zarr"]


@dataclass(frozen=True)
class OmeZarrLevel:
    """One level of an OME-Zarr image, opened lazily.

    Attributes
    ----------
    data
        A dask array of the level; its chunks are the storage chunks (the shards of a sharded array).
    level
        The level's index (0 is full resolution), and ``n_levels`` how many the image has.
    axes, units
        Axis names and their units (``None`` for an axis without a unit), in array order.
    scale, translation
        The level's voxel size and the position of its first voxel's centre, in ``units``.
    version
        The OME-Zarr version of the image's metadata.
    location
        The array's path or URL, as given plus the level's path.
    """

    data: Any
    level: int
    n_levels: int
    axes: tuple[str, ...]
    units: tuple[str | None, ...]
    scale: tuple[float, ...]
    translation: tuple[float, ...]
    version: str | None
    location: str

    @property
    def shape(self) -> tuple[int, ...]:
        """The level's shape, in voxels."""
        return tuple(self.data.shape)

    @property
    def extent(self) -> tuple[float, ...]:
        """The physical size of the level along each axis (shape × scale), in ``units``."""
        return tuple(n * s for n, s in zip(self.data.shape, self.scale))


def multiscale_axes(multiscale: dict) -> list[dict]:
    """The axes of a multiscale as dicts with ``name`` (and ``type``, ``unit`` when given).

    OME-Zarr 0.4 and 0.5 list them in ``axes``; 0.6 in the last coordinate system (the physical one).

    Examples
    --------
    >>> multiscale_axes({"axes": [{"name": "y", "unit": "micrometer"}, "x"]})
    [{'name': 'y', 'unit': 'micrometer'}, {'name': 'x'}]
    """
    if "axes" in multiscale:
        raw = multiscale["axes"]
    else:
        systems = multiscale.get("coordinateSystems") or [{}]
        raw = systems[-1].get("axes", [])
    return [dict(a) if isinstance(a, dict) else {"name": str(a)} for a in raw]


def level_transform(dataset: dict, ndim: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The (scale, translation) of one dataset of a multiscale, for OME-Zarr 0.4, 0.5 and 0.6.

    A 0.6 ``sequence`` transformation is unpacked; a missing translation is all zeros.
    Only the dataset's own transformations count (a multiscale-wide one is not applied).

    Examples
    --------
    >>> level_transform({"coordinateTransformations": [{"type": "scale", "scale": [2, 1]}]}, 2)
    ((2.0, 1.0), (0.0, 0.0))
    """
    transforms = list(dataset.get("coordinateTransformations") or [])
    while any(t.get("type") == "sequence" for t in transforms):
        transforms = [inner for t in transforms
                      for inner in (t.get("transformations", []) if t.get("type") == "sequence" else [t])]
    scale, translation = (1.0,) * ndim, (0.0,) * ndim
    for t in transforms:
        if t.get("type") == "scale" and "scale" in t:
            scale = tuple(float(v) for v in t["scale"])
        elif t.get("type") == "translation" and "translation" in t:
            translation = tuple(float(v) for v in t["translation"])
    return scale, translation


def _display(path: str | os.PathLike) -> str:
    """A local path as the reader should see it (relative to the repository or the working folder)."""
    from data_helpers.workspace import display_path

    return display_path(path)


def _level_metadata_file(folder: Path, zarr_format: int | None) -> Path | None:
    """The metadata file of the Zarr array in ``folder`` (``zarr.json`` or ``.zarray``), or ``None``."""
    names = {2: [".zarray"], 3: ["zarr.json"]}.get(zarr_format, ["zarr.json", ".zarray"])
    return next((folder / name for name in names if (folder / name).is_file()), None)


def _check_dataset_path(path: Any, image: str) -> str:
    """The dataset path of the metadata, if it names a folder inside the image; else an OmeZarrError."""
    from data_helpers.omezarr import OmeZarrError

    # A dataset path that leaves the image folder would read (and show as this image) another
    # image's data, or any folder of the machine.
    if not isinstance(path, str) or not path.strip("/"):
        raise OmeZarrError(f"the multiscales metadata of {image} gives the dataset path {path!r}: each dataset "
                           f"needs a 'path' naming a folder inside the image, such as '0'.")
    parts = path.replace("\\", "/").split("/")
    if (path.startswith(("/", "\\")) or "://" in path or (len(path) > 1 and path[1] == ":")
            or ".." in parts or PurePosixPath(path).is_absolute()):
        raise OmeZarrError(f"the multiscales metadata of {image} gives the dataset path {path!r}, which leaves "
                           f"the image folder: a dataset path must be relative and inside the image (such as "
                           f"'0' or 'scale0/image'), without '..' and not absolute. Fix the metadata, or ask "
                           f"whoever wrote the image for a valid copy.")
    return path


class _CheckedLevel:
    """A local Zarr array whose every read first checks that the level's metadata file still exists.

    It has what ``dask.array.from_array`` needs (shape, dtype, ndim, slicing) and pickles, so the
    check runs where the read runs, on a worker process too.
    """

    def __init__(self, array: Any, metadata_file: Path, image: str, level: int, opened_as: str) -> None:
        self.array = array
        self.metadata_file = os.fspath(metadata_file)
        self.image, self.level, self.opened_as = image, level, opened_as
        self.shape, self.dtype, self.ndim = tuple(array.shape), array.dtype, array.ndim

    def __getitem__(self, key: Any) -> Any:
        if not os.path.exists(self.metadata_file):
            raise StoreAccessError(
                f"level {self.level} of the image {self.image} is gone ({self.opened_as} has no "
                f"{Path(self.metadata_file).name} any more): its files were deleted or replaced after "
                f"open_ome_zarr opened it, and Zarr would read the missing chunks as zeros. Run the cell "
                f"that writes {self.image} again, then the cell that opens it with open_ome_zarr, "
                f"then this one.")
        return self.array[key]


def open_ome_zarr(
    location: str | os.PathLike,
    level: int = 0,
    *,
    storage_options: dict | None = None,
) -> OmeZarrLevel:
    """Open one level of an OME-Zarr image lazily, from a folder or an ``http(s)://`` or ``s3://`` URL.

    Only the metadata is read here; pixels are read when the dask array is computed,
    whole storage chunks (or shards) at a time.

    Parameters
    ----------
    location
        The image's folder (the one holding the multiscales metadata), or its URL.
    level
        Which level: 0 is full resolution; negative numbers count from the coarsest (-1).
    storage_options
        For ``s3://`` URLs, passed to s3fs (for example ``{"anon": True}`` or
        ``{"endpoint_url": "http://127.0.0.1:9000", "key": ..., "secret": ...}``).

    Returns
    -------
    OmeZarrLevel
        The lazy array and the level's axes, units, scale and translation.

    Raises
    ------
    FileNotFoundError
        If ``location`` holds no Zarr metadata (the message shows the path relative to the repository).
    OmeZarrError
        If it is not an OME-Zarr multiscale image, or a dataset path in its metadata leaves the image
        folder (``..`` or an absolute path).
    ValueError
        If ``level`` is not one of the image's levels (the message gives the valid range).
    StoreAccessError
        If the level's folder or metadata file is missing; for a folder, also when the array is
        computed after the level's files were deleted (instead of reading zeros).

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from data_helpers import write_ome_zarr
    >>> from data_helpers.reading import open_ome_zarr
    >>> folder = tempfile.mkdtemp()
    >>> _ = write_ome_zarr(np.zeros((64, 64, 64), np.uint8), f"{folder}/a.ome.zarr", voxel_size=(2, 1, 1),
    ...                    unit="um", chunks=32)
    >>> lv = open_ome_zarr(f"{folder}/a.ome.zarr", level=1)
    >>> lv.shape, lv.scale, lv.units[0], lv.data.chunksize
    ((64, 32, 32), (2.0, 2.0, 2.0), 'micrometer', (32, 32, 32))
    """
    import dask.array as da
    import numpy as np
    import zarr

    from data_helpers.omezarr import read_ome_metadata

    if not isinstance(location, (str, os.PathLike)):
        raise TypeError(f"location must be a folder path or a URL string, got {type(location).__name__}.")
    remote = isinstance(location, str) and "://" in location
    image = str(location) if remote else _display(location)
    try:
        meta = read_ome_metadata(location, storage_options=storage_options) if remote else read_ome_metadata(location)
    except FileNotFoundError as error:
        if remote:
            raise
        raise FileNotFoundError(f"{image} holds no Zarr metadata (zarr.json, .zattrs or .zgroup): it does not "
                                f"exist or is not the image folder. If a cell of this notebook writes it, run "
                                f"that cell first.") from error
    multiscale = meta["multiscales"][0]
    datasets = multiscale.get("datasets") or []
    n = len(datasets)
    if isinstance(level, bool) or not isinstance(level, int) or not -n <= level < n:
        raise ValueError(f"level={level!r}, but {image} has {n} levels: give 0 to {n - 1} "
                         f"(or -1 to {-n} counting from the coarsest).")
    level = level % n
    axes_meta = multiscale_axes(multiscale)
    dataset_path = _check_dataset_path(datasets[level].get("path"), image)
    base = str(location).rstrip("/")
    array_location = f"{base}/{dataset_path}"
    # OME-Zarr 0.4 is Zarr version 2, later versions Zarr 3: naming it spares the requests for the other
    version = str(meta.get("version"))
    zarr_format = 2 if version.startswith(("0.1", "0.2", "0.3", "0.4")) else 3 if version[:3] in ("0.5", "0.6") else None
    if remote:
        options = storage_options if array_location.lower().startswith("s3://") else None
        array = zarr.open_array(array_location, mode="r", storage_options=options, zarr_format=zarr_format)
        chunks = getattr(array, "shards", None) or array.chunks
        data = da.from_zarr(array, chunks=chunks)
    else:
        folder = Path(location) / dataset_path
        metadata_file = _level_metadata_file(folder, zarr_format)
        if metadata_file is None:
            raise StoreAccessError(f"the metadata of {image} lists level {level} at {dataset_path!r}, but "
                                   f"{_display(folder)} holds no Zarr array: the level was deleted or never "
                                   f"written. Write the image again (run the cell that writes it first).")
        array = zarr.open_array(folder, mode="r", zarr_format=zarr_format)
        chunks = getattr(array, "shards", None) or array.chunks
        checked = _CheckedLevel(array, metadata_file, image, level, _display(folder))
        data = da.from_array(checked, chunks=chunks, name=f"open-ome-zarr-{uuid.uuid4().hex}",
                             meta=np.empty((0,) * array.ndim, dtype=array.dtype), asarray=False)
    scale, translation = level_transform(datasets[level], array.ndim)
    return OmeZarrLevel(
        data=data,
        level=level,
        n_levels=n,
        axes=tuple(a["name"] for a in axes_meta),
        units=tuple(a.get("unit") for a in axes_meta),
        scale=scale,
        translation=translation,
        version=meta.get("version"),
        location=array_location,
    )
