"""data_helpers.omezarr: write_ome_zarr(version="0.6") writes OME-Zarr 0.6 (RFC-5 coordinate systems).

What is checked: the written metadata passes the released 0.6 JSON schema bundled with ngff-zarr (nothing is
fetched), opens with ome-zarr-models' 0.6 model and reads back in ngff-zarr with the right scale and
translation per level; the pixels, chunks and compression are those of the same image in 0.5; overwrites
between 0.4, 0.5 and 0.6 images follow the one rule of what may be deleted, which refuses 0.6 metadata that
is not what this package writes.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import os
import warnings
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import zarr

from conftest import REPO, skip_or_fail
from data_helpers import OmeZarrError, read_ome_metadata, validate_ome_zarr, write_ome_zarr
from data_helpers.omezarr import _replaceable_entries

CANDIDATE = REPO.parent / "shared" / "conformance" / "ngff-spec" / "0.6-dev" / "tests" / "zarr"


def schema_errors(attrs: dict, strict: bool = False) -> list[str]:
    """The messages of the bundled 0.6 JSON schema (ngff-zarr's copy, resolved offline) for these attributes."""
    import jsonschema
    from ngff_zarr.validate import _schema_registry, load_schema

    schema = load_schema(version="0.6", model="image", strict=strict)
    validator = jsonschema.Draft202012Validator(schema, registry=_schema_registry("0.6"))
    return [error.message for error in validator.iter_errors(attrs)]


def attributes(image: Path) -> dict:
    return json.loads((image / "zarr.json").read_text())["attributes"]


def snapshot(folder: Path) -> dict:
    """Every entry under ``folder`` (links not followed) with the hash of each file's bytes."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = Path(root) / name
            rel = str(p.relative_to(folder))
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() and not p.is_symlink() else "dir"
    return out


@pytest.fixture
def volume():
    return np.random.default_rng(6).integers(0, 4000, (2, 24, 40, 40), dtype=np.uint16)


@pytest.fixture
def image(tmp_path, volume):
    """A 0.6 image (c, z, y, x; anisotropic; shifted), next to someone else's folder."""
    (tmp_path / "another-project").mkdir()
    (tmp_path / "another-project" / "results.csv").write_text("a,b\n1,2\n")
    write_ome_zarr(volume, tmp_path / "img.ome.zarr", voxel_size=(3.0, 1.0, 1.0), unit="um", chunks=16,
                   translation=(5.0, -2.0, 0.5), version="0.6")
    return tmp_path / "img.ome.zarr"


def edit_attrs(image: Path, edit) -> None:
    meta = json.loads((image / "zarr.json").read_text())
    edit(meta["attributes"])
    (image / "zarr.json").write_text(json.dumps(meta))


# -- the metadata ---------------------------------------------------------------------------------------


def test_the_written_metadata_passes_the_released_0_6_schema(image):
    attrs = attributes(image)
    assert attrs["ome"]["version"] == "0.6"
    assert schema_errors(attrs) == []
    assert schema_errors(attrs, strict=True) == []  # name, type and metadata, which 0.6 recommends


def test_validate_ome_zarr_finds_nothing_even_in_strict_mode(image):
    report = validate_ome_zarr(image, strict=True)
    assert report.version == "0.6"
    assert report.problems == []  # neither errors nor warnings


def test_the_schema_check_catches_0_5_metadata_under_a_0_6_version(tmp_path, volume):
    """The check above can fail: the 0.5 form (axes, bare scale and translation) is not valid 0.6."""
    write_ome_zarr(volume, tmp_path / "five.ome.zarr", voxel_size=1, chunks=16, version="0.5")
    attrs = attributes(tmp_path / "five.ome.zarr")
    attrs["ome"]["version"] = "0.6"
    assert schema_errors(attrs)


def test_coordinate_systems_and_transformations(image):
    multiscale = attributes(image)["ome"]["multiscales"][0]
    assert "axes" not in multiscale and "version" not in multiscale  # both moved or removed in 0.6
    [system] = multiscale["coordinateSystems"]
    assert system == {"name": "physical", "axes": [
        {"name": "c", "type": "channel"},
        {"name": "z", "type": "space", "unit": "micrometer"},
        {"name": "y", "type": "space", "unit": "micrometer"},
        {"name": "x", "type": "space", "unit": "micrometer"},
    ]}
    assert [ds["path"] for ds in multiscale["datasets"]] == ["0", "1", "2"]
    for ds in multiscale["datasets"]:
        [transform] = ds["coordinateTransformations"]
        assert transform["type"] == "sequence"
        assert transform["input"] == {"path": ds["path"]}  # from this level's array ...
        assert transform["output"] == {"name": "physical"}  # ... to the image's own coordinate system
        assert [t["type"] for t in transform["transformations"]] == ["scale", "translation"]
    level1 = multiscale["datasets"][1]["coordinateTransformations"][0]["transformations"]
    assert level1[0]["scale"] == [1.0, 3.0, 2.0, 2.0]
    assert level1[1]["translation"] == [0.0, 5.0, -1.5, 1.0]  # shifted by half a voxel of level 0


def test_same_scales_translations_chunks_and_codecs_as_0_5(tmp_path, volume, image):
    five = write_ome_zarr(volume, tmp_path / "five.ome.zarr", voxel_size=(3.0, 1.0, 1.0), unit="um", chunks=16,
                          translation=(5.0, -2.0, 0.5), version="0.5")
    six = attributes(image)["ome"]["multiscales"][0]
    for ds5, ds6 in zip(attributes(five.path)["ome"]["multiscales"][0]["datasets"], six["datasets"], strict=True):
        assert ds6["coordinateTransformations"][0]["transformations"] == ds5["coordinateTransformations"]
        assert json.loads((image / ds6["path"] / "zarr.json").read_text()) == \
            json.loads((five.path / ds5["path"] / "zarr.json").read_text())  # shape, chunks, codecs, names
    assert attributes(five.path)["data_helpers"] == attributes(image)["data_helpers"]


def test_ome_zarr_models_opens_it_as_a_0_6_image(image):
    from ome_zarr_models import open_ome_zarr
    from ome_zarr_models.v06.image import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning would mean it was not read cleanly
        model = open_ome_zarr(zarr.open_group(image, mode="r"), version="0.6")
    assert isinstance(model, Image)
    multiscale = model.ome_attributes.multiscales[0]
    assert [cs.name for cs in multiscale.coordinateSystems] == ["physical"]
    assert [ds.path for ds in multiscale.datasets] == ["0", "1", "2"]


def test_ngff_zarr_reads_each_level_with_its_scale_and_translation(image):
    import ngff_zarr

    multiscales = ngff_zarr.from_ngff_zarr(str(image))
    assert [im.data.shape for im in multiscales.images] == [(2, 24, 40, 40), (2, 24, 20, 20), (2, 12, 10, 10)]
    assert [im.scale for im in multiscales.images] == [
        {"c": 1.0, "z": 3.0, "y": 1.0, "x": 1.0},
        {"c": 1.0, "z": 3.0, "y": 2.0, "x": 2.0},
        {"c": 1.0, "z": 6.0, "y": 4.0, "x": 4.0},
    ]
    assert [im.translation for im in multiscales.images] == [
        {"c": 0.0, "z": 5.0, "y": -2.0, "x": 0.5},
        {"c": 0.0, "z": 5.0, "y": -1.5, "x": 1.0},
        {"c": 0.0, "z": 6.5, "y": -0.5, "x": 2.0},
    ]
    assert all(im.axes_units == {"c": None, "z": "micrometer", "y": "micrometer", "x": "micrometer"}
               for im in multiscales.images)


def test_read_ome_metadata_reads_0_6(image):
    meta = read_ome_metadata(image)
    assert meta["version"] == "0.6"
    assert meta["multiscales"][0]["coordinateSystems"][0]["name"] == "physical"


def test_read_ome_metadata_names_the_images_of_a_0_6_scene(tmp_path):
    zarr.create_group(tmp_path / "scene.zarr", zarr_format=3, attributes={"ome": {"version": "0.6", "scene": {
        "coordinateTransformations": [{"type": "translation", "translation": [0, 5],
                                       "input": {"path": "left", "name": "physical"},
                                       "output": {"path": "right", "name": "physical"}}]}}})
    with pytest.raises(OmeZarrError, match="0.6 scene.*subgroups left, right"):
        read_ome_metadata(tmp_path / "scene.zarr")


def test_the_candidate_image_case_differs_from_the_release_only_where_the_release_changed(image):
    """The release candidate's strict-valid image (rc0) writes input/output as strings and version "0.6rc0";
    the released text and schema write objects. With those two changes it is what write_ome_zarr writes."""
    case = CANDIDATE / "strict" / "valid" / "image" / "image.ome.zarr" / "zarr.json"
    if not case.is_file():
        skip_or_fail(f"the 0.6 release candidate's conformance stores are not in {CANDIDATE}")
    ome = json.loads(case.read_text())["attributes"]["ome"]
    assert ome["version"] == "0.6rc0"
    assert schema_errors({"ome": ome})  # strings where the release wants objects
    released = copy.deepcopy(ome)
    released["version"] = "0.6"
    for ds in released["multiscales"][0]["datasets"]:
        for t in ds["coordinateTransformations"]:
            t["input"], t["output"] = {"path": t["input"]}, {"name": t["output"]}
    assert schema_errors({"ome": released}) == []
    ours = attributes(image)["ome"]["multiscales"][0]
    theirs = released["multiscales"][0]
    assert ours["coordinateSystems"][0]["name"] == theirs["coordinateSystems"][0]["name"] == "physical"
    assert ours["datasets"][0]["path"] == theirs["datasets"][0]["path"] == "0"
    assert ours["datasets"][0]["coordinateTransformations"][0]["input"] == \
        theirs["datasets"][0]["coordinateTransformations"][0]["input"] == {"path": "0"}


# -- the data ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("as_dask", [False, True])
def test_round_trip_of_the_pixels(tmp_path, volume, as_dask):
    data = da.from_array(volume, chunks=(1, 7, 40, 13)) if as_dask else volume
    six = write_ome_zarr(data, tmp_path / "six.ome.zarr", voxel_size=1, chunks=16, version="0.6")
    five = write_ome_zarr(volume, tmp_path / "five.ome.zarr", voxel_size=1, chunks=16, version="0.5")
    assert six.n_levels == five.n_levels == 3
    np.testing.assert_array_equal(zarr.open_array(six.path / "0", mode="r")[:], volume)
    for level in ("1", "2"):
        np.testing.assert_array_equal(zarr.open_array(six.path / level, mode="r")[:],
                                      zarr.open_array(five.path / level, mode="r")[:])
    first = zarr.open_array(six.path / "1", mode="r")[0, 0, 0, 0]
    assert first == (volume[0, :2, :2, :2].astype(int).sum() + 4) // 8  # a mean of 2 x 2 x 2 voxels, rounded half up


def test_a_time_series_in_0_6(tmp_path):
    data = np.arange(3 * 8 * 8, dtype=np.float32).reshape(3, 8, 8)
    image = write_ome_zarr(data, tmp_path / "t.ome.zarr", voxel_size=0.25, unit="mm", dims="tyx",
                           time_step=0.5, time_unit="ms", chunks=4, version="0.6")
    attrs = attributes(image.path)
    assert schema_errors(attrs) == []
    system = attrs["ome"]["multiscales"][0]["coordinateSystems"][0]
    assert [(a["name"], a["type"], a.get("unit")) for a in system["axes"]] == [
        ("t", "time", "millisecond"), ("y", "space", "millimeter"), ("x", "space", "millimeter")]
    scale = attrs["ome"]["multiscales"][0]["datasets"][1]["coordinateTransformations"][0]["transformations"][0]
    assert scale["scale"] == [0.5, 0.5, 0.5]


@pytest.mark.parametrize("version", ["0.6rc0", "0.60", "6", 0.6, None])
def test_other_version_values_are_refused(tmp_path, volume, version):
    with pytest.raises(OmeZarrError, match="'0.4'.*'0.5' or '0.6'"):
        write_ome_zarr(volume, tmp_path / "v.ome.zarr", voxel_size=1, version=version)
    assert not (tmp_path / "v.ome.zarr").exists()


def test_the_default_stays_0_5_and_the_docstring_says_why():
    assert inspect.signature(write_ome_zarr).parameters["version"].default == "0.5"
    doc = " ".join(write_ome_zarr.__doc__.split())
    assert "Neuroglancer" in doc and "vizarr" in doc and "iohub" in doc


# -- overwrite -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("first", "second"), [("0.6", "0.6"), ("0.6", "0.5"), ("0.5", "0.6"),
                                               ("0.6", "0.4"), ("0.4", "0.6")])
