"""The OME-Zarr specification's own test cases, built into real stores and judged by validate_ome_zarr.

The cases live in ``<repo>/../shared/conformance/ngff-spec`` (see its README):
the 0.4 and 0.5 suites of attribute objects, and the metadata-only ``zarr/``
stores of the 0.6 release candidate. Each case becomes a small store with real
arrays (shaped to fit its axes and scales, one chunk per level), so that the
validator checks it as it checks data on disk.

Verdicts (issue "the validator", section 4):

- plain suites: a ``valid: true`` case gives no error (warnings allowed); a
  ``valid: false`` case gives at least one error;
- strict suites (SHOULD rules): a ``valid: true`` case gives neither errors nor
  warnings; a ``valid: false`` case gives at least one finding, and no error
  unless it also breaks a MUST (listed in ``STRICT_MUST``).

Cases we believe are themselves wrong are listed in ``WRONG`` with the reason;
for those the test checks that the validator gives the opposite verdict.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr

from conftest import REPO, skip_or_fail
from data_helpers import validate_ome_zarr

CONFORMANCE = REPO.parent / "shared" / "conformance" / "ngff-spec"

_PATH_ORDER = ("the specification says a well's path MUST be the row name, '/', then the column name; here the "
               "rows are named with digits and the columns with letters, so 'A/1' is column/row (the 0.5 suite "
               "fixed this, and added well_path_has_column_before_row as an invalid case)")
#: (suite or folder, case) -> why we believe the case's expected verdict is wrong.
WRONG = {
    ("0.4/image_suite", "valid/mismatch_axes_units.json"):
        "scale [0.13, 0.13] has 2 values for 3 axes; the specification requires one value per axis "
        "(the 0.5 suite's version of this case has 3)",
    ("0.6-dev/spec/valid/image", "mismatch_axes_units"):
        "scale [0.13, 0.13] has 2 values for 3 axes; one value per axis is required",
    **{("0.4/plate_suite", c): _PATH_ORDER for c in
       ("plate/minimal_no_acquisitions", "plate/minimal_acquisitions", "plate/non_alphanumeric_row")},
    **{("0.4/strict_plate_suite", c): _PATH_ORDER for c in ("plate/strict_no_acquisitions", "plate/strict_acquisitions")},
    **{("0.6-dev/spec/valid/plate", c): _PATH_ORDER for c in
       ("minimal_no_acquisitions", "minimal_acquisitions", "non_alphanumeric_row")},
    **{("0.6-dev/strict/valid/plate", c): _PATH_ORDER for c in ("strict_no_acquisitions", "strict_acquisitions")},
}
_STRING_IO = ("the dataset transformations name their input and output as strings; the released 0.6 schema "
              "(bundled with ngff-zarr) and the candidate's own attributes/ suite write objects, "
              "{'path': ...} and {'name': ...}")
WRONG.update({("0.6-dev/spec/valid/image", c): _STRING_IO for c in
              ("custom_type_axes", "invalid_axis_units", "missing_name", "untyped_axes")})
WRONG.update({("0.6-dev/strict/valid/image", c): _STRING_IO for c in
              ("image", "image_metadata", "image_omero", "multiscales_example", "multiscales_transformations")})
#: Strict-invalid cases that also break a MUST, so an error is right.
STRICT_MUST = {
    # 0.4 plates here carry the column/row path order (see WRONG), which is an error of its own.
    ("0.4/strict_plate_suite", c) for c in
    ("plate/missing_name", "plate/missing_version", "plate/missing_acquisition_name",
     "plate/missing_acquisition_maximumfieldcount")
} | {
    ("0.6-dev/strict/invalid/plate", c) for c in
    ("missing_name", "missing_acquisition_name", "missing_acquisition_maximumfieldcount")
}


def _suite_cases():
    if not CONFORMANCE.is_dir():
        return [pytest.param(None, id="conformance-folder-missing")]
    cases = []
    for suite in sorted(CONFORMANCE.glob("0.[45]/*.json")):
        doc = json.loads(suite.read_text())
        name = f"{suite.parent.name}/{suite.stem}"
        for i, case in enumerate(doc["tests"]):
            label = case.get("formerly") or case.get("description") or str(i)
            cases.append(pytest.param((suite.parent.name, suite.stem, label, case), id=f"{name}[{i}]-{label}"))
    for store in sorted(CONFORMANCE.glob("0.6-dev/tests/zarr/*/*/*/*.ome.zarr")):
        level, verdict, model = store.parts[-4:-1]
        label = store.name.removesuffix(".ome.zarr")
        cases.append(pytest.param(("0.6-dev", f"{level}/{verdict}/{model}", label, store),
                                  id=f"0.6-dev/{level}/{verdict}/{model}/{label}"))
    return cases


# -- building a real store from a case ----------------------------------------------------------------


def _write_group(folder: Path, attrs: dict, fmt: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == 3:
        (folder / "zarr.json").write_text(json.dumps({"zarr_format": 3, "node_type": "group", "attributes": attrs}))
    else:
        (folder / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
        (folder / ".zattrs").write_text(json.dumps(attrs))


def _ome(attrs: dict, fmt: int) -> dict:
    return attrs.get("ome", {}) if fmt == 3 else attrs


def _axes_of(ms: dict) -> list:
    if isinstance(ms.get("axes"), list):
        return ms["axes"]
    systems = ms.get("coordinateSystems")
    if isinstance(systems, list) and systems:
        target = None
        try:
            target = ms["datasets"][0]["coordinateTransformations"][-1]["output"]
            target = target.get("name") if isinstance(target, dict) else target
        except (KeyError, IndexError, TypeError):
            pass
        for s in systems:
            if isinstance(s, dict) and s.get("name") == target and isinstance(s.get("axes"), list):
                return s["axes"]
        last = systems[-1]
        return last.get("axes", []) if isinstance(last, dict) else []
    return []


def _scale_of(ds: dict) -> list | None:
    ts = ds.get("coordinateTransformations") if isinstance(ds, dict) else None
    if isinstance(ts, list) and len(ts) == 1 and isinstance(ts[0], dict) and ts[0].get("type") == "sequence":
        ts = ts[0].get("transformations")
    if isinstance(ts, list):
        for t in ts:
            if isinstance(t, dict) and t.get("type") == "scale" and isinstance(t.get("scale"), list):
                return t["scale"]
    return None


def _write_arrays(folder: Path, attrs: dict, fmt: int, dtype="uint16") -> None:
    """One small array per dataset, shaped to fit the axes and scales (best effort on broken metadata)."""
    ome = _ome(attrs, fmt)
    multiscales = ome.get("multiscales") if isinstance(ome, dict) else None
    if not isinstance(multiscales, list):
        return
    omero = ome.get("omero")
    n_channels = len(omero["channels"]) if isinstance(omero, dict) and isinstance(omero.get("channels"), list) else 2
    for ms in multiscales:
        if not isinstance(ms, dict) or not isinstance(ms.get("datasets"), list):
            continue
        axes = _axes_of(ms)
        datasets = ms["datasets"]
        scale0 = _scale_of(datasets[0]) if datasets else None
        ndim = len(axes) or (len(scale0) if scale0 else 2)
        base = []
        for i in range(ndim):
            kind = axes[i].get("type") if i < len(axes) and isinstance(axes[i], dict) else "space"
            base.append({"space": 8, "time": 2, "channel": n_channels}.get(kind, 3))
        for ds in datasets:
            path = ds.get("path") if isinstance(ds, dict) else None
            if not isinstance(path, str) or not path or ".." in path.split("/") or path.startswith("/"):
                continue
            scale = _scale_of(ds)
            shape = list(base)
            if scale and scale0 and len(scale) == len(scale0) == ndim:
                ok = all(isinstance(v, (int, float)) and v > 0 for v in scale + scale0)
                if ok:
                    shape = [max(1, round(n * s0 / s)) for n, s0, s in zip(base, scale0, scale)]
            names = [a.get("name") if isinstance(a, dict) else None for a in axes]
            dims = {}
            if fmt == 3 and len(names) == ndim and all(isinstance(n, str) for n in names):
                dims["dimension_names"] = names  # 0.5 requires them, equal to the axis names
            arr = zarr.create_array(store=str(folder / path), shape=tuple(shape), chunks=tuple(shape),
                                    dtype=dtype, zarr_format=fmt, fill_value=0, **dims)
            arr[...] = np.ones(shape, dtype=dtype)


def _base_image(version: str, fmt: int) -> dict:
    ms = {"name": "image", "type": "mean", "metadata": {"method": "test"}, "axes": [{"name": "y", "type": "space", "unit": "micrometer"},
                                    {"name": "x", "type": "space", "unit": "micrometer"}],
          "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1.0, 1.0]}]}]}
    if version == "0.6":
        ms = {"name": "image", "type": "mean", "metadata": {"method": "test"}, "coordinateSystems": [{"name": "physical", "axes": ms["axes"]}],
              "datasets": [{"path": "0", "coordinateTransformations": [
                  {"type": "scale", "scale": [1.0, 1.0], "input": {"path": "0"}, "output": {"name": "physical"}}]}]}
    if fmt == 2:
        return {"multiscales": [{**ms, "version": version}]}
    return {"ome": {"version": version, "multiscales": [ms]}}


def _wrap(version: str, fmt: int, key: str, value: dict) -> dict:
    return {key: {**value, "version": version}} if fmt == 2 else {"ome": {"version": version, key: value}}


def build_store(folder: Path, version: str, model: str, attrs: dict) -> Path:
    """Build the case's attributes into a store under ``folder``; return the path to validate."""
    fmt = 2 if version == "0.4" else 3
    root = folder / "case.ome.zarr"
    if model == "image":
        _write_group(root, attrs, fmt)
        _write_arrays(root, attrs, fmt)
    elif model == "label":
        parent = _base_image(version, fmt)
        _write_group(root, parent, fmt)
        _write_arrays(root, parent, fmt)
        _write_group(root / "labels", {"labels": ["cells"]} if fmt == 2 else {"ome": {"version": version,
                                                                                      "labels": ["cells"]}}, fmt)
        label = copy.deepcopy(parent)
        if fmt == 2:
            label.update(attrs)
        else:
            label["ome"].update(attrs.get("ome", {}))
            label.update({k: v for k, v in attrs.items() if k != "ome"})
        _write_group(root / "labels" / "cells", label, fmt)
        _write_arrays(root / "labels" / "cells", label, fmt, dtype="uint8")
    elif model == "plate":
        _write_group(root, attrs, fmt)
        plate = _ome(attrs, fmt).get("plate")
        wells = plate.get("wells") if isinstance(plate, dict) else None
        for well in wells if isinstance(wells, list) else []:
            path = well.get("path") if isinstance(well, dict) else None
            if isinstance(path, str) and path.count("/") == 1 and ".." not in path and not (root / path).exists():
                _write_group(root / path, _wrap(version, fmt, "well", {"images": [{"path": "0"}]}), fmt)
                image = _base_image(version, fmt)
                _write_group(root / path / "0", image, fmt)
                _write_arrays(root / path / "0", image, fmt)
    elif model == "well":
        _write_group(root, attrs, fmt)
        well = _ome(attrs, fmt).get("well") if fmt == 3 and "ome" in attrs else attrs.get("well")
        images = well.get("images") if isinstance(well, dict) else None
        for image_ref in images if isinstance(images, list) else []:
            path = image_ref.get("path") if isinstance(image_ref, dict) else None
            if isinstance(path, str) and path and ".." not in path and not (root / path).exists():
                image = _base_image(version, fmt)
                _write_group(root / path, image, fmt)
                _write_arrays(root / path, image, fmt)
    else:  # pragma: no cover
        raise ValueError(model)
    return root


