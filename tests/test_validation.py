"""data_helpers.validation: every finding has a severity, a place and a fix; good data passes; nothing crashes it."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr

from conftest import skip_or_fail
from data_helpers import (InvalidOmeZarrError, LocalServer, display_path, read_ome_metadata, validate_ome_zarr,
                          write_labels, write_ome_zarr)
from data_helpers.__main__ import main
from data_helpers.validation import ValidationReport


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    data = np.random.default_rng(0).integers(0, 255, (48, 40, 40), dtype=np.uint8)
    return {
        version: write_ome_zarr(data, folder / f"good-{version}.ome.zarr", voxel_size=(2.0, 1.0, 1.0),
                                chunks=16, version=version).path
        for version in ("0.4", "0.5")
    }


def _meta_file(folder: Path) -> Path:
    return folder / ("zarr.json" if (folder / "zarr.json").exists() else ".zattrs")


def _broken_copy(images, tmp_path, version, edit, name="broken", unmark=False):
    """Copy a good image, apply ``edit(multiscale, attrs, folder)`` to its metadata, and return the copy."""
    copy = tmp_path / f"{name}-{version}.ome.zarr"
    shutil.copytree(images[version], copy)
    meta_file = _meta_file(copy)
    meta = json.loads(meta_file.read_text())
    top = meta["attributes"] if version == "0.5" else meta
    attrs = top["ome"] if version == "0.5" else top
    if unmark:
        top.pop("data_helpers")
    edit(attrs["multiscales"][0], attrs, copy)
    meta_file.write_text(json.dumps(meta))
    return copy


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_good_images_are_valid(images, version):
    report = validate_ome_zarr(images[version])
    assert report.ok and bool(report) and report.version == version and report.kind == "image", str(report)
    assert not report.errors and not report.warnings and report.requests == 0
    assert ": valid" in str(report) and "chunk files present" in str(report)
    assert str(report).startswith(display_path(images[version]))  # the path as a reader should see it
    report.raise_if_problems()  # does nothing


def _scale_too_short(ms, attrs, folder):
    ms["datasets"][0]["coordinateTransformations"][0]["scale"] = [2.0, 1.0]


def _axes_reversed(ms, attrs, folder):
    ms["axes"] = ms["axes"][::-1]
    for level in ms["datasets"]:  # Zarr v3 arrays name their dimensions too
        if (folder / level["path"] / "zarr.json").exists():
            _edit_json(folder / level["path"] / "zarr.json",
                       lambda d: d.update(dimension_names=d["dimension_names"][::-1]))


def _coarse_to_fine(ms, attrs, folder):
    ms["datasets"] = ms["datasets"][::-1]


def _translation_first(ms, attrs, folder):
    ms["datasets"][1]["coordinateTransformations"].reverse()


def _missing_path(ms, attrs, folder):
    ms["datasets"][1]["path"] = "level-one"


def _wrong_version(ms, attrs, folder):
    if "version" in ms:
        ms["version"] = "0.4.0"
    else:
        attrs["version"] = "0.5.0"


def _invalid_unit(ms, attrs, folder):
    ms["axes"][2]["unit"] = "um"


def _zero_scale(ms, attrs, folder):
    ms["datasets"][2]["coordinateTransformations"][0]["scale"][1] = 0


def _negative_scale(ms, attrs, folder):
    ms["datasets"][1]["coordinateTransformations"][0]["scale"][0] = -4.0


def _nan_translation(ms, attrs, folder):
    transforms = ms["datasets"][0]["coordinateTransformations"]
    transforms[1:] = [{"type": "translation", "translation": [0, float("nan"), 0]}]


def _infinite_scale(ms, attrs, folder):
    ms["datasets"][0]["coordinateTransformations"][0]["scale"][2] = float("inf")


def _missing_chunk(ms, attrs, folder):
    level1 = folder / "1"
    chunk = sorted(p for p in level1.rglob("*") if p.is_file() and not p.name.startswith(".") and p.name != "zarr.json")[0]
    chunk.unlink()


def _different_dtype(ms, attrs, folder):
    zarr.create_array(folder / "1", shape=(48, 20, 20), dtype="float32", chunks=(16, 16, 16), overwrite=True,
                      zarr_format=3 if (folder / "zarr.json").exists() else 2)[:] = 1


def _time_unit_on_space_axis(ms, attrs, folder):
    ms["axes"][0]["unit"] = "second"


# fault: (edit, place ends with, message contains, severity)
FAULTS = {
    "scale length": (_scale_too_short, "datasets[0].coordinateTransformations[0].scale", "2 values but there are 3 axes", "error"),
    "axis order": (_axes_reversed, "axes", "recommends ['z', 'y', 'x']", "warning"),
    "coarse to fine": (_coarse_to_fine, "datasets[1]", "fine to coarse", "error"),
    "translation first": (_translation_first, "datasets[1].coordinateTransformations", "translation comes before the scale", "error"),
    "missing path": (_missing_path, "level-one", "does not exist", "error"),
    "wrong version": (_wrong_version, "version", "version is", "error"),
    "invalid unit": (_invalid_unit, "axes[2].unit", "'um' is not one of the UDUNITS-2 names", "warning"),
    "zero scale": (_zero_scale, "datasets[2].coordinateTransformations[0].scale", "zero or negative", "error"),
    "negative scale": (_negative_scale, "datasets[1].coordinateTransformations[0].scale", "zero or negative", "error"),
    "NaN translation": (_nan_translation, "datasets[0].coordinateTransformations[1].translation", "NaN or Infinity", "error"),
    "infinite scale": (_infinite_scale, "datasets[0].coordinateTransformations[0].scale", "NaN or Infinity", "error"),
    "missing chunk (marked image)": (_missing_chunk, "1", "1 of 12 chunk files are absent", "error"),
    "dtype differs": (_different_dtype, "1", "differs from level 0", "error"),
    "time unit on space axis": (_time_unit_on_space_axis, "axes[0].unit", "time unit 'second'", "warning"),
}


@pytest.mark.parametrize("version", ["0.4", "0.5"])
@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_is_reported_where_it_is(images, tmp_path, version, fault):
    edit, where, message, severity = FAULTS[fault]
    broken = _broken_copy(images, tmp_path, version, edit)
    report = validate_ome_zarr(broken)
    ours = [p for p in report.problems if p.checker == "data_helpers"]
    hits = [p for p in ours if p.where.endswith(where) and message in p.message]
    assert hits and {p.severity for p in hits} == {severity}, str(report)
    assert all(p.fix or "expected" in p.message or "Fix" in str(p) or p.severity for p in hits)
    if severity == "error":
        assert not report.ok
        with pytest.raises(InvalidOmeZarrError, match="error"):
            report.raise_if_problems()
    else:
        assert report.ok and not validate_ome_zarr(broken, strict=True).ok
        with pytest.raises(InvalidOmeZarrError, match="warning"):
            validate_ome_zarr(broken, strict=True).raise_if_problems()


def test_errors_are_listed_before_warnings(images, tmp_path):
    def both(ms, attrs, folder):
        _invalid_unit(ms, attrs, folder)
        _zero_scale(ms, attrs, folder)

    text = str(validate_ome_zarr(_broken_copy(images, tmp_path, "0.5", both)))
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith("- ")]
    severities = [line.split()[1] for line in lines]
    assert "error" in severities and "warning" in severities
    assert severities == sorted(severities)  # "error" < "warning"
    assert "Fix:" in text


def test_absent_chunks_are_a_warning_unless_the_image_says_every_chunk_was_written(images, tmp_path):
    unmarked = _broken_copy(images, tmp_path, "0.5", _missing_chunk, name="unmarked", unmark=True)
    report = validate_ome_zarr(unmarked)
    assert report.ok and len(report.warnings) == 1, str(report)
    warning = report.warnings[0]
    assert "fill value" in warning.message and "skip" in warning.fix and warning.where == "1"
    assert "1/c/" in warning.message  # an example of an absent file, relative to the image
    marked = _broken_copy(images, tmp_path, "0.5", _missing_chunk, name="marked")
    assert [p.where for p in validate_ome_zarr(marked).errors] == ["1"]


def test_schema_and_models_are_consulted(images, tmp_path):
    report = validate_ome_zarr(_broken_copy(images, tmp_path, "0.5", _wrong_version))
    assert {p.checker for p in report.problems} == {"data_helpers", "ngff-zarr", "ome-zarr-models"}


def test_a_plain_array_is_not_an_image(images):
    report = validate_ome_zarr(images["0.5"] / "0")
    assert not report.ok and report.kind == "array" and "plain Zarr v3 array, not an OME-Zarr image" in str(report)
    assert "plain Zarr v2 array" in str(validate_ome_zarr(images["0.4"] / "0"))


def test_an_unknown_node_says_what_it_found(tmp_path):
    group = zarr.create_group(tmp_path / "g.zarr")
    group.attrs["acquisition"] = {"date": "2026-01-01"}
    text = str(validate_ome_zarr(tmp_path / "g.zarr"))
    assert "['acquisition']" in text and "version is None" not in text
    assert "image, a label image, a labels group, a plate, a well or a bioformats2raw" in text
    (tmp_path / "empty").mkdir()
    assert "no Zarr metadata" in str(validate_ome_zarr(tmp_path / "empty"))


def test_0_4_keys_in_a_v3_group(tmp_path):
    zarr.create_group(tmp_path / "g.zarr").attrs["multiscales"] = [{"version": "0.4"}]
    report = validate_ome_zarr(tmp_path / "g.zarr")
    assert not report.ok and "under 'ome'" in str(report)


def test_missing_folder_is_an_input_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not an existing folder"):
        validate_ome_zarr(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="ftp:// is not supported"):
        validate_ome_zarr("ftp://example.org/image.zarr")


def test_chunk_check_can_be_skipped(images, tmp_path):
    broken = _broken_copy(images, tmp_path, "0.5", _missing_chunk)
    assert validate_ome_zarr(broken, check_chunks=False).ok


def test_validation_reads_the_original_and_changes_nothing(images):
    before = {p: p.stat().st_mtime_ns for p in images["0.5"].rglob("*")}
    validate_ome_zarr(images["0.5"])
    assert {p: p.stat().st_mtime_ns for p in images["0.5"].rglob("*")} == before


@pytest.mark.parametrize("name", ["check_chunks", "strict", "check_arrays"])
def test_flags_must_be_bools(images, name):
    with pytest.raises(TypeError, match=name):
        validate_ome_zarr(images["0.5"], **{name: "no"})


# -- the report survives anything: malformed metadata, huge shapes, symlink loops -----------------------


_BAD_VALUES = [None, "x", -1, 0, 2.5, [], {}, [None], True, float("nan"), 10**30, {"a": [1, {"b": None}]}]


def _json_paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _json_paths(value, prefix + (key,))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from _json_paths(value, prefix + (i,))


def _mutated(doc, path, value, delete=False):
    doc = json.loads(json.dumps(doc))
    if not path:
        return value
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


def _mutations(n_per_file=90):
    """A fixed sample of mutated metadata documents: (file, new text) for group and level metadata."""
    rng = random.Random(20261125)
    out = []
    for version, files in (("0.5", ["zarr.json", "0/zarr.json"]), ("0.4", [".zattrs", "0/.zarray"])):
        for name in files:
            out.append((version, name, "{not json"))
            out.append((version, name, "\xff\xfe binary"))
            out.append((version, name, ""))
            out.append((version, name, "[" * 100_000 + "]" * 100_000))
            out.append((version, name, "[]"))
            out.append((version, name, "null"))
            out.append((version, name, json.dumps("a string")))
            out.append((version, name, None))  # placeholder: filled from the real document below
    return rng, out, n_per_file


def test_malformed_metadata_of_any_shape_becomes_a_reported_error(images, tmp_path):
    rng, fixed, n_per_file = _mutations()
    cases = [c for c in fixed if c[2] is not None]
    for version, name in {(v, n) for v, n, _ in fixed}:
        doc = json.loads((images[version] / name).read_text())
        paths = [p for p in _json_paths(doc) if p]
        for _ in range(n_per_file):
            path = rng.choice(paths)
            if rng.random() < 0.2 and not isinstance(path[-1], int):
                text = json.dumps(_mutated(doc, path, None, delete=True))
            else:
                text = json.dumps(_mutated(doc, path, rng.choice(_BAD_VALUES)))
            cases.append((version, name, text))
    copies = {}
    n_errors = 0
    for i, (version, name, text) in enumerate(cases):
        copy = copies.get(version)
        if copy is None:
            copy = copies[version] = tmp_path / f"fuzz-{version}.ome.zarr"
            shutil.copytree(images[version], copy)
        original = (images[version] / name).read_bytes()
        (copy / name).write_text(text, encoding="utf-8", errors="surrogateescape")
        try:
            report = validate_ome_zarr(copy)
        finally:
            (copy / name).write_bytes(original)
        assert isinstance(report, ValidationReport)
        assert all(p.severity in ("error", "warning") and p.where for p in report.problems)
        str(report)
        n_errors += not report.ok
    print(f"{len(cases)} mutated documents, {n_errors} judged invalid")
    assert len(cases) > 350 and n_errors > len(cases) // 3


def test_huge_shape_in_a_small_edit_does_not_allocate_or_hang(images, tmp_path):
    def huge(ms, attrs, folder):
        meta = json.loads((folder / "0" / "zarr.json").read_text())
        meta["shape"] = [10**12, 10**12, 10**12]
        (folder / "0" / "zarr.json").write_text(json.dumps(meta))

    report = validate_ome_zarr(_broken_copy(images, tmp_path, "0.5", huge))
    absent = [p for p in report.errors if p.where == "0" and "chunk files are absent" in p.message]
    assert absent and "may be wrong" in absent[0].message, str(report)


@pytest.mark.skipif(os.name == "nt", reason="symbolic links need privileges on Windows")
def test_symlink_loops_do_not_hang(images, tmp_path):
    copy = _broken_copy(images, tmp_path, "0.5", lambda *a: None, unmark=True)
    os.symlink("..", copy / "0" / "c" / "loop")  # a folder that contains itself
    os.symlink("self.json", copy / "1" / "self.json")
    report = validate_ome_zarr(copy)
    assert report.ok, str(report)
    (copy / "2" / "zarr.json").unlink()
    os.symlink("zarr.json", copy / "2" / "zarr.json")  # a link to itself
    report = validate_ome_zarr(copy)
    assert any(p.where == "2/zarr.json" and "cannot be read" in p.message for p in report.errors), str(report)


# -- labels, plates, wells, bioformats2raw, omero --------------------------------------------------------


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("labelled")
    data = np.random.default_rng(1).integers(0, 255, (32, 32, 32), dtype=np.uint8)
    image = write_ome_zarr(data, folder / "cells.ome.zarr", voxel_size=1.0, chunks=16).path
    labels = (data > 128).astype(np.uint8)
    write_ome_zarr(labels, image / "labels" / "mask", voxel_size=1.0, chunks=16, kind="labels")
    group = zarr.open_group(image / "labels", mode="a", zarr_format=3)
    group.attrs["ome"] = {"version": "0.5", "labels": ["mask"]}
    mask = zarr.open_group(image / "labels" / "mask", mode="a", zarr_format=3)
    ome = dict(mask.attrs["ome"])
    ome["image-label"] = {"colors": [{"label-value": 1, "rgba": [255, 0, 0, 255]}], "source": {"image": "../../"}}
    mask.attrs["ome"] = ome
    return image


def _edit_json(path: Path, edit):
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


def test_an_image_report_includes_its_labels(labelled, tmp_path):
    report = validate_ome_zarr(labelled)
    assert report.ok and any(s.startswith("labels/mask: label image") for s in report.summaries), str(report)
    copy = tmp_path / "copy.ome.zarr"
    shutil.copytree(labelled, copy)
    _edit_json(copy / "labels" / "mask" / "zarr.json", lambda d: d["attributes"]["ome"]["image-label"]["colors"].append(
        {"label-value": 1, "rgba": [0, 0, 0]}))
    _edit_json(copy / "labels" / "zarr.json", lambda d: d["attributes"]["ome"]["labels"].append("nuclei"))
    report = validate_ome_zarr(copy)
    nodes = {p.node for p in report.errors}
    assert {"labels/mask", "labels/nuclei"} <= nodes, str(report)
    assert any("appears more than once" in p.message for p in report.errors)
    assert any(p.where.endswith("rgba") for p in report.errors if p.node == "labels/mask")
    assert all(p.node.startswith("labels/") for p in report.errors), "a label's finding is not the image's own"


def test_label_images_must_hold_integers(labelled, tmp_path):
    copy = tmp_path / "float-labels.ome.zarr"
    shutil.copytree(labelled, copy)
    for level in ("0", "1"):
        _edit_json(copy / "labels" / "mask" / level / "zarr.json", lambda d: d.update(data_type="float32", fill_value=0.0))
    report = validate_ome_zarr(copy, check_chunks=False)
    assert any(p.node == "labels/mask" and "must be integers" in p.message for p in report.errors), str(report)
    assert validate_ome_zarr(copy / "labels" / "mask", check_chunks=False).kind == "label image"


def _plate(folder: Path, path_of_well="A/1", window=None) -> Path:
    plate = folder / "plate.ome.zarr"
    zarr.create_group(plate).attrs["ome"] = {"version": "0.5", "plate": {
        "name": "p", "rows": [{"name": "A"}], "columns": [{"name": "1"}, {"name": "2"}],
        "wells": [{"path": path_of_well, "rowIndex": 0, "columnIndex": 0},
                  {"path": "A/2", "rowIndex": 0, "columnIndex": 1}]}}
    data = np.arange(2 * 16 * 16, dtype=np.uint16).reshape(2, 16, 16)
    for well in ("A/1", "A/2"):
        zarr.create_group(plate / well).attrs["ome"] = {"version": "0.5", "well": {"images": [{"path": "0"}, {"path": "1"}]}}
        for field in ("0", "1"):
            image = write_ome_zarr(data, plate / well / field, dims="cyx", voxel_size=0.5, chunks=16).path
            if window is not None:
                group = zarr.open_group(image, mode="a")
                ome = dict(group.attrs["ome"])
                ome["omero"] = {"channels": [{"color": "FF0000", "window": window}, {"color": "00FF00", "window": window}]}
                group.attrs["ome"] = ome
    return plate


def test_a_plate_gets_one_line_per_field_image(tmp_path):
    plate = _plate(tmp_path, window={"min": 0, "max": 500, "start": 0, "end": 400})
    report = validate_ome_zarr(plate)
    assert report.ok and report.kind == "plate", str(report)
    assert [s.split(":")[0] for s in report.summaries] == ["A/1/0", "A/1/1", "A/2/0", "A/2/1"]
    assert validate_ome_zarr(plate / "A" / "1").kind == "well"


def test_plate_problems_name_the_well_and_the_field(tmp_path):
    plate = _plate(tmp_path, window={"min": 0, "max": 500, "start": 400, "end": 10})
    (plate / "A" / "2" / "1" / "0" / "zarr.json").unlink()  # the level of one field image
    report = validate_ome_zarr(plate)
    assert any(p.node == "A/2/1" and "does not exist" in p.message for p in report.errors), str(report)
    assert any(p.node == "A/1/0" and "inverted" in p.message for p in report.warnings)
    assert re.search(r"A/2/1: image, 1 level: [1-9]\d* errors?, 2 warnings", str(report))
    assert "A/1/1: image, 1 level: 0 errors, 2 warnings" in str(report)


def test_plate_well_path_must_be_row_then_column(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    report = validate_ome_zarr(_plate(other, path_of_well="1/A"))
    assert any("row first, then column" in p.fix for p in report.errors), str(report)


def test_omero_channels_colors_and_windows(images, tmp_path):
    def omero(ms, attrs, folder):
        attrs["omero"] = {"channels": [{"color": "red", "window": {"min": 0, "max": 1, "start": "0", "end": 1}},
                                       {"color": "00FF00"}]}

    report = validate_ome_zarr(_broken_copy(images, tmp_path, "0.5", omero))
    places = {p.where for p in report.errors if p.checker == "data_helpers"}
    assert {"ome.omero.channels[0].color", "ome.omero.channels[0].window", "ome.omero.channels[1].window"} <= places


def test_bioformats2raw_collection(images, tmp_path):
    root = tmp_path / "converted.zarr"
    zarr.create_group(root, zarr_format=2).attrs["bioformats2raw.layout"] = 3
    for series in ("0", "1"):
        shutil.copytree(images["0.4"], root / series)
    report = validate_ome_zarr(root)
    assert report.ok and report.kind == "bioformats2raw" and len(report.summaries) == 2, str(report)
    zarr.open_group(root, mode="a").attrs["bioformats2raw.layout"] = 2
    assert not validate_ome_zarr(root).ok


# -- remote stores -------------------------------------------------------------------------------------


def test_http_url_reads_only_what_it_needs_and_counts_requests(images, tmp_path):
    unmarked = _broken_copy(images, tmp_path, "0.5", _missing_chunk, name="holey", unmark=True)
    with LocalServer(images["0.5"].parent) as server, LocalServer(tmp_path) as other:
        url = f"{server.url}/good-0.5.ome.zarr"
        report = validate_ome_zarr(url)
        assert report.ok and report.version == "0.5", str(report)
        assert report.requests == len(server.requests) > 0
        heads = [r for r in server.requests if r[0] == "HEAD"]
        n_files = sum(1 for p in images["0.5"].rglob("*") if p.is_file() and p.name != "zarr.json")
        assert len(heads) == n_files  # one per chunk file, and nothing else
        assert f"{report.requests} requests made" in str(report) and str(report).startswith(url)
        server.clear_requests()
        assert read_ome_metadata(url)["version"] == "0.5" and len(server.requests) == 1
        assert validate_ome_zarr(url, check_chunks=False).requests < report.requests
        holey = validate_ome_zarr(f"{other.url}/{unmarked.name}/")
        assert holey.ok and len(holey.warnings) == 1 and "1 of 12 chunk files are absent" in holey.warnings[0].message
        v04 = validate_ome_zarr(f"{server.url}/good-0.4.ome.zarr")  # Zarr v2: .zattrs, .zarray
        assert v04.ok and v04.version == "0.4" and not v04.warnings, str(v04)
        missing = validate_ome_zarr(f"{other.url}/nothing-here.zarr")
        assert not missing.ok and "no Zarr metadata" in str(missing)


def test_s3_url_is_listed(images, tmp_path, monkeypatch):
    try:
        import s3fs
        from moto.server import ThreadedMotoServer
    except ImportError:
        skip_or_fail("s3 needs s3fs and moto[server] (pinned in requirements.txt)")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        options = {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": f"http://{host}:{port}"}}
        fs = s3fs.S3FileSystem(**options)
        fs.mkdir("bucket")
        holey = _broken_copy(images, tmp_path, "0.5", _missing_chunk, name="holey", unmark=True)
        fs.put(str(holey), "bucket/image.ome.zarr", recursive=True)
        report = validate_ome_zarr("s3://bucket/image.ome.zarr", storage_options=options)
        assert report.ok and len(report.warnings) == 1 and report.requests > 0, str(report)
        assert "1 of 12 chunk files are absent" in report.warnings[0].message
    finally:
        server.stop()


# -- the command line ----------------------------------------------------------------------------------


def test_command_line_exit_status(images, tmp_path, capsys):
    assert main(["validate", str(images["0.5"]), str(images["0.4"])]) == 0
    assert capsys.readouterr().out.count(": valid") == 2
    warned = _broken_copy(images, tmp_path, "0.5", _invalid_unit, name="warned")
    assert main(["validate", str(warned)]) == 0
    out = capsys.readouterr().out
    assert "axes[2].unit" in out and "'um' is not one of" in out and "warning" in out
    assert main(["validate", "--strict", str(warned)]) == 1
    capsys.readouterr()
    broken = _broken_copy(images, tmp_path, "0.5", _zero_scale)
    assert main(["validate", str(images["0.5"]), str(broken)]) == 1
    capsys.readouterr()
    # a path that cannot be checked gives 2, and every other path is still checked
    assert main(["validate", str(tmp_path / "nowhere"), str(broken), str(images["0.4"])]) == 2
    captured = capsys.readouterr()
    assert "could not be checked" in captured.err and str(tmp_path / "nowhere") in captured.err
    assert captured.out.count(display_path(broken)) >= 1 and display_path(images["0.4"]) in captured.out


def test_command_line_unreachable_url_could_not_be_checked(images, capsys):
    assert main(["validate", "http://127.0.0.1:9/image.ome.zarr", str(images["0.5"])]) == 2
    captured = capsys.readouterr()
    assert "http://127.0.0.1:9/image.ome.zarr: could not be checked" in captured.err
    assert ": valid" in captured.out  # the next path was still checked


def test_command_line_reports_paths_as_given(images, capsys, monkeypatch):
    monkeypatch.chdir(images["0.5"].parent)
    assert main(["validate", "good-0.5.ome.zarr"]) == 0
    assert capsys.readouterr().out.startswith("good-0.5.ome.zarr: OME-Zarr 0.5 image: valid")


# -- data written by other tools: 0 errors ----------------------------------------------------------------


def _sparse_volume(shape=(32, 64, 64), dtype=np.uint16):
    """A volume whose upper half is 0, so writers that skip empty chunks leave files out."""
    data = np.zeros(shape, dtype)
    data[shape[0] // 2:] = np.random.default_rng(2).integers(1, 1000, (shape[0] - shape[0] // 2, *shape[1:]))
    return data


def _count_absent(report) -> int:
    return sum("chunk files are absent" in p.message for p in report.warnings)


@pytest.mark.parametrize("version", ["0.4", "0.5", "0.6"])
def test_ngff_zarr_images_have_no_errors(tmp_path, version):
    nz = pytest.importorskip("ngff_zarr")
    image = nz.to_ngff_image(_sparse_volume(), dims=["z", "y", "x"], scale={"z": 2.0, "y": 1.0, "x": 1.0},
                             axes_units={"z": "micrometer", "y": "micrometer", "x": "micrometer"})
    multiscales = nz.to_multiscales(image, scale_factors=[2, 4], chunks=16)
    path = tmp_path / f"ngff-{version}.ome.zarr"
    nz.to_ngff_zarr(str(path), multiscales, version=version)
    report = validate_ome_zarr(path)
    assert not report.errors and report.version == version, str(report)
    assert _count_absent(report) >= 1  # empty chunks were skipped: warnings, not errors


def test_ngff_zarr_sharded_0_5_image_has_no_errors(tmp_path):
    nz = pytest.importorskip("ngff_zarr")
    image = nz.to_ngff_image(_sparse_volume(), dims=["z", "y", "x"])
    multiscales = nz.to_multiscales(image, scale_factors=[2], chunks=16)
    path = tmp_path / "sharded.ome.zarr"
    nz.to_ngff_zarr(str(path), multiscales, version="0.5", chunks_per_shard=2)
    meta = json.loads((path / "scale0" / "image" / "zarr.json").read_text()) if (path / "scale0").exists() else \
        json.loads((path / multiscales.metadata.datasets[0].path / "zarr.json").read_text())
    assert meta["codecs"][0]["name"] == "sharding_indexed"
    report = validate_ome_zarr(path)
    assert not report.errors, str(report)


def _ome_zarr_py():
    try:
        from ome_zarr import writer
        from ome_zarr.format import FormatV04, FormatV05
    except ImportError:
        skip_or_fail("ome-zarr (ome-zarr-py) is not installed; it is pinned in requirements.txt as a test dependency")
    return writer, {"0.4": FormatV04(), "0.5": FormatV05()}


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_py_image_with_labels_has_no_errors(tmp_path, version):
    writer, formats = _ome_zarr_py()
    path = tmp_path / f"ome-zarr-py-{version}.ome.zarr"
    root = zarr.open_group(path, mode="w", zarr_format=2 if version == "0.4" else 3)
    data = _sparse_volume()
    writer.write_image(data, root, axes="zyx", fmt=formats[version], scale_factors=[2, 4],
                       storage_options={"chunks": (16, 16, 16)})
    labels = (data > 500).astype(np.uint8)
    writer.write_labels(labels, root, name="bright", axes="zyx", fmt=formats[version], scale_factors=[2, 4],
                        storage_options={"chunks": (16, 16, 16)})
    report = validate_ome_zarr(path)
    assert not report.errors and report.version == version, str(report)
    assert any(s.startswith("labels/bright: label image, ") for s in report.summaries), str(report)
    assert _count_absent(report) >= 1


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_py_plate_has_no_errors(tmp_path, version):
    writer, formats = _ome_zarr_py()
    fmt = formats[version]
    path = tmp_path / f"plate-{version}.ome.zarr"
    root = zarr.open_group(path, mode="w", zarr_format=2 if version == "0.4" else 3)
    writer.write_plate_metadata(root, ["A", "B"], ["1", "2"], ["A/1", "B/2"], fmt=fmt, name="plate")
    for well in ("A/1", "B/2"):
        group = root.require_group(well)
        writer.write_well_metadata(group, [{"path": "0"}, {"path": "1"}], fmt=fmt)
        for field in ("0", "1"):
            writer.write_image(_sparse_volume((2, 32, 32)), group.require_group(field), axes="cyx", fmt=fmt,
                               scale_factors=[2], storage_options={"chunks": (1, 16, 16)})
    report = validate_ome_zarr(path)
    assert not report.errors and report.kind == "plate", str(report)
    assert [s.split(":")[0] for s in report.summaries] == ["A/1/0", "A/1/1", "B/2/0", "B/2/1"]


def test_command_line_survives_a_validator_bug(images, monkeypatch, capsys):
    import data_helpers.validation as validation

    def broken(*args, **kwargs):
        raise KeyError("surprise")

    monkeypatch.setattr(validation, "validate_ome_zarr", broken)
    assert main(["validate", str(images["0.5"]), str(images["0.4"])]) == 2
    assert capsys.readouterr().err.count("the validator failed with KeyError") == 2


def test_a_printed_report_shows_local_paths_relative_to_a_nearby_working_folder(tmp_path, monkeypatch):
    (tmp_path / "book").mkdir()
    image = tmp_path / "data" / "a.ome.zarr"
    write_ome_zarr(np.zeros((8, 8), np.uint8), image, voxel_size=1, unit="um")
    monkeypatch.chdir(tmp_path / "book")
    text = str(validate_ome_zarr(str(image)))
    assert text.startswith(os.path.join(os.pardir, "data", "a.ome.zarr") + ": OME-Zarr")
    assert str(tmp_path) not in text
    # Far away, the path stays absolute rather than a long chain of '..'.
    far = tmp_path / "x" / "y"
    far.mkdir(parents=True)
    monkeypatch.chdir(far)
    assert str(validate_ome_zarr(str(image))).startswith(str(image))


def _replace_level(image, level, shape):
    """Make level ``level`` of ``image`` the shape another tool gives it (rounded up), as zarr writes it."""
    shutil.rmtree(image / str(level))
    zarr.create_array(image / str(level), shape=shape, chunks=(16, 16, 16), dtype="uint16", fill_value=0,
                      dimension_names=["z", "y", "x"], config={"write_empty_chunks": True})[...] = 1


def test_the_validator_reports_a_label_level_of_another_shape_than_its_image_level(tmp_path):
    image = tmp_path / "up.ome.zarr"
    write_ome_zarr(np.zeros((64, 65, 65), np.uint16), image, voxel_size=1.0, unit="um", chunks=16, n_levels=2)
    write_labels(image, "cells", np.ones((64, 65, 65), np.uint8), colors={1: (255, 0, 0)})
    assert validate_ome_zarr(image).ok
    _replace_level(image, 1, (32, 33, 33))  # the image's level 1 as another tool writes it
    report = validate_ome_zarr(image)
    problems = [p for p in report.errors if p.node == "labels/cells"]
    assert not report.ok and problems, str(report)
    assert "(32, 32, 32)" in problems[0].message and "(32, 33, 33)" in problems[0].message
    # a label image that another tool wrote gets a warning: the specification does not require the shapes
    label_meta = image / "labels" / "cells" / "zarr.json"
    doc = json.loads(label_meta.read_text())
    del doc["attributes"]["data_helpers"]
    label_meta.write_text(json.dumps(doc))
    report = validate_ome_zarr(image)
    assert any(p.node == "labels/cells" and "(32, 33, 33)" in p.message for p in report.warnings), str(report)