def test_overwrite_between_versions_keeps_other_entries(tmp_path, volume, first, second):
    target = tmp_path / "img.ome.zarr"
    write_ome_zarr(volume, target, voxel_size=1, chunks=8, version=first)  # 4 levels
    (target / "notes.txt").write_text("mine")
    (target / "analysis").mkdir()
    (target / "analysis" / "table.csv").write_text("x\n1\n")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_ome_zarr(volume, target, voxel_size=1, chunks=16, version=second)
    new = write_ome_zarr(volume[:, :8], target, voxel_size=2, chunks=16, n_levels=2, version=second,
                         overwrite=True)
    assert new.n_levels == 2
    assert read_ome_metadata(target)["version"] == second
    expected = {"0", "1", "notes.txt", "analysis"} | ({".zgroup", ".zattrs"} if second == "0.4" else {"zarr.json"})
    assert {p.name for p in target.iterdir()} == expected  # levels 2 and 3 and the old metadata are gone
    assert (target / "notes.txt").read_text() == "mine"
    assert (target / "analysis" / "table.csv").read_text() == "x\n1\n"
    np.testing.assert_array_equal(zarr.open_array(target / "0", mode="r")[:], volume[:, :8])


def _input_path(path):
    def edit(attrs):
        attrs["ome"]["multiscales"][0]["datasets"][1]["coordinateTransformations"][0]["input"] = path
    return edit