def _model_of(suite: str) -> tuple[str, bool]:
    strict = suite.startswith("strict")
    return suite.removeprefix("strict_").removesuffix("_suite"), strict


@pytest.mark.parametrize("case", _suite_cases())
def test_conformance_case(case, tmp_path):
    if case is None:
        skip_or_fail(f"the conformance cases are not at {CONFORMANCE} (see shared/conformance/README.md)")
    version_dir, suite, label, payload = case
    if version_dir == "0.6-dev":
        level, verdict, model = suite.split("/")
        strict, expected_valid, version = level == "strict", verdict == "valid", "0.6"
        key = (f"0.6-dev/{suite}", label)
        store = payload
        try:
            attrs = json.loads((store / "zarr.json").read_text())["attributes"]
        except json.JSONDecodeError:
            attrs = None  # the case itself is not valid JSON: validate it as it is
        if attrs is None:
            path = tmp_path / "case.ome.zarr"
            shutil.copytree(store, path)
        else:
            attrs = {k: v for k, v in attrs.items() if k != "_conformance"}
            path = build_store(tmp_path, version, model, attrs)
    else:
        model, strict = _model_of(suite)
        version, expected_valid = version_dir, payload["valid"]
        key = (f"{version_dir}/{suite}", label)
        path = build_store(tmp_path, version, model, payload["data"])
    report = validate_ome_zarr(path)
    if key in WRONG:
        expected_valid = not expected_valid  # we judge the case itself wrong; see WRONG for why
    if expected_valid:
        assert not report.errors, f"valid case judged invalid:\n{report}"
        if strict:
            assert not report.warnings, f"strict-valid case has warnings:\n{report}"
    elif strict and key not in WRONG:
        assert report.problems, f"strict-invalid case gave no finding:\n{report}"
        if key not in STRICT_MUST:
            assert not report.errors, f"strict-invalid case (a SHOULD) gave an error:\n{report}"
    else:
        assert report.errors, f"invalid case gave no error:\n{report}"


