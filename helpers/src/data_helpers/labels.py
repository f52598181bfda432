"""Write a label image (a segmentation) into an OME-Zarr image's ``labels/`` group.

:func:`write_labels` is what makes readers see a segmentation rather than one more image: it writes

- the label image at ``<image>/labels/<name>/``, a multiscale image with the parent's axes, its number of
  levels and its scale at every level, downsampled by the mode (or striding), never by the mean;
- its ``image-label`` metadata: the colour of each label value, optional properties, and ``source``, the
  relative path back to the image it labels (``../../``);
- the ``labels/`` group and its ``labels`` list, which is how readers find the label images of an image.

It follows the safety rules of every writer, taken from :mod:`data_helpers.safety`: every argument and the
parent are checked before anything is written; the parent's dataset paths must stay inside its folder (no
``..``, no absolute path, no link out of it); the label image is written into a hidden staging folder,
validated there, and moved into place without replacing anything; an existing label of that name is
replaced only with ``overwrite=True`` and only if this package wrote it; a ``labels/`` group that another
tool wrote is never changed, and the list of one this package wrote is updated by the same staging and
commit. Each label level has exactly the shape of the image level it overlays, whether the image's levels
were rounded down (as :func:`~data_helpers.omezarr.write_ome_zarr` writes them) or up (as other tools do);
an image whose levels no label level can match is refused. OME-Zarr 0.4 and 0.5 images
are supported (the version of the parent is used).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import zarr

from data_helpers.omezarr import (
    DEFAULT_CLEVEL,
    OmeZarrError,
    OmeZarrImage,
    _check_arguments,
    _check_target,
    _own_nbytes,
    _package_version,
    _plan_levels,
    _write_staging,
    _written_names,
    read_ome_metadata,
)
from data_helpers.reading import level_transform, multiscale_axes
from data_helpers.safety import (  # the safety rules of every writer: see data_helpers.safety
    _GROUP_METADATA,
    MARKER_KEY,
    UnsafePathError,
    _commit,
    _read_attrs,
    _Target,
    commit_lock,
    entry_identity,
    is_plain_name,
    make_staging,
    path_inside,
    remove_staging,
    replace_own_file,
)

__all__ = ["LABEL_VERSIONS", "write_labels"]

#: OME-Zarr versions of parent images that :func:`write_labels` writes labels for.
LABEL_VERSIONS = ("0.4", "0.5")
_LABEL_METHODS = ("mode", "nearest")


def _read_parent(image_path: str | os.PathLike) -> OmeZarrImage:
    """The image to label: its version, axes, levels, scales and translations; refuse anything else clearly."""
    if not isinstance(image_path, (str, os.PathLike)):
        raise OmeZarrError(f"image_path must be the folder of an OME-Zarr image (a str or a path), got "
                           f"{type(image_path).__name__}. Nothing was written.")
    path = Path(image_path)
    if isinstance(image_path, str) and "://" in image_path:
        raise OmeZarrError(f"write_labels writes into a folder on this machine, not to {image_path}.")
    if path.is_symlink() or not path.is_dir():
        raise FileNotFoundError(f"{path} is not a folder; give the folder of the OME-Zarr image to label, "
                                "e.g. 'data/scan.ome.zarr'. Nothing was written.")
    try:
        meta = read_ome_metadata(path)
    except (FileNotFoundError, OmeZarrError, ValueError) as error:
        raise OmeZarrError(f"{path} is not an OME-Zarr image ({error}); labels belong to an image, so give the "
                           "folder of one. Nothing was written.") from None
    attrs = _read_attrs(path) or {}
    ome = attrs.get("ome", attrs) if isinstance(attrs.get("ome"), dict) else attrs
    if "image-label" in ome:
        raise OmeZarrError(f"{path} is itself a label image; give the image it labels (its source). "
                           "Nothing was written.")
    version = meta.get("version")
    if version not in LABEL_VERSIONS:
        raise OmeZarrError(f"{path} is OME-Zarr {version}; write_labels writes labels for OME-Zarr "
                           f"{' and '.join(LABEL_VERSIONS)} images. Write the image in 0.5 "
                           "(write_ome_zarr(..., version='0.5')) and label that. Nothing was written.")
    multiscales = meta.get("multiscales")
    if not isinstance(multiscales, list) or not multiscales or not isinstance(multiscales[0], dict):
        raise OmeZarrError(f"{path} has no multiscale to label. Nothing was written.")
    ms = multiscales[0]
    if ms.get("coordinateTransformations"):
        raise OmeZarrError(f"{path} has transformations for the whole multiscale, which write_labels does not "
                           "copy; fold them into each level's scale and translation first. Nothing was written.")
    raw_axes = ms.get("axes")
    if not isinstance(raw_axes, list) or not all(isinstance(a, (dict, str)) for a in raw_axes):
        raise OmeZarrError(f"{path} has 'axes' {raw_axes!r:.80}; expected a list of axes, e.g. "
                           "[{'name': 'z', 'type': 'space', 'unit': 'micrometer'}, ...]. Check it with "
                           "validate_ome_zarr. Nothing was written.")
    try:
        axes = multiscale_axes(ms)
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        raise OmeZarrError(f"{path} has axes that cannot be read ({error}). Nothing was written.") from None
    if not isinstance(axes, (list, tuple)) or not axes or not all(
            isinstance(a, dict) and isinstance(a.get("name"), str) for a in axes):
        raise OmeZarrError(f"{path} has no list of named axes (got {axes!r:.80}); check it with "
                           "validate_ome_zarr. Nothing was written.")
    dims = tuple(a.get("name") for a in axes)
    units = tuple(a.get("unit") for a in axes)
    datasets = ms.get("datasets")
    if not isinstance(datasets, list) or not all(isinstance(ds, dict) for ds in datasets):
        raise OmeZarrError(f"{path} has 'datasets' {datasets!r:.80}; expected a list of objects with a 'path' "
                           "each. Check it with validate_ome_zarr. Nothing was written.")
    shapes, scales, translations, chunks, dtype = [], [], [], (), None
    for i, ds in enumerate(datasets):
        try:
            level_path = path_inside(path, ds.get("path"), "dataset path")
        except UnsafePathError as error:
            raise OmeZarrError(f"level {i} of {path}: {error.args[0]} Nothing was written.") from None
        transforms = ds.get("coordinateTransformations")
        if not isinstance(transforms, list) or not all(isinstance(t, dict) for t in transforms):
            raise OmeZarrError(f"level {i} of {path} has 'coordinateTransformations' {transforms!r:.80}; expected a "
                               "list of transformations, e.g. [{'type': 'scale', 'scale': [2.0, 0.5, 0.5]}]. Check it "
                               "with validate_ome_zarr. Nothing was written.")
        # level_transform reads a missing scale as 1; a label image must copy a real one.
        if not any(t.get("type") == "scale" and len(t.get("scale") or ()) == len(dims)
                   for t in ds.get("coordinateTransformations") or []):
            raise OmeZarrError(f"level {ds.get('path')!r} of {path} has no scale for each of its axes {dims}. "
                               "Nothing was written.")
        scale, translation = level_transform(ds, len(dims))
        try:
            array = zarr.open_array(store=str(level_path), mode="r")
        except Exception as error:  # noqa: BLE001 - any failure to open means the level cannot be read
            raise OmeZarrError(f"level {ds.get('path')!r} of {path} cannot be opened as a Zarr array ({error}). "
                               "Nothing was written.") from None
        shapes.append(tuple(array.shape))
        scales.append(scale)
        translations.append(translation)
        if i == 0:
            chunks, dtype = tuple(array.chunks), np.dtype(array.dtype)
    if not shapes:
        raise OmeZarrError(f"{path} lists no levels (datasets). Nothing was written.")
    return OmeZarrImage(path=path, version=version, dims=dims, units=units, shapes=tuple(shapes),
                        scales=tuple(scales), translations=tuple(translations), chunks=chunks, dtype=dtype,
                        method=str(ms.get("type") or "unknown"))


def _parent_factors(parent: OmeZarrImage) -> list[tuple[int, ...]]:
    """Each level's downsampling factor relative to level 0, from the parent's scales (whole numbers only)."""
    factors = []
    for level, scale in enumerate(parent.scales):
        ratios = [s / s0 for s, s0 in zip(scale, parent.scales[0])]
        rounded = tuple(max(1, round(r)) for r in ratios)
        if any(not math.isclose(r, f, rel_tol=1e-6) for r, f in zip(ratios, rounded)):
            raise OmeZarrError(f"level {level} of {parent.path} has scale {scale}, which is not a whole multiple of "
                               f"level 0's {parent.scales[0]}; write_labels downsamples by whole blocks of voxels. "
                               "Nothing was written.")
        if factors and any(f % p for f, p in zip(rounded, factors[-1])):
            raise OmeZarrError(f"level {level} of {parent.path} is not a whole downsampling of level {level - 1} "
                               f"(factors {factors[-1]} then {rounded}). Nothing was written.")
        factors.append(rounded)
    return factors


def _check_level_shapes(parent: OmeZarrImage, factors, method: str) -> None:
    """Refuse an image whose coarser levels no label level can match voxel for voxel.

    Each level of the image must have, along each axis, the length of the level before it divided by the
    step between them, rounded down (as :func:`~data_helpers.write_ome_zarr` writes) or up (as other
    tools do). A level rounded up ends with a block that is only partly inside the level before; its label
    is the mode of the voxels that are there, which is exact for steps of 2 (and for ``"nearest"``).
    """
    for level in range(1, len(parent.shapes)):
        step = tuple(f // p for f, p in zip(factors[level], factors[level - 1]))
        above, theirs = parent.shapes[level - 1], parent.shapes[level]
        for axis, (n, m, st) in enumerate(zip(theirs, above, step)):
            down, up = m // st, -(-m // st)
            if n == down or (n == up and (st == 2 or method == "nearest")):
                continue
            why = (f"{m} voxels of level {level - 1} in blocks of {st} give {down} (rounded down) or {up} "
                   "(rounded up)") if n not in (down, up) else (
                   f"a rounded-up level with a step of {st} would weight the last voxel of a partial block "
                   "more than the others under method='mode'; use method='nearest'")
            raise OmeZarrError(
                f"level {level} of {parent.path} has shape {tuple(theirs)}, and its axis {parent.dims[axis]!r} "
                f"cannot be matched by a label level: {why}. A label level must have the shape of the image "
                "level it overlays (one label per voxel). Nothing was written.")


def _match_parent_shapes(staging: Path, plan, shapes: Sequence[tuple[int, ...]], method: str) -> None:
    """Extend each label level in ``staging`` whose image level was rounded up, computed from the level before.

    The levels were written rounded down; a level rounded up gets its last, partial blocks from the voxels of
    the level before that they cover (padded with copies of the last one, which for a step of 2 leaves the
    mode and the first voxel as they are).
    """
    import dask
    import dask.array as da

    from data_helpers.omezarr import _downsample_block

    for level in range(1, len(shapes)):
        target = tuple(shapes[level])
        if target == tuple(plan.shapes[level]):
            continue  # a rounded-down level only covers voxels the extension of the level before left as they are
        step = tuple(f // p for f, p in zip(plan.factors[level], plan.factors[level - 1]))
        above = zarr.open_array(store=str(staging / str(level - 1)), mode="r")
        array = zarr.open_array(store=str(staging / str(level)), mode="r+", config={"write_empty_chunks": True})
        array.resize(target)
        block = tuple(c * st for c, st in zip(array.chunks, step))
        src = da.from_zarr(above, chunks=block)
        src = src[tuple(slice(0, min(m, n * st)) for m, n, st in zip(above.shape, target, step))]
        src = da.pad(src, [(0, n * st - k) for n, st, k in zip(target, step, src.shape)], mode="edge")
        src = src.rechunk(block)
        out = src.map_blocks(_downsample_block, step, method, dtype=src.dtype,
                             chunks=tuple(tuple(b // st for b in bc) for bc, st in zip(src.chunks, step)))
        with dask.config.set(scheduler="synchronous"):
            da.store(out, array, lock=False)


def _label_values(mapping: Any, what: str) -> list[tuple[int, Any]]:
    """The (label value, entry) pairs of a colours or properties mapping, with whole-number label values."""
    if mapping is None:
        return []
    if not isinstance(mapping, Mapping):
        raise OmeZarrError(f"{what} must be a dict from label value to its {what[:-1] if what == 'colors' else 'entry'}"
                           f", e.g. {{1: (255, 0, 0)}}, got {type(mapping).__name__}.")
    pairs = []
    for value, entry in mapping.items():
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise OmeZarrError(f"{what} has the key {value!r}; label values are whole numbers, e.g. {{1: ...}}.")
        pairs.append((int(value), entry))
    return sorted(pairs, key=lambda p: p[0])


def _check_colors(colors: Any) -> list[dict]:
    out = []
    for value, rgba in _label_values(colors, "colors"):
        ok = isinstance(rgba, (Sequence, np.ndarray)) and not isinstance(rgba, str) and len(rgba) in (3, 4) and all(
            isinstance(c, (int, np.integer)) and not isinstance(c, (bool, np.bool_)) and 0 <= c <= 255 for c in rgba)
        if not ok:
            raise OmeZarrError(f"the color of label {value} is {rgba!r}; give 3 or 4 whole numbers from 0 to 255 "
                               "(red, green, blue and optionally alpha), e.g. (255, 0, 0) or (255, 0, 0, 128).")
        rgba = [int(c) for c in rgba] + ([255] if len(rgba) == 3 else [])
        out.append({"label-value": value, "rgba": rgba})
    return out


def _check_properties(properties: Any) -> list[dict]:
    out = []
    for value, entry in _label_values(properties, "properties"):
        if not isinstance(entry, Mapping) or "label-value" in entry:
            raise OmeZarrError(f"the properties of label {value} are {entry!r:.80}; give a dict of named values "
                               "without 'label-value' (the key says it), e.g. {1: {'class': 'nucleus'}}.")
        try:
            json.dumps(dict(entry))
        except (TypeError, ValueError):
            raise OmeZarrError(f"the properties of label {value} cannot be stored as JSON: {entry!r:.80}; use "
                               "strings, numbers, booleans, lists and dicts.") from None
        out.append({"label-value": value, **entry})
    return out


def _labels_group_state(labels_dir: Path, zarr_format: int) -> tuple[str, list[str]]:
    """``("new", [])`` if there is no labels group yet, or ``("ours", names)`` for one this package wrote."""
    if not os.path.lexists(labels_dir):
        return "new", []
    if labels_dir.is_symlink() or not labels_dir.is_dir():
        raise FileExistsError(f"{labels_dir} is {'a link' if labels_dir.is_symlink() else 'a file'}, not a labels "
                              "group; nothing was written. Move it away yourself if it should go.")
    try:
        attrs = _read_attrs(labels_dir)
    except (OSError, ValueError):
        attrs = None
    other = 3 if zarr_format == 2 else 2
    if attrs is not None and any((labels_dir / n).exists() for n in _GROUP_METADATA[other]) \
            and not all((labels_dir / n).exists() for n in _GROUP_METADATA[zarr_format] if n != ".zattrs"):
        attrs = None
    marker = attrs.get(MARKER_KEY) if isinstance(attrs, dict) else None
    if not isinstance(marker, dict) or not isinstance(marker.get("labels"), list):
        raise FileExistsError(f"{labels_dir} exists but was not written by data_helpers, so write_labels does not "
                              "change it (it would have to add a name to another tool's 'labels' list). Nothing was "
                              "written. Add the label with the tool that made that group, or move the group away.")
    ome = attrs.get("ome", {}) if zarr_format == 3 else attrs
    names = ome.get("labels") if isinstance(ome, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise FileExistsError(f"{labels_dir} has no readable 'labels' list; nothing was written.")
    return "ours", names


def _labels_group_attrs(version: str, names: list[str], ours: list[str]) -> dict:
    marker = {"version": _package_version(), "labels": list(ours)}
    if version == "0.4":
        return {"labels": list(names), MARKER_KEY: marker}
    return {"ome": {"version": version, "labels": list(names)}, MARKER_KEY: marker}


def _add_to_labels_group(labels_dir: Path, version: str, name: str) -> None:
    """Add ``name`` to the ``labels`` list of a labels group this package wrote (checked again under the lock)."""
    zarr_format = 2 if version == "0.4" else 3
    with commit_lock(labels_dir):
        _, names = _labels_group_state(labels_dir, zarr_format)
        if name in names:
            return
        file = labels_dir / (".zattrs" if zarr_format == 2 else "zarr.json")
        recorded = entry_identity(file)  # the replace below checks that the file is still the one read here
        document = json.loads(file.read_text(encoding="utf-8"))
        attrs = document if zarr_format == 2 else document.setdefault("attributes", {})
        ours = list(attrs[MARKER_KEY]["labels"]) + [name]
        new = _labels_group_attrs(version, names + [name], ours)
        if zarr_format == 2:
            document = {**document, **new}
        else:
            attrs.update({k: ({**attrs.get(k, {}), **v} if k == "ome" else v) for k, v in new.items()})
        # one rename replaces the group's own metadata file, so readers always find the group
        replace_own_file(file, json.dumps(document, indent=2).encode("utf-8"), recorded, lock=False)


def _validate_staged(staging: Path, name: str) -> None:
    from data_helpers.validation import validate_ome_zarr

    report = validate_ome_zarr(staging, check_chunks=False)
    if report.errors:
        raise OmeZarrError(f"the label image {name!r} failed validation before it was moved into place, so "
                           f"nothing was written:\n{report}")


def write_labels(
    image_path: str | os.PathLike,
    name: str,
    labels: Any,
    *,
    colors: Mapping[int, Sequence[int]] | None = None,
    properties: Mapping[int, Mapping[str, Any]] | None = None,
    method: Literal["mode", "nearest"] = "mode",
    chunks: int | Sequence[int] | None = None,
    clevel: int = DEFAULT_CLEVEL,
    overwrite: bool = False,
    progress: bool | None = None,
) -> OmeZarrImage:
    """Write a label image into the ``labels/`` group of an OME-Zarr image, so readers see a segmentation.

    Parameters
    ----------
    image_path
        The folder of the OME-Zarr 0.4 or 0.5 image that ``labels`` segments (written by any tool).
    name
        The label image's name, a plain folder name such as ``"cells"``; it is written at
        ``<image_path>/labels/<name>/`` and added to the ``labels`` list of ``labels/``.
    labels
        An integer numpy, dask or zarr array with the shape and axes of the image's level 0
        (0 usually means "no label").
    colors
        The display colour of each label value: ``{value: (r, g, b)}`` or ``{value: (r, g, b, a)}``,
        whole numbers from 0 to 255. Values without a colour are coloured by the viewer. The
        specification says a label image SHOULD list its colours, so without them the validator's
        strict schema check warns.
    properties
        Named values for each label, e.g. ``{1: {"class": "nucleus"}}``, stored as JSON.
    method
        ``"mode"`` (default: the most frequent label of each block of voxels, ties to the smallest) or
        ``"nearest"`` (the first voxel of each block). Never the mean, which invents labels.
    chunks
        Chunk length per axis, or one for every space axis. Default: the chunks of the image's level 0.
    clevel
        Blosc compression level, 1 to 9, as for :func:`~data_helpers.omezarr.write_ome_zarr`.
    overwrite
        Replace a label image of that name that this function wrote earlier (only its metadata and level
        folders). A label image or a ``labels/`` group written by another tool is never changed.
    progress
        Show a progress bar. Default: only for inputs of 256 MiB or more.

    Returns
    -------
    OmeZarrImage
        The label image written: its path, version, axes and each level's shape, scale and translation
        (the scales are the image's).

    Raises
    ------
    OmeZarrError
        If ``labels`` is not an integer array of the image's level-0 shape, ``name``, ``colors``,
        ``properties`` or ``method`` is not valid, ``image_path`` is not an OME-Zarr 0.4 or 0.5 image, or
        its levels are not whole-number downsamplings of level 0.
    FileNotFoundError
        If ``image_path`` is not a folder.
    FileExistsError
        If a label image ``name`` exists and ``overwrite`` is ``False``, if it (or ``labels/``) was not
        written by this package, or if another write got there first. Nothing is written or deleted then.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from data_helpers import write_labels, write_ome_zarr
    >>> folder = tempfile.mkdtemp()
    >>> image = write_ome_zarr(np.zeros((32, 64, 64), np.uint16), f"{folder}/a.ome.zarr",
    ...                        voxel_size=(2.0, 0.5, 0.5), unit="um", chunks=32)
    >>> cells = np.zeros((32, 64, 64), np.uint8)
    >>> cells[8:24, 16:48, 16:48] = 1
    >>> label = write_labels(f"{folder}/a.ome.zarr", "cells", cells, colors={1: (255, 0, 0)})
    >>> label.path.relative_to(folder).as_posix(), label.scales == image.scales
    ('a.ome.zarr/labels/cells', True)
    """
    if not isinstance(name, str) or not is_plain_name(name) or name in ("zarr.json", ".zattrs"):
        raise OmeZarrError(f"name {name!r} must be a plain folder name (letters, digits, '_', '-', '.'; not starting "
                           "with '.'), e.g. 'cells'.")
    if method not in _LABEL_METHODS:
        raise OmeZarrError(f"method must be 'mode' or 'nearest' for labels, got {method!r}; the mean of labels 1 "
                           "and 3 is a label 2 that is not there.")
    dtype = getattr(labels, "dtype", None)
    if dtype is None or not hasattr(labels, "shape"):
        raise OmeZarrError(f"labels must be a numpy, dask or zarr array of integers, got {type(labels).__name__}.")
    if np.dtype(dtype).kind not in "iu":
        raise OmeZarrError(f"labels have dtype {dtype}; label images need an integer dtype (each value names a "
                           "region). Convert first, e.g. labels.astype(np.uint32), after checking that the values "
                           "are whole numbers.")
    color_list = _check_colors(colors)
    property_list = _check_properties(properties)
    parent = _read_parent(image_path)
    if tuple(labels.shape) != parent.shapes[0]:
        raise OmeZarrError(f"labels have shape {tuple(labels.shape)} but the image's level 0 ({', '.join(parent.dims)})"
                           f" has shape {parent.shapes[0]}; a label image has one label per voxel of the image.")
    factors = _parent_factors(parent)
    space = [i for i, d in enumerate(parent.dims) if d in ("z", "y", "x")]
    t_step = parent.scales[0][parent.dims.index("t")] if "t" in parent.dims else 1.0
    labels_dir = parent.path / "labels"
    request = _check_arguments(
        labels, labels_dir / name, voxel_size=[parent.scales[0][i] for i in space], unit="micrometer",
        dims=parent.dims, name=name, kind="labels", method=method,
        chunks=parent.chunks if chunks is None else chunks, n_levels=len(factors), version=parent.version,
        clevel=clevel, translation=[parent.translations[0][i] for i in space], time_unit="second",
        time_step=t_step if t_step > 0 else 1.0, overwrite=overwrite, progress=progress,
    )
    image_label: dict[str, Any] = {}
    if parent.version == "0.4":
        image_label["version"] = "0.4"
    if color_list:
        image_label["colors"] = color_list
    if property_list:
        image_label["properties"] = property_list
    image_label["source"] = {"image": "../../"}
    request = dataclasses.replace(request, units=parent.units, voxel=parent.scales[0],
                                  origin=parent.translations[0], extra_ome={"image-label": image_label})
    _check_level_shapes(parent, factors, method)
    plan = _plan_levels(request, factors)
    written = _written_names(request, plan)
    state, names = _labels_group_state(labels_dir, request.zarr_format)
    if state == "new":
        return _write_new_group(request, plan, parent, labels_dir, name, written)
    target = _check_target(request.target, request.overwrite, written)
    staging = make_staging(request.target)
    try:
        _write_staging(request, plan, staging)
        _match_parent_shapes(staging, plan, parent.shapes, method)
        _validate_staged(staging, name)
        _commit(staging, target, written)
    except BaseException:
        remove_staging(staging)
        raise
    _add_to_labels_group(labels_dir, parent.version, name)
    return _result(request, plan, written)


def _write_new_group(request, plan, parent: OmeZarrImage, labels_dir: Path, name: str, written) -> OmeZarrImage:
    """Write ``labels/`` with its list and the one label image, in staging, then move it into place at once."""
    staging = make_staging(labels_dir, kind="labels")
    try:
        zarr.create_group(staging, zarr_format=request.zarr_format,
                          attributes=_labels_group_attrs(parent.version, [name], [name]))
        _write_staging(request, plan, staging / name)
        _match_parent_shapes(staging / name, plan, parent.shapes, request.method)
        _validate_staged(staging / name, name)
        group_written = tuple(_GROUP_METADATA[request.zarr_format]) + (name,)
        _commit(staging, _Target(labels_dir, "new"), group_written)
    except BaseException:
        remove_staging(staging)
        raise
    return _result(request, plan, written)


def _result(request, plan, written) -> OmeZarrImage:
    shapes = tuple(tuple(zarr.open_array(store=str(request.target / n), mode="r").shape) for n in plan.names)
    return OmeZarrImage(
        path=request.target, version=request.version, dims=request.dims, units=request.units, shapes=shapes,
        scales=plan.scales, translations=plan.translations, chunks=request.chunks,
        dtype=np.dtype(request.source.dtype), method=request.method,
        nbytes_stored=_own_nbytes(request.target, written),
    )