def _set(*keys, value):
    def edit(attrs):
        node = attrs
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return edit


ODD = {
    "a transformation that maps from another array": (_input_path({"path": "../another-project"}), "maps from"),
    "the candidate's string form of input": (_input_path("1"), "maps from"),
    "no transformation for a level": (
        _set("ome", "multiscales", 0, "datasets", 0, "coordinateTransformations", value=[]), "maps from"),
    "a version this package does not write": (_set("ome", "version", value="0.6rc0"), "version '0.6rc0'"),
    "a 0.4 version in Zarr v3": (_set("ome", "version", value="0.4"), "version '0.4'"),
    "a scene": (_set("ome", "scene", value={"coordinateTransformations": []}), "also holds scene"),
    "a plate": (_set("ome", "plate", value={}), "also holds plate"),
    "a marker with other levels": (_set("data_helpers", "levels", value=["0", "1", "another-project"]),
                                   "marker names the levels"),
}


@pytest.mark.parametrize("case", ODD)
def test_odd_0_6_metadata_is_refused_and_nothing_is_touched(tmp_path, image, volume, case):
    edit, match = ODD[case]
    edit_attrs(image, edit)
    before = snapshot(tmp_path)
    with pytest.raises(FileExistsError, match=match):
        write_ome_zarr(volume, image, voxel_size=1, chunks=16, version="0.6", overwrite=True)
    assert snapshot(tmp_path) == before