def test_every_wrong_case_exists():
    """Each case listed as wrong names a real case, so the list cannot go stale silently."""
    if not CONFORMANCE.is_dir():
        skip_or_fail(f"the conformance cases are not at {CONFORMANCE}")
    known = set()
    for p in _suite_cases():
        version_dir, suite, label, _ = p.values[0]
        known.add((f"{version_dir}/{suite}", label))
    assert set(WRONG) <= known and STRICT_MUST <= known, (set(WRONG) | STRICT_MUST) - known


def test_metadata_only_stores_can_be_checked_without_their_arrays():
    """check_arrays=False judges a node's own metadata; with arrays, a metadata-only well lacks its image."""
    store = CONFORMANCE / "0.6-dev/tests/zarr/spec/valid/well/minimal_no_acquisition.ome.zarr"
    if not store.is_dir():
        skip_or_fail(f"the conformance cases are not at {CONFORMANCE}")
    metadata_only = validate_ome_zarr(store, check_arrays=False)
    assert metadata_only.ok and metadata_only.kind == "well" and metadata_only.version == "0.6", str(metadata_only)
    assert "metadata only" in str(metadata_only)
    full = validate_ome_zarr(store)
    assert any(p.node == "0" and "no Zarr node" in p.message for p in full.errors), str(full)
