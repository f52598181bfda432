"""Validate an OME-Zarr image: every problem, with where it is and what was expected.

:func:`validate_ome_zarr` combines three checkers and reports all they find,
rather than stopping at the first:

- **ngff-zarr**: the specification's JSON schemas for 0.4 and 0.5, bundled with
  ngff-zarr (offline; nothing is fetched);
- **ome-zarr-models**: opening the image with its pydantic models, which also
  reads the arrays' metadata;
- **data_helpers**: the checks neither makes: axis order and count against
  each scale, transformation order, datasets from fine to coarse, units that
  are UDUNITS-2 names, dataset paths that exist, dtype and shape consistent
  across levels, and every chunk file present on disk (zarr reads a missing
  chunk as the fill value, silently).

The command ``python -m data_helpers validate PATH`` prints the same report and
exits with status 1 when there are problems.
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from data_helpers.units import SPACE_UNITS, TIME_UNITS, UnitError, normalize_unit

__all__ = ["InvalidOmeZarrError", "Problem", "ValidationReport", "validate_ome_zarr"]

_EXPECTED_ZARR = {"0.4": 2, "0.5": 3}
_MAX_EXAMPLES = 3


class InvalidOmeZarrError(ValueError):
    """An OME-Zarr image has problems; the message lists them."""


@dataclass(frozen=True)
class Problem:
    """One problem in an OME-Zarr image.

    Attributes
    ----------
    where
        The metadata field (``multiscales[0].axes[2].unit``) or the file path
        (``1/c/0/1/1``) that is wrong.
    message
        What is wrong and what was expected.
    checker
        Who found it: ``"data_helpers"``, ``"ngff-zarr"`` (JSON schema) or ``"ome-zarr-models"``.
    """

    where: str
    message: str
    checker: str

    def __str__(self) -> str:
        return f"[{self.checker}] {self.where}: {self.message}"


@dataclass
class ValidationReport:
    """The result of :func:`validate_ome_zarr`: the problems found, and what was checked.

    ``bool(report)`` is ``True`` when there are no problems; ``print(report)``
    shows them all.
    """

    path: Path
    version: str | None
    problems: list[Problem] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """``True`` when no problem was found."""
        return not self.problems

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        head = f"{self.path}: OME-Zarr {self.version or '(unknown version)'}"
        if self.ok:
            return f"{head}: valid. Checked: {'; '.join(self.checked)}."
        lines = [f"{head}: {len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)

    def raise_if_problems(self) -> None:
        """Raise :class:`InvalidOmeZarrError` listing every problem, if there are any."""
        if self.problems:
            raise InvalidOmeZarrError(str(self))

    def add(self, where: str, message: str, checker: str = "data_helpers") -> None:
        self.problems.append(Problem(where, message, checker))


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def _node_kind(folder: Path) -> tuple[str | None, int | None]:
    """('group' | 'array' | None, zarr format) of the node stored in ``folder``."""
    meta = _read_json(folder / "zarr.json")
    if meta is not None:
        return meta.get("node_type"), 3
    if (folder / ".zarray").is_file():
        return "array", 2
    if (folder / ".zgroup").is_file() or (folder / ".zattrs").is_file():
        return "group", 2
    return None, None


def _array_meta(folder: Path, zarr_format: int) -> dict | None:
    if zarr_format == 3:
        meta = _read_json(folder / "zarr.json")
        return meta if meta and meta.get("node_type") == "array" else None
    return _read_json(folder / ".zarray")


def _chunk_files(folder: Path, meta: dict, zarr_format: int) -> tuple[list[str], list[str]]:
    """(expected chunk or shard file names, those missing), relative to ``folder``."""
    shape = meta["shape"]
    if zarr_format == 3:
        chunk = meta["chunk_grid"]["configuration"]["chunk_shape"]  # the shard shape when sharded
        enc = meta.get("chunk_key_encoding", {"name": "default"})
        sep = enc.get("configuration", {}).get("separator", "/" if enc.get("name") == "default" else ".")
        prefix = "c" + sep if enc.get("name", "default") == "default" else ""
    else:
        chunk = meta["chunks"]
        sep = meta.get("dimension_separator", ".")
        prefix = ""
    grid = [range(-(-n // c)) for n, c in zip(shape, chunk)]
    expected, missing = [], []
    for index in itertools.product(*grid):
        key = prefix + sep.join(map(str, index)) if index else (prefix.rstrip(sep) or "0")
        expected.append(key)
        if not (folder / key).is_file():
            missing.append(key)
    return expected, missing


def _check_units(report: ValidationReport, axes: list, where: str) -> None:
    for i, axis in enumerate(axes):
        if not isinstance(axis, dict) or "unit" not in axis:
            continue
        unit, kind = axis["unit"], {"space": "space", "time": "time"}.get(axis.get("type"))
        allowed = SPACE_UNITS if kind == "space" else TIME_UNITS if kind == "time" else SPACE_UNITS | TIME_UNITS
        if unit in allowed:
            continue
        try:
            fix = normalize_unit(unit, kind or "space")
            hint = f"write the UDUNITS-2 name {fix!r}"
        except UnitError as exc:
            hint = str(exc).split(";", 1)[-1].strip()
        report.add(f"{where}.axes[{i}].unit", f"{unit!r} is not a unit the specification allows; {hint}.")


def _check_multiscale(report: ValidationReport, ms: dict, where: str) -> list[tuple[str, list | None]]:
    """Structural checks on one multiscales entry; return (dataset path, scale) pairs."""
    axes = ms.get("axes") or []
    names = [a.get("name") if isinstance(a, dict) else a for a in axes]
    types = [a.get("type") if isinstance(a, dict) else None for a in axes]
    if not 2 <= len(axes) <= 5:
        report.add(f"{where}.axes", f"{len(axes)} axes; OME-Zarr images have 2 to 5.")
    if len(set(names)) != len(names):
        report.add(f"{where}.axes", f"axis names {names} are not unique.")
    rank = {"time": 0, "channel": 1, "space": 2}
    ranks = [rank.get(t, 1) for t in types]
    if ranks != sorted(ranks):
        report.add(f"{where}.axes", f"axes of types {types} are out of order; expected time, then channel, then space.")
    spatial = [n for n, t in zip(names, types) if t == "space"]
    zyx = [n for n in ("z", "y", "x") if n in spatial]
    if set(spatial) <= {"z", "y", "x"} and spatial != zyx:
        report.add(f"{where}.axes", f"space axes are ordered {spatial}; expected {zyx} (z, y, x order).")
    _check_units(report, axes, where)

    datasets = ms.get("datasets") or []
    if not datasets:
        report.add(f"{where}.datasets", "no datasets; expected one per pyramid level, finest first.")
    pairs = []
    previous_scale = None
    for i, ds in enumerate(datasets):
        dwhere = f"{where}.datasets[{i}]"
        transforms = ds.get("coordinateTransformations") or []
        kinds = [t.get("type") for t in transforms]
        scale = None
        if not kinds or kinds[0] != "scale":
            if "scale" in kinds and "translation" in kinds and kinds.index("translation") < kinds.index("scale"):
                report.add(f"{dwhere}.coordinateTransformations",
                           f"transformations are {kinds}: a translation comes before the scale; expected scale first, then translation.")
            else:
                report.add(f"{dwhere}.coordinateTransformations", f"transformations are {kinds}; expected a scale first.")
        if kinds.count("scale") > 1 or kinds.count("translation") > 1 or len(kinds) > 2:
            report.add(f"{dwhere}.coordinateTransformations", f"transformations are {kinds}; expected one scale and at most one translation.")
        for t in transforms:
            key = t.get("type")
            if key in ("scale", "translation"):
                values = t.get(key)
                if not isinstance(values, list) or len(values) != len(axes):
                    report.add(f"{dwhere}.coordinateTransformations.{key}",
                               f"{key} has {len(values) if isinstance(values, list) else 'no'} values but there are "
                               f"{len(axes)} axes {names}; expected one value per axis.")
                elif key == "scale":
                    scale = values
        if scale is not None and previous_scale is not None and len(scale) == len(previous_scale):
            if any(s < p for s, p in zip(scale, previous_scale)):
                report.add(f"{dwhere}", f"scale {scale} is finer than the previous dataset's {previous_scale}; "
                                        "datasets must go from fine to coarse (full resolution first).")
        previous_scale = scale if scale is not None else previous_scale
        pairs.append((ds.get("path"), scale))
    return pairs


def _check_arrays(report: ValidationReport, root: Path, pairs, n_axes: int, zarr_format: int, check_chunks: bool) -> None:
    first = None  # (shape, scale, dtype) of the first level
    previous_shape = None
    n_files = 0
    for level, (path, scale) in enumerate(pairs):
        if not isinstance(path, str) or not path:
            report.add(f"datasets[{level}].path", "missing; expected the path of the level's array.")
            continue
        folder = root / path
        kind, fmt = _node_kind(folder)
        if kind is None:
            report.add(path, f"dataset path {path!r} does not exist (no Zarr array at {folder}).")
            continue
        if kind != "array":
            report.add(path, f"dataset path {path!r} is a Zarr {kind}, expected an array.")
            continue
        if fmt != zarr_format:
            report.add(path, f"array is Zarr v{fmt} but this OME-Zarr version needs Zarr v{zarr_format}.")
            continue
        meta = _array_meta(folder, fmt)
        shape = list(meta["shape"])
        dtype = meta.get("data_type") if fmt == 3 else meta.get("dtype")
        if len(shape) != n_axes:
            report.add(path, f"array has {len(shape)} dimensions but the image has {n_axes} axes.")
            continue
        if first is None:
            first = (shape, scale, dtype)
        else:
            if dtype != first[2]:
                report.add(path, f"data type {dtype} differs from level 0's {first[2]}; expected the same at every level.")
            if previous_shape is not None and any(s > p for s, p in zip(shape, previous_shape)):
                report.add(path, f"shape {shape} is larger than the previous level's {previous_shape}.")
            if scale and first[1] and len(scale) == len(first[1]) == len(shape):
                for axis, (n, s, n0, s0) in enumerate(zip(shape, scale, first[0], first[1])):
                    if s0 > 0 and abs(n * s - n0 * s0) > s + 1e-9 * s:
                        report.add(path, f"axis {axis}: {n} voxels of {s:g} cover {n * s:g}, but level 0 covers "
                                         f"{n0 * s0:g}; shape and scale do not match.")
        previous_shape = shape
        if check_chunks:
            expected, missing = _chunk_files(folder, meta, fmt)
            n_files += len(expected)
            if missing:
                examples = ", ".join(f"{path}/{m}" for m in missing[:_MAX_EXAMPLES])
                report.add(path, f"{len(missing)} of {len(expected)} chunk files are missing (e.g. {examples}); "
                                 "zarr would read those regions as the fill value, without any error.")
    if check_chunks:
        report.checked.append(f"{n_files} chunk files present")


def _check_schema(report: ValidationReport, attrs: dict, version: str) -> None:
    import jsonschema
    from ngff_zarr.validate import _schema_registry, load_schema

    schema = load_schema(version=version, model="image")
    validator = jsonschema.Draft202012Validator(schema, registry=_schema_registry(version))
    errors = sorted(validator.iter_errors(attrs), key=lambda e: list(e.absolute_path))
    for error in errors:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".") or "(root)"
        report.add(where, f"{error.message[:300]} (JSON schema)", "ngff-zarr")
    report.checked.append(f"OME-Zarr {version} JSON schema (ngff-zarr)")


def _check_models(report: ValidationReport, root: Path, version: str) -> None:
    import pydantic
    import zarr

    if version == "0.5":
        from ome_zarr_models.v05.image import Image
    else:
        from ome_zarr_models.v04.image import Image
    try:
        Image.from_zarr(zarr.open_group(root, mode="r", zarr_format=_EXPECTED_ZARR[version]))
    except pydantic.ValidationError as exc:
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ())) or "(root)"
            report.add(where, err.get("msg", str(err))[:300], "ome-zarr-models")
    except Exception as exc:  # any other refusal is a finding too, reported with its type
        report.add("(image)", f"{type(exc).__name__}: {str(exc)[:300]}", "ome-zarr-models")
    report.checked.append(f"ome-zarr-models {version} Image")


def validate_ome_zarr(path: str | os.PathLike, check_chunks: bool = True) -> ValidationReport:
    """Check an OME-Zarr 0.4 or 0.5 image on disk and report every problem found.

    Parameters
    ----------
    path
        The image folder (the one holding ``zarr.json``, or ``.zattrs`` for 0.4).
    check_chunks
        Check that every chunk (or shard) file of every level exists. This
        lists the folders, which can take a while for millions of chunks.
        Writers that skip chunks equal to the fill value on purpose produce
        images that fail this check.

    Returns
    -------
    ValidationReport
        ``report.ok`` is ``True`` when nothing is wrong; ``print(report)`` lists
        each problem with the field or file concerned and what was expected;
        ``report.raise_if_problems()`` turns them into an exception.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not an existing folder.
    TypeError
        If ``check_chunks`` is not a bool.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from data_helpers import validate_ome_zarr, write_ome_zarr
    >>> folder = tempfile.mkdtemp()
    >>> _ = write_ome_zarr(np.ones((64, 64, 64), np.uint8), f"{folder}/c.ome.zarr", voxel_size=2, chunks=32)
    >>> report = validate_ome_zarr(f"{folder}/c.ome.zarr")
    >>> report.ok, len(report.problems)
    (True, 0)
    """
    if not isinstance(check_chunks, bool):
        raise TypeError(f"check_chunks must be True or False, got {check_chunks!r}.")
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"{str(root)!r} is not an existing folder; give the folder of an OME-Zarr image.")
    report = ValidationReport(path=root, version=None)
    kind, zarr_format = _node_kind(root)
    if kind is None:
        report.add("(root)", "no Zarr metadata (zarr.json, or .zgroup/.zattrs); this is not a Zarr group.")
        return report
    if kind == "array":
        report.add("(root)", f"this is a plain Zarr v{zarr_format} array, not an OME-Zarr image; expected a group "
                             "whose attributes hold 'multiscales' and whose arrays are the pyramid levels. "
                             "Write it as OME-Zarr with data_helpers.write_ome_zarr.")
        return report
    if zarr_format == 3:
        attrs = (_read_json(root / "zarr.json") or {}).get("attributes", {})
        ome = attrs.get("ome")
        if not isinstance(ome, dict):
            report.add("attributes", "no 'ome' attributes; an OME-Zarr 0.5 group keeps its metadata under 'ome'.")
            return report
        found = ome.get("version")
        version = "0.5"
        if found != version:
            report.add("attributes.ome.version", f"version is {found!r}; a Zarr v3 image must be OME-Zarr '0.5'.")
        multiscales = ome.get("multiscales")
        prefix = "ome.multiscales"
    else:
        attrs = _read_json(root / ".zattrs") or {}
        multiscales = attrs.get("multiscales")
        version = "0.4"
        found = (multiscales[0] or {}).get("version") if isinstance(multiscales, list) and multiscales else None
        if found != version:
            report.add("multiscales[0].version", f"version is {found!r}; a Zarr v2 image must be OME-Zarr '0.4'.")
        prefix = "multiscales"
    report.version = version
    if not isinstance(multiscales, list) or not multiscales:
        report.add(prefix, "no multiscales metadata; expected a list with one entry per image.")
        return report
    _check_schema(report, attrs, version)
    for i, ms in enumerate(multiscales):
        pairs = _check_multiscale(report, ms, f"{prefix}[{i}]")
        _check_arrays(report, root, pairs, len(ms.get("axes") or []), _EXPECTED_ZARR[version], check_chunks)
    report.checked.insert(1, "axes, transformations, units, levels (data_helpers)")
    _check_models(report, root, version)
    return report
