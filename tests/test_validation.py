"""data_helpers.validation: every fault in the list is reported, with where it is; good images pass."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import zarr

from data_helpers import InvalidOmeZarrError, validate_ome_zarr, write_ome_zarr
from data_helpers.__main__ import main


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    data = np.random.default_rng(0).integers(0, 255, (48, 40, 40), dtype=np.uint8)
    return {
        version: write_ome_zarr(data, folder / f"good-{version}.ome.zarr", voxel_size=(2.0, 1.0, 1.0),
                                chunks=16, version=version).path
        for version in ("0.4", "0.5")
    }


def _broken_copy(images, tmp_path, version, edit):
    """Copy a good image, apply ``edit(multiscale, attrs, folder)`` to its metadata, and return the copy."""
    copy = tmp_path / f"broken-{version}.ome.zarr"
    shutil.copytree(images[version], copy)
    meta_file = copy / ("zarr.json" if version == "0.5" else ".zattrs")
    meta = json.loads(meta_file.read_text())
    attrs = meta["attributes"]["ome"] if version == "0.5" else meta
    edit(attrs["multiscales"][0], attrs, copy)
    meta_file.write_text(json.dumps(meta))
    return copy


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_good_images_are_valid(images, version):
    report = validate_ome_zarr(images[version])
    assert report.ok and bool(report) and report.version == version, str(report)
    assert "valid" in str(report) and "chunk files present" in str(report)
    report.raise_if_problems()  # does nothing


def _scale_too_short(ms, attrs, folder):
    ms["datasets"][0]["coordinateTransformations"][0]["scale"] = [2.0, 1.0]


def _axes_reversed(ms, attrs, folder):
    ms["axes"] = ms["axes"][::-1]


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


def _missing_chunk(ms, attrs, folder):
    level1 = folder / "1"
    chunk = sorted(p for p in level1.rglob("*") if p.is_file() and not p.name.startswith(".") and p.name != "zarr.json")[0]
    chunk.unlink()


def _different_dtype(ms, attrs, folder):
    zarr.create_array(folder / "1", shape=(48, 20, 20), dtype="float32", chunks=(16, 16, 16), overwrite=True,
                      zarr_format=3 if (folder / "zarr.json").exists() else 2)[:] = 1


FAULTS = {
    "scale length": (_scale_too_short, "datasets[0].coordinateTransformations.scale", "2 values but there are 3 axes"),
    "axis order": (_axes_reversed, "axes", "expected ['z', 'y', 'x']"),
    "coarse to fine": (_coarse_to_fine, "datasets[1]", "fine to coarse"),
    "translation first": (_translation_first, "datasets[1].coordinateTransformations", "translation comes before the scale"),
    "missing path": (_missing_path, "level-one", "does not exist"),
    "wrong version": (_wrong_version, "version", "must be OME-Zarr"),
    "invalid unit": (_invalid_unit, "axes[2].unit", "'micrometer'"),
    "missing chunk": (_missing_chunk, "1", "1 of 12 chunk files are missing"),
    "dtype differs": (_different_dtype, "1", "differs from level 0"),
}


@pytest.mark.parametrize("version", ["0.4", "0.5"])
@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_is_reported_where_it_is(images, tmp_path, version, fault):
    edit, where, message = FAULTS[fault]
    broken = _broken_copy(images, tmp_path, version, edit)
    report = validate_ome_zarr(broken)
    assert not report.ok
    ours = [p for p in report.problems if p.checker == "data_helpers"]
    assert any(p.where.endswith(where) and message in p.message for p in ours), str(report)
    with pytest.raises(InvalidOmeZarrError, match="problem"):
        report.raise_if_problems()


def test_schema_and_models_are_consulted(images, tmp_path):
    report = validate_ome_zarr(_broken_copy(images, tmp_path, "0.5", _wrong_version))
    assert {p.checker for p in report.problems} == {"data_helpers", "ngff-zarr", "ome-zarr-models"}


def test_a_plain_array_is_not_an_image(images):
    report = validate_ome_zarr(images["0.5"] / "0")
    assert not report.ok and "plain Zarr v3 array, not an OME-Zarr image" in str(report)
    report = validate_ome_zarr(images["0.4"] / "0")
    assert "plain Zarr v2 array" in str(report)


def test_a_group_without_ome_metadata(tmp_path):
    zarr.create_group(tmp_path / "g.zarr")
    assert "no 'ome' attributes" in str(validate_ome_zarr(tmp_path / "g.zarr"))
    (tmp_path / "empty").mkdir()
    assert "no Zarr metadata" in str(validate_ome_zarr(tmp_path / "empty"))


def test_missing_folder_is_an_input_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not an existing folder"):
        validate_ome_zarr(tmp_path / "nowhere")


def test_chunk_check_can_be_skipped(images, tmp_path):
    broken = _broken_copy(images, tmp_path, "0.5", _missing_chunk)
    assert validate_ome_zarr(broken, check_chunks=False).ok


def test_validation_reads_the_original_and_changes_nothing(images):
    before = {p: p.stat().st_mtime_ns for p in images["0.5"].rglob("*")}
    validate_ome_zarr(images["0.5"])
    assert {p: p.stat().st_mtime_ns for p in images["0.5"].rglob("*")} == before


def test_command_line_exit_status(images, tmp_path, capsys):
    assert main(["validate", str(images["0.5"]), str(images["0.4"])]) == 0
    assert capsys.readouterr().out.count("valid") == 2
    broken = _broken_copy(images, tmp_path, "0.5", _invalid_unit)
    assert main(["validate", str(images["0.5"]), str(broken)]) == 1
    out = capsys.readouterr().out
    assert "axes[2].unit" in out and "'um' is not a unit" in out
    assert main(["validate", str(tmp_path / "nowhere")]) == 2


def test_check_chunks_must_be_a_bool(images):
    with pytest.raises(TypeError, match="check_chunks"):
        validate_ome_zarr(images["0.5"], check_chunks="no")