def test_a_0_6_level_with_anything_but_its_chunks_is_refused(tmp_path, image, volume):
    (image / "1" / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    with pytest.raises(FileExistsError, match="level 1 is not only a Zarr array"):
        write_ome_zarr(volume, image, voxel_size=1, version="0.5", overwrite=True)
    assert snapshot(tmp_path) == before


def test_a_0_6_group_in_zarr_v2_is_refused(tmp_path, volume):
    target = tmp_path / "v2.ome.zarr"
    write_ome_zarr(volume, target, voxel_size=1, chunks=16, version="0.4")
    attrs = json.loads((target / ".zattrs").read_text())
    attrs["multiscales"][0]["version"] = "0.6"
    (target / ".zattrs").write_text(json.dumps(attrs))
    with pytest.raises(FileExistsError, match="version '0.6' is not one this package writes in Zarr v2"):
        _replaceable_entries(target, ("zarr.json", "0"))


def test_a_0_6_image_another_writer_made_is_refused(tmp_path, volume):
    import ngff_zarr

    target = tmp_path / "theirs.ome.zarr"
    ngff_image = ngff_zarr.to_ngff_image(volume[0], dims=("z", "y", "x"))
    ngff_zarr.to_ngff_zarr(target, ngff_zarr.to_multiscales(ngff_image, scale_factors=[2]), version="0.6")
    assert attributes(target)["ome"]["version"] == "0.6"
    before = snapshot(tmp_path)
    with pytest.raises(FileExistsError, match="not an OME-Zarr image written by data_helpers"):
        write_ome_zarr(volume, target, voxel_size=1, version="0.6", overwrite=True)
    assert snapshot(tmp_path) == before


def test_the_rule_lists_a_0_6_image_entries(image):
    assert _replaceable_entries(image, ("zarr.json", "0", "1")) == ("zarr.json", "0", "1", "2")
