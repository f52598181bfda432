"""Validate OME-Zarr data: every problem, with its severity, where it is, and how to fix it.

:func:`validate_ome_zarr` reads any OME-Zarr node (an image, its labels, a
plate, a well, a bioformats2raw collection) from a folder or an ``http(s)://``
or ``s3://`` URL, and reports what three checkers find:

- **ngff-zarr**: the specification's JSON schemas, bundled with ngff-zarr
  (0.4, 0.5 and 0.6; nothing is fetched). The plain schema gives errors; the
  strict schema, which adds the SHOULD rules, gives warnings;
- **ome-zarr-models**: its pydantic models of 0.4 and 0.5 images, run on the
  metadata documents already read (no extra reads);
- **data_helpers**: what neither makes: axis order and count against each
  scale, transformation order, scales that are zero, negative, NaN or infinite,
  levels from fine to coarse, units that are UDUNITS-2 names, dataset paths that
  exist, dtype and shape consistent across levels, label images, plate and well
  layout, omero channels, and chunk files on disk.

Severities
    An **error** means the data cannot be read as the metadata describes, or
    breaks a MUST of the specification. A **warning** means look closer: a
    SHOULD-level rule, or chunk files that are absent. An absent chunk file is
    legal Zarr (it reads as the fill value, and most writers skip chunks equal to
    it); it is an error only in an image written by :func:`write_ome_zarr`, which
    writes every chunk.

The command ``python -m data_helpers validate PATH...`` prints the same report
and exits with status 0 (no errors), 1 (errors; with ``--strict`` also warnings)
or 2 (a path could not be checked at all).
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from data_helpers._fastimport import import_jsonschema
from data_helpers.storeaccess import StoreAccessError, StoreReader, clean_key, join_key, open_store
from data_helpers.units import SPACE_UNITS, TIME_UNITS, UnitError, normalize_unit
from data_helpers.errors import BookError
from data_helpers.workspace import display_path

__all__ = ["InvalidOmeZarrError", "Problem", "ValidationReport", "validate_ome_zarr"]

Severity = Literal["error", "warning"]

#: The OME-Zarr versions this validator knows, and the Zarr format each is stored in.
VERSIONS = {"0.4": 2, "0.5": 3, "0.6": 3}
_MARKER_KEY = "data_helpers"  # the attribute write_ome_zarr adds (see omezarr.py)
_MAX_EXAMPLES = 3
_MAX_HEAD_REQUESTS = 20_000  # chunk files checked one by one over HTTP before giving up
_MAX_EXAMPLE_PROBES = 100_000
_MAX_SERIES = 10_000
_OME_KEYS = ("multiscales", "plate", "well", "labels", "image-label", "bioformats2raw.layout", "omero")
_HEX_COLOR = re.compile(r"^[0-9A-Fa-f]{6}$")
_ABSENT_CHUNKS_FIX = (
    "If the writer skips chunks that equal the fill value (zarr, ome-zarr-py and ngff-zarr do by default), "
    "these regions are meant to be empty; if the data was copied or downloaded, compare the file count "
    "with the source's."
)


class InvalidOmeZarrError(BookError, ValueError):
    """An OME-Zarr node has problems; the message lists them."""


@dataclass(frozen=True)
class Problem:
    """One finding about an OME-Zarr node.

    Attributes
    ----------
    where
        The place: a metadata field (``multiscales[0].axes[2].unit``) or a file
        (``1/c/0/1/1``), inside ``node``.
    message
        What is wrong and what was expected.
    checker
        Who found it: ``"data_helpers"``, ``"ngff-zarr"`` (JSON schema) or ``"ome-zarr-models"``.
    severity
        ``"error"`` (the data cannot be read as described, or a MUST is broken)
        or ``"warning"`` (a SHOULD, or something to look at closer).
    fix
        What to do about it (may be empty when the message says it).
    node
        The node the field belongs to, relative to the path validated
        (``""`` for that node itself, ``"labels/nuclei"`` for a label image).
    """

    where: str
    message: str
    checker: str = "data_helpers"
    severity: Severity = "error"
    fix: str = ""
    node: str = ""

    @property
    def place(self) -> str:
        """``node: where``, or just ``where`` for the node validated."""
        return f"{self.node}: {self.where}" if self.node else self.where

    def __str__(self) -> str:
        text = f"{self.severity} [{self.checker}] {self.place}: {self.message}"
        return f"{text} Fix: {self.fix}" if self.fix else text


@dataclass
class ValidationReport:
    """The result of :func:`validate_ome_zarr`: the findings, and what was checked.

    ``report.ok`` is ``True`` when there is no error (with ``strict=True``, no
    warning either); ``bool(report)`` is the same. ``print(report)`` lists the
    errors first, then the warnings, each with its place and its fix.

    Attributes
    ----------
    path
        The path or URL, as it was given.
    version
        The OME-Zarr version found (``None`` if none could be read).
    kind
        The node found: ``"image"``, ``"label image"``, ``"labels"``, ``"plate"``,
        ``"well"``, ``"bioformats2raw"``, ``"array"`` or ``"unknown"``.
    problems
        Every finding, errors and warnings, in the order found.
    checked
        What was checked, in words.
    summaries
        One line per image inside a plate, well or bioformats2raw collection.
    requests
        Network requests made (0 for a local folder).
    strict
        Whether warnings count against ``ok``.
    """

    path: str
    version: str | None = None
    kind: str = "unknown"
    problems: list[Problem] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    summaries: list[str] = field(default_factory=list)
    requests: int = 0
    strict: bool = False

    @property
    def errors(self) -> list[Problem]:
        """The findings of severity ``"error"``."""
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        """The findings of severity ``"warning"``."""
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """``True`` when there is no error (and, with ``strict``, no warning)."""
        return not self.errors and not (self.strict and self.warnings)

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        what = f"OME-Zarr {self.version} {self.kind}" if self.version else f"{self.kind} node"
        n_err, n_warn = len(self.errors), len(self.warnings)
        if not self.problems:
            verdict = "valid"
        else:
            verdict = f"{n_err} error{'s' * (n_err != 1)}, {n_warn} warning{'s' * (n_warn != 1)}"
            if self.ok:
                verdict = f"valid, {verdict}"
        # A local path is shown relative to the book's repository or a nearby working folder (display_path).
        shown = display_path(self.path)
        lines = [f"{shown}: {what}: {verdict}"]
        lines += [f"  - {p}" for p in self.errors + self.warnings]
        lines += [f"  {s}" for s in self.summaries]
        if self.checked:
            lines.append(f"  Checked: {'; '.join(self.checked)}.")
        if self.requests:
            lines.append(f"  {self.requests} request{'s' * (self.requests != 1)} made.")
        text = "\n".join(lines)
        return text.replace(self.path, shown) if os.path.isabs(self.path) else text

    def raise_if_problems(self) -> None:
        """Raise :class:`InvalidOmeZarrError` listing every finding, if the report is not ``ok``."""
        if not self.ok:
            raise InvalidOmeZarrError(str(self))

    def add(self, where: str, message: str, checker: str = "data_helpers", severity: Severity = "error",
            fix: str = "", node: str = "") -> None:
        """Record a finding."""
        self.problems.append(Problem(where, message, checker, severity, fix, node))


# -- small helpers ---------------------------------------------------------------------------------


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _get(d: Any, key: str, default: Any = None) -> Any:
    return d.get(key, default) if isinstance(d, dict) else default


def _short(value: Any, limit: int = 80) -> str:
    try:
        text = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class _Node:
    key: str  # relative to the validated root, "" for the root
    zarr_format: int
    node_type: str  # "group" | "array"
    attrs: dict
    meta: dict  # the array metadata (zarr.json or .zarray), {} for groups


class _Run:
    """State of one validation: the store, the report, the options, the documents read."""

    def __init__(self, store: StoreReader, report: ValidationReport, check_chunks: bool, check_arrays: bool):
        self.store = store
        self.report = report
        self.check_chunks = check_chunks
        self.check_arrays = check_arrays
        self.docs: dict[str, bytes] = {}  # metadata documents read, for ome-zarr-models
        self.n_chunk_files = 0
        self.n_chunks_expected = 0
        self.schema_versions: set[str] = set()
        self.models_run = False

    def error(self, node: str, where: str, message: str, fix: str = "", checker: str = "data_helpers") -> None:
        self.report.add(where, message, checker, "error", fix, node)

    def warn(self, node: str, where: str, message: str, fix: str = "", checker: str = "data_helpers") -> None:
        self.report.add(where, message, checker, "warning", fix, node)

    # -- reading ------------------------------------------------------------------------------------

    def read_json(self, key: str, node: str) -> tuple[bool, Any]:
        """(file exists, parsed document or None when malformed); malformed files are reported."""
        try:
            raw = self.store.read(key)
        except ValueError as exc:
            self.error(node, key, f"the file {exc}.", "Restore the file from the source of the data.")
            return True, None
        if raw is None:
            return False, None
        try:
            doc = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            self.error(node, key, "is not UTF-8 text, so not a JSON metadata document.",
                       "Restore the file from the source of the data.")
            return True, None
        except json.JSONDecodeError as exc:
            self.error(node, key, f"is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}).",
                       "Fix the JSON syntax (a JSON linter shows where), or restore the file.")
            return True, None
        except RecursionError:
            self.error(node, key, "is JSON nested too deeply to read.", "Restore the file from the source.")
            return True, None
        self.docs[key] = raw
        return True, doc

    def read_node(self, key: str, only_format: int | None = None) -> _Node | None:
        """The Zarr node at ``key`` (v3 or v2), or ``None`` if there is none (problems are reported).

        ``only_format`` looks for one Zarr format's files only (fewer requests for an optional node).
        """
        node = key
        exists, doc = (False, None) if only_format == 2 else self.read_json(join_key(key, "zarr.json"), node)
        if exists:
            if not isinstance(doc, dict):
                if doc is not None:
                    self.error(node, join_key(key, "zarr.json"), f"holds {type(doc).__name__} {_short(doc)}, "
                               "expected a JSON object with zarr_format, node_type and attributes.")
                return None
            node_type = doc.get("node_type")
            if doc.get("zarr_format") != 3 or node_type not in ("group", "array"):
                self.error(node, join_key(key, "zarr.json"),
                           f"zarr_format is {_short(doc.get('zarr_format'))} and node_type {_short(node_type)}; "
                           "expected zarr_format 3 and node_type 'group' or 'array'.")
                return None
            attrs = doc.get("attributes", {})
            if not isinstance(attrs, dict):
                self.error(node, join_key(key, "zarr.json") + ":attributes",
                           f"is {type(attrs).__name__} {_short(attrs)}, expected a JSON object.")
                attrs = {}
            return _Node(key, 3, node_type, attrs, doc if node_type == "array" else {})
        if only_format == 3:
            return None
        exists, zarray = self.read_json(join_key(key, ".zarray"), node)
        zexists, zattrs = self.read_json(join_key(key, ".zattrs"), node)
        gexists, _ = self.read_json(join_key(key, ".zgroup"), node)
        if zattrs is not None and not isinstance(zattrs, dict):
            self.error(node, join_key(key, ".zattrs"), f"holds {type(zattrs).__name__} {_short(zattrs)}, "
                       "expected a JSON object of attributes.")
            zattrs = {}
        if exists:
            if not isinstance(zarray, dict):
                if zarray is not None:
                    self.error(node, join_key(key, ".zarray"), f"holds {type(zarray).__name__}, expected a JSON object.")
                return None
            return _Node(key, 2, "array", zattrs or {}, zarray)
        if zexists or gexists:
            return _Node(key, 2, "group", zattrs or {}, {})
        return None


# -- metadata checks -------------------------------------------------------------------------------


def _check_schema(run: _Run, node: _Node, attrs: dict, version: str, model: str) -> None:
    """JSON schema: the plain schema gives errors, the strict one adds warnings."""
    try:
        jsonschema = import_jsonschema()
        from ngff_zarr.validate import _schema_registry, load_schema
    except ImportError:  # pragma: no cover - pinned in requirements.txt
        run.warn(node.key, "(schema)", "the JSON schemas could not be loaded (ngff-zarr[validate] is not installed).",
                 "pip install 'ngff-zarr[validate]'")
        return
    seen = set()
    for strict in (False, True):
        try:
            schema = load_schema(version=version, model=model, strict=strict)
        except (FileNotFoundError, ValueError, OSError):
            continue
        validator = jsonschema.Draft202012Validator(schema, registry=_schema_registry(version))
        try:
            errors = list(validator.iter_errors(attrs))
        except RecursionError:  # pragma: no cover - absurdly nested metadata
            run.error(node.key, "(attributes)", "the metadata is nested too deeply for the JSON schema to check.")
            return
        for error in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path]):
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
            where = where or "(attributes)"
            message = error.message if len(error.message) <= 300 else error.message[:297] + "..."
            if (where, message) in seen:
                continue
            seen.add((where, message))
            if strict:
                run.warn(node.key, where, f"{message} (strict {model} schema: a SHOULD of the specification)",
                         checker="ngff-zarr")
            else:
                run.error(node.key, where, f"{message} ({model} schema)", checker="ngff-zarr")
    run.schema_versions.add(version)


def _check_units(run: _Run, node: str, axes: list, where: str) -> None:
    for i, axis in enumerate(axes):
        if not isinstance(axis, dict) or "unit" not in axis:
            continue
        unit, kind = axis["unit"], axis.get("type")
        place = f"{where}.axes[{i}].unit"
        if not isinstance(unit, str):
            run.error(node, place, f"unit is {_short(unit)}, expected a string.", "Write a UDUNITS-2 unit name.")
            continue
        if kind == "space" and unit in SPACE_UNITS or kind == "time" and unit in TIME_UNITS:
            continue
        if kind == "time" and unit in SPACE_UNITS:
            run.warn(node, place, f"a time axis has the space unit {unit!r}.", "Give the time axis a time unit, "
                     f"such as 'second' or 'millisecond'.")
            continue
        if kind == "space" and unit in TIME_UNITS:
            run.warn(node, place, f"a space axis has the time unit {unit!r}.", "Give the space axis a length unit.")
            continue
        if kind not in ("space", "time") and unit in SPACE_UNITS | TIME_UNITS:
            continue
        try:
            fix = f"Write the UDUNITS-2 name {normalize_unit(unit, kind if kind in ('space', 'time') else 'space')!r}."
        except UnitError as exc:
            fix = str(exc).split(";", 1)[-1].strip().capitalize()
        run.warn(node, place, f"{unit!r} is not one of the UDUNITS-2 names the specification recommends.", fix)


def _check_axes(run: _Run, node: str, axes: Any, where: str) -> list | None:
    """Axis rules of 0.4-0.6; return the axes if they can be used further."""
    if not isinstance(axes, list) or not axes:
        run.error(node, f"{where}.axes", f"is {_short(axes)}; expected a list of 2 to 5 axes.",
                  "Give each array dimension an axis, e.g. {'name': 'x', 'type': 'space', 'unit': 'micrometer'}.")
        return None
    bad = [i for i, a in enumerate(axes) if not isinstance(a, dict) or not isinstance(a.get("name"), str)]
    if bad:
        run.error(node, f"{where}.axes[{bad[0]}]", f"is {_short(axes[bad[0]])}; expected an object with a "
                  "string 'name'.", "Give every axis a name, such as 'z', 'y' or 'x'.")
        return None
    names = [a["name"] for a in axes]
    types = [a.get("type") for a in axes]
    if not 2 <= len(axes) <= 5:
        run.error(node, f"{where}.axes", f"{len(axes)} axes {names}; OME-Zarr images have 2 to 5.")
    if len(set(names)) != len(names):
        run.error(node, f"{where}.axes", f"axis names {names} are not unique.", "Give each axis its own name.")
    n_space = types.count("space")
    if not 2 <= n_space <= 3:
        run.error(node, f"{where}.axes", f"{n_space} axes of type 'space' ({names}); an image has 2 or 3.")
    if types.count("time") > 1:
        run.error(node, f"{where}.axes", f"{types.count('time')} time axes; at most one is allowed.")
    others = [t for t in types if t not in ("space", "time")]
    if len(others) > 1:
        run.error(node, f"{where}.axes", f"{len(others)} channel or custom axes ({others}); at most one is allowed.")
    rank = [0 if t == "time" else 2 if t == "space" else 1 for t in types]
    if rank != sorted(rank):
        run.error(node, f"{where}.axes", f"axes of types {types} are out of order.",
                  "Order them time, then channel (or custom), then space.")
    spatial = [n for n, t in zip(names, types) if t == "space"]
    zyx = [n for n in ("z", "y", "x") if n in spatial]
    if set(spatial) <= {"z", "y", "x"} and spatial != zyx:
        run.warn(node, f"{where}.axes", f"space axes are ordered {spatial}; the specification recommends {zyx}.",
                 "Store the space axes in z, y, x order.")
    _check_units(run, node, axes, where)
    return axes


def _transform_values(run: _Run, node: str, place: str, t: dict, key: str, n_axes: int | None) -> list | None:
    values = t.get(key)
    if values is None:
        if "path" in t:
            run.warn(node, place, f"the {key} is stored in a file ({_short(t['path'])}), which is not checked.")
        else:
            run.error(node, place, f"a {key!r} transformation without its {key!r} values.",
                      f"Give '{key}': a list of one number per axis.")
        return None
    if not isinstance(values, list) or not all(_is_number(v) for v in values):
        run.error(node, f"{place}.{key}", f"is {_short(values)}; expected a list of numbers, one per axis.")
        return None
    if n_axes is not None and len(values) != n_axes:
        run.error(node, f"{place}.{key}", f"{key} has {len(values)} values but there are {n_axes} axes; "
                  "expected one value per axis.")
        return None
    if not all(math.isfinite(v) for v in values):
        run.error(node, f"{place}.{key}", f"{values} holds NaN or Infinity, which are not JSON numbers and place "
                  "no voxel anywhere.", f"Write finite {key} values.")
        return None
    if key == "scale" and any(v <= 0 for v in values):
        run.error(node, f"{place}.{key}", f"{values} has a zero or negative value; a zero scale cannot be "
                  "inverted and a negative one flips the axis.", "Write the voxel size, a positive number, per axis.")
        return None
    return values


def _check_transforms(run: _Run, node: str, transforms: Any, place: str, n_axes: int | None,
                      required: bool) -> tuple[list | None, list | None]:
    """One scale, then at most one translation (0.4/0.5 rule). Return (scale, translation)."""
    if transforms is None and not required:
        return None, None
    if not isinstance(transforms, list) or not transforms:
        run.error(node, place, f"is {_short(transforms)}; expected a list holding a scale, then optionally a "
                  "translation.", "Add {'type': 'scale', 'scale': [...]} with one value per axis.")
        return None, None
    if not all(isinstance(t, dict) for t in transforms):
        run.error(node, place, f"is {_short(transforms)}; each transformation must be an object with a 'type'.")
        return None, None
    kinds = [t.get("type") for t in transforms]
    if kinds[0] != "scale":
        if "scale" in kinds and "translation" in kinds and kinds.index("translation") < kinds.index("scale"):
            run.error(node, place, f"transformations are {kinds}: a translation comes before the scale.",
                      "Put the scale first, then the translation.")
        else:
            run.error(node, place, f"transformations are {kinds}; expected a scale first.",
                      "Add a 'scale' transformation as the first entry.")
    if kinds.count("scale") > 1 or kinds.count("translation") > 1 or len(kinds) > 2 or \
            any(k not in ("scale", "translation") for k in kinds):
        run.error(node, place, f"transformations are {kinds}; expected one scale and at most one translation.")
    scale = translation = None
    for j, t in enumerate(transforms):
        if t.get("type") == "scale":
            scale = _transform_values(run, node, f"{place}[{j}]", t, "scale", n_axes)
        elif t.get("type") == "translation":
            translation = _transform_values(run, node, f"{place}[{j}]", t, "translation", n_axes)
    return scale, translation


def _check_omero(run: _Run, node: str, omero: Any, where: str, n_channels: int | None) -> None:
    if not isinstance(omero, dict):
        run.error(node, where, f"is {_short(omero)}; expected an object with a 'channels' list.")
        return
    channels = omero.get("channels")
    if not isinstance(channels, list):
        run.error(node, f"{where}.channels", f"is {_short(channels)}; expected a list with one entry per channel.")
        return
    if n_channels is not None and len(channels) != n_channels:
        run.error(node, f"{where}.channels", f"{len(channels)} channels described, but the 'c' axis has "
                  f"{n_channels}.", "Describe each channel of the image once.")
    for i, ch in enumerate(channels):
        place = f"{where}.channels[{i}]"
        if not isinstance(ch, dict):
            run.error(node, place, f"is {_short(ch)}; expected an object with 'color' and 'window'.")
            continue
        color = ch.get("color")
        if color is not None and not (isinstance(color, str) and _HEX_COLOR.match(color)):
            run.error(node, f"{place}.color", f"is {_short(color)}; expected 6 hexadecimal digits such as 'FF0000'.")
        window = ch.get("window")
        if window is None:
            run.error(node, f"{place}.window", "is missing; each channel needs a display window.",
                      "Add {'min': ..., 'max': ..., 'start': ..., 'end': ...}.")
            continue
        if not isinstance(window, dict):
            run.error(node, f"{place}.window", f"is {_short(window)}; expected an object.")
            continue
        values = {k: window.get(k) for k in ("min", "max", "start", "end")}
        wrong = [k for k, v in values.items() if not _is_number(v) or not math.isfinite(v)]
        if wrong:
            run.error(node, f"{place}.window", f"{', '.join(wrong)} {'is' if len(wrong) == 1 else 'are'} "
                      f"{', '.join(_short(values[k]) for k in wrong)}; expected finite numbers.")
            continue
        if values["min"] > values["max"]:
            run.warn(node, f"{place}.window", f"min {values['min']:g} is above max {values['max']:g}.")
        if values["start"] > values["end"]:
            run.warn(node, f"{place}.window", f"start {values['start']:g} is above end {values['end']:g}: the "
                     "display window is inverted.", "Swap start and end, or set 'inverted': true on purpose.")


# -- arrays and chunks -----------------------------------------------------------------------------


@dataclass
class _ArrayInfo:
    shape: list[int]
    chunks: list[int]
    dtype: Any
    fill_value: Any
    key_of: Any  # function: index tuple -> key relative to the array
    parse: Any  # function: key relative to the array -> index tuple or None


def _array_info(run: _Run, node: str, place: str, meta: dict, zarr_format: int) -> _ArrayInfo | None:
    shape = meta.get("shape")
    if zarr_format == 3:
        grid = meta.get("chunk_grid")
        chunks = _get(_get(grid, "configuration"), "chunk_shape")
        dtype = meta.get("data_type")
        enc = meta.get("chunk_key_encoding", {"name": "default"})
        name = _get(enc, "name", "default")
        sep = _get(_get(enc, "configuration"), "separator", "/" if name == "default" else ".")
        prefix = "c" if name == "default" else ""
    else:
        chunks = meta.get("chunks")
        dtype = meta.get("dtype")
        name, sep, prefix = "v2", meta.get("dimension_separator", ".") or ".", ""
    if not isinstance(shape, list) or not all(_is_int(n) and n >= 0 for n in shape):
        run.error(node, place, f"array shape is {_short(shape)}; expected a list of non-negative integers.")
        return None
    if not isinstance(chunks, list) or len(chunks) != len(shape) or not all(_is_int(c) and c > 0 for c in chunks):
        run.error(node, place, f"chunk shape is {_short(chunks)}; expected {len(shape)} positive integers.")
        return None
    if sep not in ("/", ".") or name not in ("default", "v2"):
        run.error(node, place, f"chunk key encoding {_short(_get(meta, 'chunk_key_encoding'))} is not one Zarr "
                  "defines; expected the name 'default' or 'v2' with separator '/' or '.'.")
        return None
    ndim = len(shape)

    def key_of(index: tuple[int, ...]) -> str:
        if prefix:
            return prefix + "".join(sep + str(i) for i in index)
        return sep.join(map(str, index)) if index else "0"

    def parse(key: str) -> tuple[int, ...] | None:
        if prefix:
            if key == prefix and ndim == 0:
                return ()
            if not key.startswith(prefix + sep):
                return None
            key = key[len(prefix) + 1:]
        elif ndim == 0:
            return () if key == "0" else None
        parts = key.split(sep)
        if len(parts) != ndim or not all(p.isdigit() and p.isascii() for p in parts):
            return None
        return tuple(int(p) for p in parts)

    return _ArrayInfo(shape, chunks, dtype, meta.get("fill_value"), key_of, parse)


def _grid_indices(grid: list[int]) -> Iterator[tuple[int, ...]]:
    """Every index of a chunk grid in C order, one at a time (``itertools.product`` would first build
    a tuple of each axis's range, which a forged shape can make enormous)."""
    if any(g <= 0 for g in grid):
        return
    index = [0] * len(grid)
    while True:
        yield tuple(index)
        axis = len(grid) - 1
        while axis >= 0:
            index[axis] += 1
            if index[axis] < grid[axis]:
                break
            index[axis] = 0
            axis -= 1
        if axis < 0:
            return


def _check_chunk_files(run: _Run, node: str, array_key: str, path: str, info: _ArrayInfo, marked: bool) -> None:
    """Count the chunk (or shard) files of one array: streaming, never a list of every key."""
    grid = [-(-n // c) for n, c in zip(info.shape, info.chunks)]
    expected = math.prod(grid)
    run.n_chunks_expected += expected
    if expected == 0:
        return
    store = run.store
    present = 0
    missing_examples: list[str] = []
    if store.can_list:
        for name in store.iter_files(array_key):
            index = info.parse(name)
            if index is not None and all(i < g for i, g in zip(index, grid)):
                present += 1
        missing = expected - present
        if missing:
            probes = 0
            for index in _grid_indices(grid):
                key = info.key_of(index)
                probes += 1
                if not store.exists(join_key(array_key, key)):
                    missing_examples.append(key)
                    if len(missing_examples) == _MAX_EXAMPLES:
                        break
                if probes >= min(present + _MAX_EXAMPLES, _MAX_EXAMPLE_PROBES):
                    break
    else:
        if expected > _MAX_HEAD_REQUESTS:
            run.warn(node, path, f"chunk files not checked: over HTTP each of the {expected:,} chunk files "
                     "would need its own request.", "Validate where the files are (a local copy or an s3:// URL, "
                     "which can be listed), or pass check_chunks=False (--no-chunks) to skip this check.")
            return
        missing = 0
        for index in _grid_indices(grid):
            key = info.key_of(index)
            if store.exists(join_key(array_key, key)):
                present += 1
            else:
                missing += 1
                if len(missing_examples) < _MAX_EXAMPLES:
                    missing_examples.append(key)
    run.n_chunk_files += present
    if not missing:
        return
    examples = ", ".join(f"{path}/{m}" for m in missing_examples)
    examples = f" (e.g. {examples})" if examples else ""
    text = f"{missing:,} of {expected:,} chunk files are absent{examples}; zarr reads those regions as the fill " \
           f"value {_short(info.fill_value)}."
    if present * 1000 + 1000 < expected:
        text += f" Only {present:,} exist: the shape {info.shape} in the metadata may be wrong."
    if marked:
        run.error(node, path, text + " This image carries the data_helpers marker, and write_ome_zarr writes "
                  "every chunk, so these files were lost.", "Copy the image again from its source, or write it again.")
    else:
        run.warn(node, path, text, _ABSENT_CHUNKS_FIX)


# -- node checks -----------------------------------------------------------------------------------


def _version_of(run: _Run, node: _Node, inherit: str | None = None) -> tuple[str | None, dict]:
    """(OME-Zarr version, the OME attributes) of a group; problems are reported.

    ``inherit`` is the version of the enclosing node: a labels group without its own version
    (as ome-zarr-py writes it) is read as that version, with a warning.
    """
    attrs = node.attrs
    if node.zarr_format == 3 and inherit and isinstance(attrs.get("ome"), dict) and "version" not in attrs["ome"]:
        run.warn(node.key, "ome.version", f"missing; read as the enclosing node's {inherit}.",
                 f"Add 'version': '{inherit}' to this group's 'ome' attributes.")
        return inherit, attrs["ome"]
    if node.zarr_format == 3:
        ome = attrs.get("ome")
        if not isinstance(ome, dict):
            if ome is not None:
                run.error(node.key, "attributes.ome", f"is {_short(ome)}; expected an object.")
                return None, {}
            if any(k in attrs for k in _OME_KEYS):
                run.error(node.key, "attributes", "OME-Zarr keys at the top of a Zarr v3 group's attributes; "
                          "OME-Zarr 0.5 and later keep them under 'ome' (with 'version').",
                          "Move them into attributes['ome'] and add 'version': '0.5'.")
            return None, {}
        found = ome.get("version")
        if isinstance(found, str) and found.startswith("0.6"):
            return "0.6", ome
        if found == "0.5":
            return "0.5", ome
        run.error(node.key, "ome.version", f"version is {_short(found)}; a Zarr v3 group holds OME-Zarr '0.5' "
                  "or '0.6'.", "Write the version the metadata follows, '0.5' for most writers today.")
        if isinstance(found, str) and found.startswith("0.5"):
            return "0.5", ome  # close enough to check the rest as 0.5
        return None, ome
    versions = []
    for key in ("plate", "well", "image-label"):
        if isinstance(attrs.get(key), dict) and "version" in attrs[key]:
            versions.append((key, attrs[key]["version"]))
    ms = attrs.get("multiscales")
    if isinstance(ms, list):
        for i, m in enumerate(ms):
            if isinstance(m, dict) and "version" in m:
                versions.append((f"multiscales[{i}]", m["version"]))
    for where, found in versions:
        if found != "0.4":
            run.error(node.key, f"{where}.version", f"version is {_short(found)}; a Zarr v2 group holds "
                      "OME-Zarr '0.4' (0.5 and later use Zarr v3).", "Write 'version': '0.4'.")
            if isinstance(found, str) and found.startswith("0.4"):
                continue  # close enough to check the rest as 0.4
            return None, attrs
    return "0.4", attrs


def _classify(ome: dict) -> str:
    if "plate" in ome:
        return "plate"
    if "well" in ome:
        return "well"
    if "multiscales" in ome:
        return "label image" if "image-label" in ome else "image"
    if "image-label" in ome:
        return "label image"
    if "bioformats2raw.layout" in ome:
        return "bioformats2raw"
    if "labels" in ome:
        return "labels"
    return "unknown"


def _check_node(run: _Run, key: str, expect: str | None = None, parent_levels: list | None = None,
                parent_shapes: list | None = None) -> dict:
    """Validate the node at ``key``; return facts for the caller (kind, version, levels)."""
    node = run.read_node(key)
    label = key or "(root)"
    if node is None:
        if key:
            run.error(key, "(node)", f"there is no Zarr node at {run.store.join(key)!r} (no zarr.json, .zattrs, "
                      ".zgroup or .zarray).", "Check the path in the metadata that names it, or restore the node.")
        else:
            run.error("", "(root)", "no Zarr metadata (zarr.json, or .zgroup/.zattrs): this is not a Zarr group.",
                      "Give the folder that holds the image's zarr.json (or .zattrs for OME-Zarr 0.4).")
        return {"kind": "missing"}
    if node.node_type == "array":
        run.error(key, "(node)", f"this is a plain Zarr v{node.zarr_format} array, not an OME-Zarr "
                  f"{expect or 'image'}: it has no multiscales metadata around it.",
                  "Give the folder of the image that holds this array, or write the array as OME-Zarr with "
                  "data_helpers.write_ome_zarr.")
        return {"kind": "array"}
    version, ome = _version_of(run, node)
    kind = _classify(ome)
    if version is None:
        if kind == "unknown" and not any(k in node.attrs for k in _OME_KEYS) and "ome" not in node.attrs:
            _report_unknown(run, node)
        return {"kind": kind}
    if expect and kind != expect and not (expect == "image" and kind == "label image"):
        run.error(key, "(node)", f"expected an OME-Zarr {expect} here, found {_describe(kind, ome)}.")
        return {"kind": kind, "version": version}
    if kind == "unknown":
        _report_unknown(run, node)
        return {"kind": kind, "version": version}
    schema_attrs = node.attrs
    if kind in ("image", "label image"):
        facts = _check_image(run, node, version, ome, schema_attrs, parent_levels, parent_shapes)
    elif kind == "labels":
        facts = _check_labels_group(run, node, version, ome, None)
    elif kind == "plate":
        facts = _check_plate(run, node, version, ome, schema_attrs)
    elif kind == "well":
        facts = _check_well(run, node, version, ome, schema_attrs, None)
    else:
        facts = _check_bioformats2raw(run, node, version, ome, schema_attrs)
    facts.update(kind=kind, version=version)
    return facts


def _describe(kind: str, ome: dict) -> str:
    if kind == "unknown":
        return f"a group with the attributes {sorted(ome)[:8]}"
    return f"an OME-Zarr {kind}"


def _report_unknown(run: _Run, node: _Node) -> None:
    keys = sorted(node.attrs)
    found = f"a Zarr v{node.zarr_format} group with the attributes {keys[:10]}" if keys else \
        f"a Zarr v{node.zarr_format} group without attributes"
    run.error(node.key, "(node)", f"found {found}, which is no OME-Zarr node: none of multiscales, labels, "
              "image-label, plate, well or bioformats2raw.layout" + (" under 'ome'" if node.zarr_format == 3 else "")
              + ".", "Give the path of an image, a label image, a labels group, a plate, a well or a "
              "bioformats2raw collection; this validator checks each of those.")


def _multiscale_axes_06(run: _Run, node: str, ms: dict, where: str) -> list | None:
    """OME-Zarr 0.6: the axes are those of the coordinate system the datasets map to."""
    systems = ms.get("coordinateSystems")
    if not isinstance(systems, list) or not systems or not all(isinstance(s, dict) for s in systems):
        run.error(node, f"{where}.coordinateSystems", f"is {_short(systems)}; OME-Zarr 0.6 expects a list of "
                  "coordinate systems, each with a 'name' and 'axes'.")
        return None
    names = [s.get("name") for s in systems]
    for i, s in enumerate(systems):
        if not isinstance(s.get("name"), str):
            run.error(node, f"{where}.coordinateSystems[{i}].name", f"is {_short(s.get('name'))}; expected a string.")
    if len(set(map(str, names))) != len(names):
        run.error(node, f"{where}.coordinateSystems", f"names {names} are not unique.")
    datasets = ms.get("datasets")
    target = None
    if isinstance(datasets, list) and datasets and isinstance(datasets[0], dict):
        ts = datasets[0].get("coordinateTransformations")
        if isinstance(ts, list) and ts and isinstance(ts[-1], dict):
            target = ts[-1].get("output")
            target = _get(target, "name", target)
    index = names.index(target) if isinstance(target, str) and target in names else len(systems) - 1
    if isinstance(target, str) and target not in names:
        run.error(node, f"{where}.datasets[0].coordinateTransformations", f"output {target!r} is not one of the "
                  f"coordinate systems {names}.", "Name a coordinate system of this multiscale as the output.")
    for i, s in enumerate(systems):
        if i != index:
            _check_axes(run, node, s.get("axes"), f"{where}.coordinateSystems[{i}]")
    return _check_axes(run, node, systems[index].get("axes"), f"{where}.coordinateSystems[{index}]")


def _dataset_transforms_06(run: _Run, node: str, transforms: Any, place: str, n_axes: int | None):
    """0.6: a single scale, or a sequence of scale and translation; return (scale, translation)."""
    if isinstance(transforms, list) and len(transforms) == 1 and isinstance(transforms[0], dict) and \
            transforms[0].get("type") == "sequence":
        inner = transforms[0].get("transformations")
        return _check_transforms(run, node, inner, f"{place}[0].transformations", n_axes, True)
    if isinstance(transforms, list) and len(transforms) > 1:
        run.error(node, place, f"{len(transforms)} transformations; OME-Zarr 0.6 expects exactly one per dataset "
                  "(a scale, or a 'sequence' of scale and translation).")
    return _check_transforms(run, node, transforms, place, n_axes, True)


def _check_image(run: _Run, node: _Node, version: str, ome: dict, attrs: dict,
                 parent_levels: list | None, parent_shapes: list | None = None) -> dict:
    key = node.key
    is_label = "image-label" in ome
    _check_schema(run, node, attrs, version, "image")
    if is_label:
        _check_schema(run, node, attrs, version, "label")
    multiscales = ome.get("multiscales")
    prefix = "multiscales" if version == "0.4" else "ome.multiscales"
    if not isinstance(multiscales, list) or not multiscales:
        run.error(key, prefix, f"is {_short(multiscales)}; expected a list with one multiscale image.")
        return {"levels": []}
    if version == "0.4" and isinstance(multiscales[0], dict) and "version" not in multiscales[0]:
        run.warn(key, f"{prefix}[0].version", "missing: readers must guess the OME-Zarr version.",
                 "Add 'version': '0.4'.")
    marked = _MARKER_KEY in node.attrs
    all_levels = []
    n_channels = None
    level_shapes: list = []  # each level's shape (None: unreadable) in the first multiscale: what labels must match
    for m, ms in enumerate(multiscales):
        where = f"{prefix}[{m}]"
        if not isinstance(ms, dict):
            run.error(key, where, f"is {_short(ms)}; expected an object with axes and datasets.")
            continue
        axes = _multiscale_axes_06(run, key, ms, where) if version == "0.6" else _check_axes(run, key, ms.get("axes"), where)
        n_axes = len(axes) if axes else None
        if axes and m == 0:
            c_axes = [i for i, a in enumerate(axes) if a.get("type") == "channel"]
            n_channels = c_axes[0] if c_axes else None
        datasets = ms.get("datasets")
        if not isinstance(datasets, list) or not datasets:
            run.error(key, f"{where}.datasets", f"is {_short(datasets)}; expected one dataset per pyramid level, "
                      "finest first.")
            datasets = []
        paths: list[str] = []
        levels = []
        previous = None
        for i, ds in enumerate(datasets):
            place = f"{where}.datasets[{i}]"
            if not isinstance(ds, dict):
                run.error(key, place, f"is {_short(ds)}; expected an object with 'path' and 'coordinateTransformations'.")
                continue
            path = ds.get("path")
            if not isinstance(path, str) or not path:
                run.error(key, f"{place}.path", f"is {_short(path)}; expected the path of the level's array, "
                          "a string such as '0'.")
                path = None
            elif path in paths:
                run.error(key, f"{place}.path", f"{path!r} is listed twice; each level needs its own array.")
            else:
                paths.append(path)
            transforms = ds.get("coordinateTransformations")
            if version == "0.6":
                scale, translation = _dataset_transforms_06(run, key, transforms, f"{place}.coordinateTransformations", n_axes)
            else:
                scale, translation = _check_transforms(run, key, transforms, f"{place}.coordinateTransformations",
                                                       n_axes, True)
            if scale and previous and len(scale) == len(previous) and any(s < p for s, p in zip(scale, previous)):
                run.error(key, place, f"scale {scale} is finer than the previous level's {previous}; levels must "
                          "go from fine to coarse.", "List the full-resolution level first.")
            previous = scale or previous
            levels.append((path, scale))
        top = ms.get("coordinateTransformations")
        if top is not None:
            if version == "0.6":
                if not isinstance(top, list) or not all(isinstance(t, dict) for t in top):
                    run.error(key, f"{where}.coordinateTransformations", f"is {_short(top)}; expected a list of "
                              "transformations.")
                else:
                    for j, t in enumerate(top):
                        for k in ("scale", "translation"):
                            if t.get("type") == k:
                                _transform_values(run, key, f"{where}.coordinateTransformations[{j}]", t, k, n_axes)
            else:
                _check_transforms(run, key, top, f"{where}.coordinateTransformations", n_axes, False)
        if run.check_arrays and axes:
            shapes: list = []
            shape0 = _check_level_arrays(run, key, levels, [a["name"] for a in axes], VERSIONS[version], marked,
                                         is_label, shapes)
            if m == 0:
                level_shapes = shapes
            if m == 0 and shape0 is not None and n_channels is not None:
                n_channels = shape0[n_channels]  # the index of the 'c' axis becomes its length
            elif m == 0:
                n_channels = None
        elif m == 0:
            n_channels = None
        all_levels.append(levels)
    omero = ome.get("omero")
    if omero is not None:
        _check_omero(run, key, omero, "omero" if version == "0.4" else "ome.omero", n_channels)
    if is_label:
        _check_image_label(run, key, ome.get("image-label"), version, parent_levels, all_levels[0] if all_levels else [])
        _check_label_shapes(run, key, level_shapes, parent_shapes or [], marked)
    if version in ("0.4", "0.5"):
        _check_models(run, node, version)
    if run.check_arrays and not is_label:
        labels = run.read_node(join_key(key, "labels"), only_format=node.zarr_format)
        if labels is not None:
            lv, lome = _version_of(run, labels, inherit=version)
            if lv is not None and "labels" in lome:
                _check_labels_group(run, labels, lv, lome, all_levels[0] if all_levels else [], level_shapes)
            elif lv is not None:
                run.warn(join_key(key, "labels"), "(node)", "a 'labels' group without a 'labels' list: its label "
                         "images cannot be found.", "Add 'labels': [names of the label images].")
    return {"levels": all_levels[0] if all_levels else []}


def _check_level_arrays(run: _Run, key: str, levels: list, names: list[str], zarr_format: int, marked: bool,
                        is_label: bool, shapes: list | None = None) -> list | None:
    """Check each level's array against the metadata; return level 0's shape (``None`` if unreadable).

    ``shapes``, if given, receives each level's shape, in order (``None`` for a level that cannot be read).
    """
    shapes = [] if shapes is None else shapes
    for _ in levels:
        shapes.append(None)
    n_axes = len(names)
    first = None
    previous_shape = None
    for level, (path, scale) in enumerate(levels):
        if path is None:
            continue
        rel = clean_key(path)
        if rel is None:
            run.error(key, path, f"dataset path {path!r} leaves the image folder (absolute, '..' or empty parts).",
                      "Use a relative path inside the image, such as '0'.")
            continue
        array_key = join_key(key, rel)
        node = run.read_node(array_key)
        if node is None:
            run.error(key, path, f"dataset path {path!r} does not exist: no Zarr array at "
                      f"{run.store.join(array_key)!r}.", "Restore the level, or remove it from 'datasets'.")
            continue
        if node.node_type != "array":
            run.error(key, path, f"dataset path {path!r} is a Zarr group, expected an array.")
            continue
        if node.zarr_format != zarr_format:
            run.error(key, path, f"array is Zarr v{node.zarr_format} but this OME-Zarr version is stored in "
                      f"Zarr v{zarr_format}.")
            continue
        info = _array_info(run, key, path, node.meta, zarr_format)
        if info is None:
            continue
        shape = info.shape
        shapes[level] = tuple(shape)
        if len(shape) != n_axes:
            run.error(key, path, f"array has {len(shape)} dimensions but the image has {n_axes} axes.",
                      "Give one axis per array dimension.")
            continue
        dims = node.meta.get("dimension_names") if zarr_format == 3 else None
        if dims is not None and dims != names:
            run.error(key, f"{path}/zarr.json:dimension_names", f"are {_short(dims)} but the axes are {names}.",
                      "Write the axis names, in order, as the array's dimension_names.")
        if is_label and not _is_integer_dtype(info.dtype):
            run.error(key, path, f"label image has data type {_short(info.dtype)}; labels must be integers.",
                      "Store labels as uint8, uint16, uint32 or another integer type.")
        if first is None:
            first = (shape, scale, info.dtype)
        else:
            if info.dtype != first[2]:
                run.error(key, path, f"data type {_short(info.dtype)} differs from level 0's {_short(first[2])}; "
                          "expected the same at every level.")
            if previous_shape is not None and any(s > p for s, p in zip(shape, previous_shape)):
                run.error(key, path, f"shape {shape} is larger than the previous level's {previous_shape}.")
            if scale and first[1] and len(scale) == len(first[1]) == len(shape):
                for axis, (n, s, n0, s0) in enumerate(zip(shape, scale, first[0], first[1])):
                    if abs(n * s - n0 * s0) > s * (1 + 1e-9):
                        run.error(key, path, f"axis {axis}: {n} voxels of {s:g} cover {n * s:g}, but level 0 covers "
                                  f"{n0 * s0:g}; shape and scale do not match.")
        previous_shape = shape
        if run.check_chunks:
            _check_chunk_files(run, key, array_key, path, info, marked)
    return first[0] if first is not None and levels and levels[0][0] is not None else None


def _check_label_shapes(run: _Run, key: str, shapes: list, parent_shapes: list, marked: bool) -> None:
    """Each label level must have the shape of the image level it overlays: one label per voxel.

    A label level of another shape leaves voxels of the image without a label (or labels voxels that are not
    there). The specification does not spell this out, so it is a warning, except in a label image that
    ``data_helpers.write_labels`` wrote (it carries the marker), which promises the image's shapes.
    """
    report = run.error if marked else run.warn
    for i, (shape, parent) in enumerate(zip(shapes, parent_shapes)):
        if shape is None or parent is None or tuple(shape) == tuple(parent):
            continue
        report(key, f"datasets[{i}]", f"level {i} has shape {tuple(shape)}, but level {i} of the image it labels "
               f"has {tuple(parent)}: the labels do not give one value per voxel of the image.",
               "Write each label level with the shape of the image level it overlays (data_helpers.write_labels "
               "does).")


def _is_integer_dtype(dtype: Any) -> bool:
    if isinstance(dtype, str):
        name = dtype.lstrip("<>|=")
        return name in {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"} or \
            (len(name) >= 2 and name[0] in "iu" and name[1:].isdigit())
    return False


def _check_image_label(run: _Run, key: str, label: Any, version: str, parent_levels: list | None,
                       levels: list) -> None:
    place = "image-label" if version == "0.4" else "ome.image-label"
    if not isinstance(label, dict):
        run.error(key, place, f"is {_short(label)}; expected an object (with 'colors', 'properties', 'source').")
        return
    colors = label.get("colors")
    if colors is not None:
        if not isinstance(colors, list):
            run.error(key, f"{place}.colors", f"is {_short(colors)}; expected a list.")
        else:
            values = []
            for i, c in enumerate(colors):
                value, rgba = _get(c, "label-value"), _get(c, "rgba")
                if not _is_number(value):
                    run.error(key, f"{place}.colors[{i}]", f"label-value is {_short(value)}; expected a number.")
                else:
                    values.append(value)
                if rgba is not None and not (isinstance(rgba, list) and len(rgba) == 4 and
                                             all(_is_int(v) and 0 <= v <= 255 for v in rgba)):
                    run.error(key, f"{place}.colors[{i}].rgba", f"is {_short(rgba)}; expected 4 integers from 0 to 255.")
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                run.error(key, f"{place}.colors", f"label-value {dupes} appears more than once; each label gets one "
                          "color.")
    props = label.get("properties")
    if props is not None and isinstance(props, list):
        for i, p in enumerate(props):
            if not _is_number(_get(p, "label-value")):
                run.error(key, f"{place}.properties[{i}]", f"has no numeric 'label-value' ({_short(p)}).")
    source = label.get("source")
    if source is not None and not isinstance(_get(source, "image", ""), str):
        run.error(key, f"{place}.source.image", f"is {_short(_get(source, 'image'))}; expected a relative path.")
    if parent_levels:
        if len(levels) != len(parent_levels):
            run.warn(key, "(levels)", f"{len(levels)} levels, but the image it labels has {len(parent_levels)}.",
                     "Write the label image with the same pyramid as its image, so that each level overlays one.")
        else:
            for i, ((_, s), (_, ps)) in enumerate(zip(levels, parent_levels)):
                if s and ps and len(s) == len(ps) and any(not math.isclose(a, b, rel_tol=1e-6) for a, b in zip(s, ps)):
                    run.warn(key, f"datasets[{i}]", f"scale {s} differs from the image's {ps} at the same level.",
                             "Give each label level the scale of the image level it overlays.")


def _check_labels_group(run: _Run, node: _Node, version: str, ome: dict, parent_levels: list | None,
                        parent_shapes: list | None = None) -> dict:
    key = node.key
    names = ome.get("labels")
    place = "labels" if version == "0.4" else "ome.labels"
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        run.error(key, place, f"is {_short(names)}; expected a list of label image names.")
        return {}
    if len(set(names)) != len(names):
        run.error(key, place, f"names {names} are not unique.")
    if not run.check_arrays:
        return {}
    for name in dict.fromkeys(names):
        rel = clean_key(name)
        if rel is None:
            run.error(key, place, f"label name {name!r} is not a path inside the labels group.")
            continue
        child = join_key(key, rel)
        before = len(run.report.problems)
        facts = _check_node(run, child, expect="label image", parent_levels=parent_levels,
                            parent_shapes=parent_shapes)
        _summarize(run, child, facts, before)
    return {}


def _summarize(run: _Run, key: str, facts: dict, before: int) -> None:
    found = run.report.problems[before:]
    errors = sum(p.severity == "error" for p in found)
    warnings = len(found) - errors
    kind = facts.get("kind", "node")
    levels = len(facts.get("levels", []))
    size = f", {levels} level{'s' * (levels != 1)}" if kind in ("image", "label image") else ""
    run.report.summaries.append(f"{key}: {kind}{size}: {errors} error{'s' * (errors != 1)}, "
                                f"{warnings} warning{'s' * (warnings != 1)}")


def _check_plate(run: _Run, node: _Node, version: str, ome: dict, attrs: dict) -> dict:
    key = node.key
    _check_schema(run, node, attrs, version, "plate")
    plate = ome.get("plate")
    place = "plate" if version == "0.4" else "ome.plate"
    if not isinstance(plate, dict):
        run.error(key, place, f"is {_short(plate)}; expected an object with rows, columns and wells.")
        return {}
    names = {}
    for axis in ("rows", "columns"):
        entries = plate.get(axis)
        ok = isinstance(entries, list) and entries and all(isinstance(_get(e, "name"), str) for e in entries)
        if not ok:
            run.error(key, f"{place}.{axis}", f"is {_short(entries)}; expected a non-empty list of {{'name': ...}}.")
            names[axis] = None
            continue
        names[axis] = [e["name"] for e in entries]
        if len(set(names[axis])) != len(names[axis]):
            run.error(key, f"{place}.{axis}", f"names {names[axis]} are not unique.")
        bad = [n for n in names[axis] if not n.isalnum() or not n.isascii()]
        if bad:
            run.error(key, f"{place}.{axis}", f"names {bad} are not alphanumeric (letters and digits only).")
    acquisitions = plate.get("acquisitions")
    acquisition_ids = None
    if isinstance(acquisitions, list):
        acquisition_ids = {_get(a, "id") for a in acquisitions}
    wells = plate.get("wells")
    if not isinstance(wells, list) or not wells:
        run.error(key, f"{place}.wells", f"is {_short(wells)}; expected a non-empty list of wells.")
        return {}
    seen = set()
    well_paths = []
    for i, well in enumerate(wells):
        wplace = f"{place}.wells[{i}]"
        path, ri, ci = _get(well, "path"), _get(well, "rowIndex"), _get(well, "columnIndex")
        if not isinstance(path, str):
            run.error(key, f"{wplace}.path", f"is {_short(path)}; expected 'row/column', such as 'A/1'.")
            continue
        if path in seen:
            run.error(key, f"{wplace}.path", f"{path!r} is listed twice.")
            continue
        seen.add(path)
        if not _is_int(ri) or not _is_int(ci):
            run.error(key, wplace, f"rowIndex {_short(ri)} and columnIndex {_short(ci)}; expected integers "
                      "that index rows and columns.")
        elif names.get("rows") and names.get("columns"):
            rows, cols = names["rows"], names["columns"]
            if not (0 <= ri < len(rows) and 0 <= ci < len(cols)):
                run.error(key, wplace, f"rowIndex {ri} or columnIndex {ci} is outside the {len(rows)} rows and "
                          f"{len(cols)} columns.")
            elif path != f"{rows[ri]}/{cols[ci]}":
                run.error(key, f"{wplace}.path", f"is {path!r}, but row {ri} is {rows[ri]!r} and column {ci} is "
                          f"{cols[ci]!r}: the path must be 'row/column', here {rows[ri] + '/' + cols[ci]!r}.",
                          "Name the well's group row first, then column.")
        if path.count("/") != 1:
            run.error(key, f"{wplace}.path", f"{path!r} is not 'row/column' (one '/').")
            continue
        well_paths.append(path)
    if run.check_arrays:
        for path in well_paths:
            rel = clean_key(path)
            if rel is None:
                run.error(key, "wells", f"well path {path!r} leaves the plate folder.")
                continue
            wkey = join_key(key, rel)
            wnode = run.read_node(wkey)
            if wnode is None:
                run.error(wkey, "(node)", f"the well {path!r} listed in the plate does not exist.",
                          "Restore the well, or remove it from plate.wells.")
                continue
            wv, wome = _version_of(run, wnode)
            if wv is None:
                continue
            if wv != version:
                run.error(wkey, "(node)", f"a {wv} well in a {version} plate; every node of a plate has its version.")
            if "well" not in wome:
                run.error(wkey, "(node)", f"expected an OME-Zarr well, found {_describe(_classify(wome), wome)}.")
                continue
            _check_well(run, wnode, wv, wome, wnode.attrs, acquisition_ids)
    return {}


def _check_well(run: _Run, node: _Node, version: str, ome: dict, attrs: dict, acquisition_ids: set | None) -> dict:
    key = node.key
    _check_schema(run, node, attrs, version, "well")
    well = ome.get("well")
    place = "well" if version == "0.4" else "ome.well"
    images = _get(well, "images")
    if not isinstance(images, list) or not images:
        run.error(key, f"{place}.images", f"is {_short(images)}; expected a non-empty list of field images.")
        return {}
    paths = []
    for i, image in enumerate(images):
        path = _get(image, "path")
        if not isinstance(path, str) or not path:
            run.error(key, f"{place}.images[{i}].path", f"is {_short(path)}; expected the field image's path.")
            continue
        if path in paths:
            run.error(key, f"{place}.images[{i}].path", f"{path!r} is listed twice.")
            continue
        acquisition = _get(image, "acquisition")
        if acquisition is not None and acquisition_ids is not None and acquisition not in acquisition_ids:
            run.warn(key, f"{place}.images[{i}].acquisition", f"{_short(acquisition)} is not one of the plate's "
                     f"acquisitions {sorted(map(str, acquisition_ids))}.")
        paths.append(path)
    if run.check_arrays:
        for path in paths:
            rel = clean_key(path)
            if rel is None:
                run.error(key, f"{place}.images", f"image path {path!r} leaves the well folder.")
                continue
            child = join_key(key, rel)
            before = len(run.report.problems)
            facts = _check_node(run, child, expect="image")
            _summarize(run, child, facts, before)
    return {}


def _check_bioformats2raw(run: _Run, node: _Node, version: str, ome: dict, attrs: dict) -> dict:
    key = node.key
    _check_schema(run, node, attrs, version, "bf2raw")
    layout = ome.get("bioformats2raw.layout")
    if layout != 3:
        run.error(key, "bioformats2raw.layout", f"is {_short(layout)}; the only layout defined is 3.")
        return {}
    series = None
    ome_node = run.read_node(join_key(key, "OME"))
    if ome_node is not None:
        _, ome_attrs = _version_of(run, ome_node)
        series = ome_attrs.get("series") if isinstance(ome_attrs, dict) else None
        if series is not None and not (isinstance(series, list) and all(isinstance(s, str) for s in series)):
            run.error(join_key(key, "OME"), "series", f"is {_short(series)}; expected a list of image paths.")
            series = None
    if not run.check_arrays:
        return {}
    names: Iterator[str] = iter(series) if series is not None else (str(i) for i in range(_MAX_SERIES))
    found = 0
    for name in names:
        rel = clean_key(name)
        if rel is None:
            run.error(join_key(key, "OME"), "series", f"series path {name!r} leaves the collection.")
            continue
        child = join_key(key, rel)
        if series is None and run.read_node(child) is None:
            break  # the images are 0, 1, 2, ... up to the first one missing
        before = len(run.report.problems)
        facts = _check_node(run, child, expect="image")
        _summarize(run, child, facts, before)
        found += 1
    if not found:
        run.error(key, "(node)", "a bioformats2raw collection without any image (no series '0').",
                  "Give the folder that holds the images 0, 1, ...")
    return {}


def _check_models(run: _Run, node: _Node, version: str) -> None:
    """ome-zarr-models, on the metadata documents of this image only (no data is read)."""
    try:
        import pydantic
        import zarr

        if version == "0.5":
            from ome_zarr_models.v05.image import Image
        else:
            from ome_zarr_models.v04.image import Image
    except ImportError:  # pragma: no cover - pinned in requirements.txt
        return
    prefix = f"{node.key}/" if node.key else ""
    with tempfile.TemporaryDirectory(prefix="data-helpers-validate-") as tmp:
        for key, raw in run.docs.items():
            if node.key and not key.startswith(prefix):
                continue
            rel = key[len(prefix):]
            if rel.split("/", 1)[0] == "labels" and "/" in rel:
                continue  # label images are checked as their own nodes
            target = Path(tmp, rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(raw)
        try:
            group = zarr.open_group(tmp, mode="r", zarr_format=VERSIONS[version])
            Image.from_zarr(group)
        except pydantic.ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(p) for p in err.get("loc", ())) or "(image)"
                run.error(node.key, where, str(err.get("msg", err))[:300], checker="ome-zarr-models")
        except RecursionError:  # pragma: no cover
            run.error(node.key, "(image)", "metadata nested too deeply", checker="ome-zarr-models")
        except Exception as exc:  # any other refusal is a finding too, reported with its type
            text = str(exc).replace(tmp, "<image>")
            run.error(node.key, "(image)", f"{type(exc).__name__}: {text[:300]}", checker="ome-zarr-models")
    run.models_run = True


def validate_ome_zarr(
    path: str | os.PathLike,
    check_chunks: bool = True,
    strict: bool = False,
    *,
    check_arrays: bool = True,
    storage_options: dict | None = None,
) -> ValidationReport:
    """Check an OME-Zarr node (0.4, 0.5 or 0.6), on disk or at a URL, and report every finding.

    Parameters
    ----------
    path
        The node's folder (the one holding ``zarr.json``, or ``.zattrs`` for
        0.4), or its ``http://``, ``https://`` or ``s3://`` URL. An image, a
        label image, a labels group, a plate, a well or a bioformats2raw
        collection; an image's report includes its labels, and a plate's or
        well's report has one summary line per field image.
    check_chunks
        Count the chunk (or shard) files of every level. Absent ones are
        warnings (they read as the fill value, which is legal Zarr), or errors
        in images written by :func:`write_ome_zarr`. Local folders and S3 are
        listed; over HTTP each chunk file costs one ``HEAD`` request.
    strict
        Let warnings count: ``report.ok`` is then ``False`` when there is any
        warning, and ``raise_if_problems`` raises for them.
    check_arrays
        Read the arrays' metadata and the sub-nodes (levels, labels, wells,
        field images). ``False`` checks only this node's own metadata, for
        metadata-only stores such as the specification's examples.
    storage_options
        Options for fsspec when ``path`` is an ``s3://`` URL, e.g.
        ``{"anon": True}`` or ``{"endpoint_url": "http://127.0.0.1:9000"}``.

    Returns
    -------
    ValidationReport
        ``report.ok``; ``report.errors`` and ``report.warnings``; ``print(report)``
        lists errors first, then warnings, each with its place and fix;
        ``report.raise_if_problems()`` turns them into an exception.

    Raises
    ------
    FileNotFoundError
        If ``path`` is neither an existing folder nor a supported URL.
    PermissionError
        If the folder cannot be read.
    OSError
        If a URL cannot be reached (:class:`data_helpers.storeaccess.StoreAccessError`).
    TypeError
        If ``check_chunks``, ``strict`` or ``check_arrays`` is not a bool.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from data_helpers import validate_ome_zarr, write_ome_zarr
    >>> folder = tempfile.mkdtemp()
    >>> _ = write_ome_zarr(np.ones((64, 64, 64), np.uint8), f"{folder}/c.ome.zarr", voxel_size=2, chunks=32)
    >>> report = validate_ome_zarr(f"{folder}/c.ome.zarr")
    >>> report.ok, len(report.errors), len(report.warnings)
    (True, 0, 0)
    """
    for name, value in (("check_chunks", check_chunks), ("strict", strict), ("check_arrays", check_arrays)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be True or False, got {value!r}.")
    try:
        store = open_store(path, storage_options)
    except StoreAccessError as exc:
        raise FileNotFoundError(str(exc)) from None
    if not store.remote and not os.access(os.fspath(path), os.R_OK | os.X_OK):
        raise PermissionError(f"{store.display!r} cannot be read (permission denied); check it as a user who can.")
    report = ValidationReport(path=store.display, strict=strict)
    run = _Run(store, report, check_chunks, check_arrays)
    try:
        facts = _check_node(run, "")
    finally:
        report.requests = store.requests
    report.kind = facts.get("kind", "unknown")
    report.version = facts.get("version")
    if run.schema_versions:
        report.checked.append(f"OME-Zarr {', '.join(sorted(run.schema_versions))} JSON schemas, plain and strict "
                              "(ngff-zarr)")
    if run.models_run:
        report.checked.append("ome-zarr-models")
    if report.version:
        report.checked.append("axes, transformations, units, levels, node layout (data_helpers)")
    if check_arrays and check_chunks and run.n_chunks_expected:
        report.checked.append(f"{run.n_chunk_files:,} of {run.n_chunks_expected:,} chunk files present")
    elif not check_arrays:
        report.checked.append("metadata only (arrays and sub-nodes not read)")
    return report
