"""Put an OME-Zarr image into an object store (S3 and alike), safely.

An object store is not a file system: it has no rename (so no atomic move of a
finished image into place), no append (an object is written whole, every time),
and no folders (a "folder" is a prefix of key names). :func:`write_ome_zarr`
relies on renames to never leave a half-written image behind, so it writes to a
local folder only. :func:`upload_ome_zarr` takes such a finished, valid image and
copies it to a store in the one order that is safe without renames: every chunk
first, then the metadata, the image's root ``zarr.json`` (or ``.zattrs``) last. A
reader that finds the root metadata finds a complete image; an upload that stops
half-way leaves objects that no reader mistakes for an image.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["UploadReport", "upload_ome_zarr"]

_METADATA = frozenset({"zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata"})


@dataclass(frozen=True)
class UploadReport:
    """What :func:`upload_ome_zarr` put into the store.

    Attributes
    ----------
    url
        The image's URL in the store.
    n_objects, n_bytes
        Objects written and their total size.
    metadata_last
        The metadata keys, in the order written (the root's last).
    """

    url: str
    n_objects: int
    n_bytes: int
    metadata_last: tuple[str, ...]


def upload_ome_zarr(folder: str | os.PathLike, url: str, *, storage_options: dict | None = None) -> UploadReport:
    """Copy a valid local OME-Zarr image to an object store: chunks first, root metadata last.

    Parameters
    ----------
    folder
        A local OME-Zarr image, e.g. written by :func:`data_helpers.write_ome_zarr`. It is
        validated first and never changed.
    url
        Where the image goes, e.g. ``"s3://bucket/images/heart.ome.zarr"``. Nothing may exist
        under it yet: an object store cannot swap an old image for a new one in one step,
        so replacing is refused (delete the old one yourself, knowing readers may see a gap).
    storage_options
        Passed to fsspec, e.g. the endpoint and keys for s3fs.

    Returns
    -------
    UploadReport
        The objects and bytes written, and the metadata keys in the order written.

    Raises
    ------
    data_helpers.InvalidOmeZarrError
        If ``folder`` is not a valid OME-Zarr image (the report lists why).
    FileExistsError
        If objects already exist under ``url``.
    ValueError
        If ``url`` is not a URL (``scheme://...``).

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from data_helpers import write_ome_zarr
    >>> from data_helpers.objectstore import upload_ome_zarr
    >>> from data_helpers.s3server import LocalS3Server
    >>> local = tempfile.mkdtemp() + "/a.ome.zarr"
    >>> _ = write_ome_zarr(np.zeros((32, 32, 32), np.uint8), local, voxel_size=1.0, chunks=16)
    >>> with LocalS3Server("demo") as s3:
    ...     report = upload_ome_zarr(local, "s3://demo/a.ome.zarr", storage_options=s3.storage_options())
    >>> report.metadata_last[-1]
    'zarr.json'
    """
    import fsspec

    from data_helpers.validation import validate_ome_zarr

    if not isinstance(url, str) or "://" not in url:
        raise ValueError(f"url={url!r} must be an object-store URL such as 's3://bucket/image.ome.zarr'; "
                         f"for a local folder, use write_ome_zarr or a file copy.")
    folder = Path(folder)
    validate_ome_zarr(folder, check_chunks=True).raise_if_problems()
    fs, root = fsspec.core.url_to_fs(url, **(storage_options or {}))
    root = root.rstrip("/")
    try:
        existing = fs.find(root)
    except FileNotFoundError:
        existing = []
    if existing:
        raise FileExistsError(f"{url} already holds {len(existing)} objects. An object store has no atomic "
                              f"rename, so an image cannot be replaced in one step: upload to a new prefix, "
                              f"or delete the old objects first.")
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    keys = [p.relative_to(folder).as_posix() for p in files]
    data = [(p, k) for p, k in zip(files, keys) if k.rsplit("/", 1)[-1] not in _METADATA]
    # metadata deepest first: each level's array metadata before the image's root metadata
    meta = sorted(((p, k) for p, k in zip(files, keys) if k.rsplit("/", 1)[-1] in _METADATA),
                  key=lambda pk: (-pk[1].count("/"), pk[1]))
    if data:  # the chunks, many at once (s3fs uploads a list concurrently)
        fs.put([str(p) for p, _ in data], [f"{root}/{k}" for _, k in data])
    for path, key in meta:  # then the metadata, one by one, in order
        fs.put_file(str(path), f"{root}/{key}")
    n_bytes = sum(p.stat().st_size for p in files)
    return UploadReport(url=url, n_objects=len(files), n_bytes=n_bytes,
                        metadata_last=tuple(k for _, k in meta))
