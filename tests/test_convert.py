"""Tests of data_helpers.convert: TIFF / HDF5 to OME-Zarr and back, every bad input, the command line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

from data_helpers import (
    ConvertError,
    UnitError,
    hdf5_to_ome_zarr,
    ome_zarr_to_tiff,
    read_ome_metadata,
    tiff_to_ome_zarr,
    validate_ome_zarr,
    write_ome_zarr,
)
from data_helpers.__main__ import main
from data_helpers.safety import NotWritableError

SHAPE = (7, 20, 24)


def _volume(dtype) -> np.ndarray:
    rng = np.random.default_rng(5)
    if np.dtype(dtype).kind == "f":
        return rng.normal(size=SHAPE).astype(dtype)
    return rng.integers(0, np.iinfo(dtype).max, size=SHAPE, dtype=dtype)


def _planes(folder: Path, volume: np.ndarray, name="z{}.tif") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for z, plane in enumerate(volume):
        tifffile.imwrite(folder / name.format(z), plane)
    return folder


def _level(path: Path, level: int = 0) -> np.ndarray:
    return zarr.open_array(path / str(level), mode="r")[:]


def _scale(path: Path, level: int = 0) -> list[float]:
    ms = read_ome_metadata(path)["multiscales"][0]
    return ms["datasets"][level]["coordinateTransformations"][0]["scale"]


def _read_folder(folder: Path) -> np.ndarray:
    files = sorted(folder.glob("*.tif"))
    return np.stack([tifffile.imread(f) for f in files])


# -- round trips -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_tiff_stack_round_trip_is_exact(tmp_path, dtype):
    volume = _volume(dtype)
    _planes(tmp_path / "in", volume)
    image = tiff_to_ome_zarr(tmp_path / "in", tmp_path / "a.ome.zarr", voxel_size=(2.0, 0.5, 0.25), unit="um",
                             chunks=8, progress=False)
    assert image.shapes[0] == SHAPE
    assert validate_ome_zarr(tmp_path / "a.ome.zarr").ok
    assert _scale(tmp_path / "a.ome.zarr") == [2.0, 0.5, 0.25]
    out = ome_zarr_to_tiff(tmp_path / "a.ome.zarr", tmp_path / "out")
    back = _read_folder(tmp_path / "out")
    assert back.dtype == volume.dtype
    np.testing.assert_array_equal(back, volume)
    assert len(out.files) == SHAPE[0]


def test_planes_sorted_by_number_not_as_text(tmp_path):
    volume = np.arange(12, dtype=np.uint8)[:, None, None] * np.ones((12, 4, 4), np.uint8)
    _planes(tmp_path / "in", volume, name="slice_{}.tif")  # slice_10 must come after slice_9
    tiff_to_ome_zarr(tmp_path / "in", tmp_path / "a.ome.zarr", voxel_size=1.0, unit="um", progress=False)
    np.testing.assert_array_equal(_level(tmp_path / "a.ome.zarr")[:, 0, 0], np.arange(12))


def test_glob_pattern_selects_one_series(tmp_path):
    volume = _volume(np.uint8)
    _planes(tmp_path / "in", volume, name="a{}.tif")
    _planes(tmp_path / "in", volume[:2, :5], name="b{}.tif")  # another series, other shape, beside it
    tiff_to_ome_zarr(str(tmp_path / "in" / "a*.tif"), tmp_path / "a.ome.zarr", voxel_size=1, unit="nm",
                     progress=False)
    np.testing.assert_array_equal(_level(tmp_path / "a.ome.zarr"), volume)


def test_multipage_bigtiff_round_trip(tmp_path):
    volume = _volume(np.uint16)
    tifffile.imwrite(tmp_path / "v.tif", volume, bigtiff=True)
    tiff_to_ome_zarr(tmp_path / "v.tif", tmp_path / "a.ome.zarr", voxel_size=(3, 1, 1), unit="nm", progress=False)
    out = ome_zarr_to_tiff(tmp_path / "a.ome.zarr", tmp_path / "back.tif", multipage=True)
    with tifffile.TiffFile(out.target) as tif:
        assert tif.is_bigtiff
        np.testing.assert_array_equal(tif.asarray(), volume)


def test_ome_tiff_metadata_is_carried_over(tmp_path):
    volume = _volume(np.uint16)
    tifffile.imwrite(tmp_path / "v.ome.tif", volume, metadata={
        "axes": "ZYX", "PhysicalSizeZ": 2.5, "PhysicalSizeY": 0.3, "PhysicalSizeX": 0.2,
        "PhysicalSizeZUnit": "nm", "PhysicalSizeYUnit": "nm", "PhysicalSizeXUnit": "nm"})
    tiff_to_ome_zarr(tmp_path / "v.ome.tif", tmp_path / "a.ome.zarr", progress=False)
    assert _scale(tmp_path / "a.ome.zarr") == [2.5, 0.3, 0.2]
    axes = read_ome_metadata(tmp_path / "a.ome.zarr")["multiscales"][0]["axes"]
    assert [a["unit"] for a in axes] == ["nanometer"] * 3
    np.testing.assert_array_equal(_level(tmp_path / "a.ome.zarr"), volume)


def test_imagej_metadata_is_carried_over(tmp_path):
    volume = _volume(np.uint8)
    tifffile.imwrite(tmp_path / "v.tif", volume, imagej=True, resolution=(1 / 0.4, 1 / 0.5),
                     metadata={"spacing": 1.5, "unit": "micron", "axes": "ZYX"})
    tiff_to_ome_zarr(tmp_path / "v.tif", tmp_path / "a.ome.zarr", progress=False)
    assert np.allclose(_scale(tmp_path / "a.ome.zarr"), [1.5, 0.5, 0.4])
    axes = read_ome_metadata(tmp_path / "a.ome.zarr")["multiscales"][0]["axes"]
    assert axes[0]["unit"] == "micrometer"


def test_explicit_voxel_size_wins_over_metadata(tmp_path):
    tifffile.imwrite(tmp_path / "v.tif", _volume(np.uint8), imagej=True, resolution=(2.0, 2.0),
                     metadata={"spacing": 1.5, "unit": "micron", "axes": "ZYX"})
    tiff_to_ome_zarr(tmp_path / "v.tif", tmp_path / "a.ome.zarr", voxel_size=(4, 3, 3), unit="nm", progress=False)
    assert _scale(tmp_path / "a.ome.zarr") == [4, 3, 3]


def test_hdf5_round_trip(tmp_path):
    h5py = pytest.importorskip("h5py")
    volume = _volume(np.uint16)
    with h5py.File(tmp_path / "scan.h5", "w") as f:
        f.create_dataset("entry/data", data=volume, chunks=(2, 20, 24), compression="gzip")
    hdf5_to_ome_zarr(tmp_path / "scan.h5", "entry/data", tmp_path / "a.ome.zarr", voxel_size=(1, 2, 3), unit="um",
                     progress=False)
    np.testing.assert_array_equal(_level(tmp_path / "a.ome.zarr"), volume)
    assert _scale(tmp_path / "a.ome.zarr") == [1, 2, 3]


def test_hdf5_element_size_attribute_is_used(tmp_path):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "scan.h5", "w") as f:
        f.create_dataset("v", data=_volume(np.uint8)).attrs["element_size_um"] = (2.0, 1.0, 0.5)
    hdf5_to_ome_zarr(tmp_path / "scan.h5", "v", tmp_path / "a.ome.zarr", progress=False)
    assert _scale(tmp_path / "a.ome.zarr") == [2.0, 1.0, 0.5]


# -- export ------------------------------------------------------------------------------------------------


@pytest.fixture
def image(tmp_path) -> tuple[Path, np.ndarray]:
    volume = _volume(np.uint16)
    path = tmp_path / "img.ome.zarr"
    write_ome_zarr(volume, path, voxel_size=(2.0, 0.5, 0.25), unit="um", translation=(10.0, 0.0, 1.0),
                   chunks=8, progress=False)
    return path, volume


def test_voxel_region_lands_at_the_right_place(tmp_path, image):
    path, volume = image
    out = ome_zarr_to_tiff(path, tmp_path / "r", region=(slice(2, 5), slice(3, 11), slice(None, 6)))
    np.testing.assert_array_equal(_read_folder(tmp_path / "r"), volume[2:5, 3:11, :6])
    assert out.offset == (2, 3, 0) and out.shape == (3, 8, 6)
    assert out.origin == (10.0 + 2 * 2.0, 3 * 0.5, 1.0)


def test_physical_region_lands_at_the_right_place(tmp_path, image):
    path, volume = image
    # z centres at 10, 12, 14, ...: [13, 19) holds 14, 16, 18 = voxels 2..4; x centres 1 + 0.25 i: [2, 3) is 4..7
    out = ome_zarr_to_tiff(path, tmp_path / "r", region=((13.0, 19.0), (None, None), (2.0, 3.0)),
                           coordinates="physical")
    assert out.offset == (2, 0, 4) and out.shape == (3, SHAPE[1], 4)
    np.testing.assert_array_equal(_read_folder(tmp_path / "r"), volume[2:5, :, 4:8])


def test_export_writes_voxel_size_that_imagej_reads(tmp_path, image):
    path, _ = image
    for multipage, target in ((False, tmp_path / "planes"), (True, tmp_path / "one.tif")):
        out = ome_zarr_to_tiff(path, target, multipage=multipage)
        with tifffile.TiffFile(out.files[0]) as tif:
            assert tif.is_imagej
            assert tif.imagej_metadata["spacing"] == pytest.approx(2.0)
            assert tif.imagej_metadata["unit"] == "micron"
            # Fiji opens the pages as z-slices, not as channels or time points
            assert "channels" not in tif.imagej_metadata and "frames" not in tif.imagej_metadata
            if multipage:
                assert tif.imagej_metadata["slices"] == SHAPE[0] and tif.series[0].axes == "ZYX"
            num, den = tif.pages.first.tags["XResolution"].value
            assert den / num == pytest.approx(0.25)
            num, den = tif.pages.first.tags["YResolution"].value
            assert den / num == pytest.approx(0.5)


def test_export_level_1(tmp_path, image):
    path, _ = image
    out = ome_zarr_to_tiff(path, tmp_path / "l1", level=1)
    np.testing.assert_array_equal(_read_folder(tmp_path / "l1"), _level(path, 1))
    assert list(out.voxel_size) == _scale(path, 1) != _scale(path, 0)


def test_export_never_overwrites_what_it_did_not_write(tmp_path, image):
    path, _ = image
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="already exists"):
        ome_zarr_to_tiff(path, mine)
    with pytest.raises(FileExistsError, match="not written by"):
        ome_zarr_to_tiff(path, mine, overwrite=True)
    assert (mine / "notes.txt").read_text() == "keep"
    single = tmp_path / "s.tif"
    single.write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        ome_zarr_to_tiff(path, single, multipage=True, overwrite=True)
    assert single.read_bytes() == b"precious"


def test_export_overwrites_its_own_files_only_when_unchanged(tmp_path, image):
    path, volume = image
    target = tmp_path / "out"
    ome_zarr_to_tiff(path, target)
    ome_zarr_to_tiff(path, target, region=(slice(0, 2), slice(None), slice(None)), overwrite=True)
    assert len(list(target.glob("*.tif"))) == 2
    np.testing.assert_array_equal(_read_folder(target), volume[:2])
    (target / "result.tif").write_bytes(b"a file of the reader's")  # added by someone else
    with pytest.raises(FileExistsError, match="result.tif"):
        ome_zarr_to_tiff(path, target, overwrite=True)
    assert (target / "result.tif").exists() and len(list(target.glob("z*.tif"))) == 2
    (target / "result.tif").unlink()
    tifffile.imwrite(target / "z0000.tif", np.zeros((3, 3), np.uint8))  # an exported file, edited since
    with pytest.raises(FileExistsError, match="z0000.tif"):
        ome_zarr_to_tiff(path, target, overwrite=True)
    assert tifffile.imread(target / "z0000.tif").shape == (3, 3)


def test_multipage_export_overwrites_its_own_file(tmp_path, image):
    path, volume = image
    target = tmp_path / "v.tif"
    ome_zarr_to_tiff(path, target, multipage=True)
    ome_zarr_to_tiff(path, target, multipage=True, overwrite=True, region=(slice(1, 2), slice(None), slice(None)))
    np.testing.assert_array_equal(tifffile.imread(target), volume[1])


@pytest.mark.parametrize("region, match", [
    ((slice(5, 5), slice(None), slice(None)), "selects no voxel"),
    ((slice(0, 2), slice(None)), "3 axes"),
    ((slice(0, 4, 2), slice(None), slice(None)), "without a step"),
])
def test_export_bad_region(tmp_path, image, region, match):
    path, _ = image
    with pytest.raises(ConvertError, match=match):
        ome_zarr_to_tiff(path, tmp_path / "r", region=region)
    assert not (tmp_path / "r").exists()


def test_export_bad_level(tmp_path, image):
    path, _ = image
    with pytest.raises(ConvertError, match="levels 0 to"):
        ome_zarr_to_tiff(path, tmp_path / "r", level=9)


# -- bad inputs: a clear error, nothing written ---------------------------------------------------------------


def _nothing_written(tmp_path: Path) -> None:
    assert not (tmp_path / "a.ome.zarr").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".a.ome.zarr")]


def test_empty_folder(tmp_path):
    (tmp_path / "in").mkdir()
    with pytest.raises(ConvertError, match="holds no TIFF files"):
        tiff_to_ome_zarr(tmp_path / "in", tmp_path / "a.ome.zarr", voxel_size=1, unit="um")
    _nothing_written(tmp_path)


def test_glob_matching_nothing(tmp_path):
    with pytest.raises(ConvertError, match="matches no files"):
        tiff_to_ome_zarr(str(tmp_path / "*.tif"), tmp_path / "a.ome.zarr", voxel_size=1, unit="um")
    _nothing_written(tmp_path)


def test_missing_source(tmp_path):
    with pytest.raises(ConvertError, match="does not exist"):
        tiff_to_ome_zarr(tmp_path / "nope", tmp_path / "a.ome.zarr", voxel_size=1, unit="um")


def test_odd_plane_shape_names_the_first_odd_file(tmp_path):
    _planes(tmp_path / "in", _volume(np.uint8))
    tifffile.imwrite(tmp_path / "in" / "z4.tif", np.zeros((20, 23), np.uint8))
    tifffile.imwrite(tmp_path / "in" / "z6.tif", np.zeros((5, 5), np.uint8))
    with pytest.raises(ConvertError, match=r"z4.tif is the first odd plane: shape \(20, 23\)"):
        tiff_to_ome_zarr(tmp_path / "in", tmp_path / "a.ome.zarr", voxel_size=1, unit="um")
    _nothing_written(tmp_path)


def test_odd_plane_dtype_names_the_file(tmp_path):
    _planes(tmp_path / "in", _volume(np.uint8))
    tifffile.imwrite(tmp_path / "in" / "z3.tif", np.zeros((20, 24), np.uint16))
    with pytest.raises(ConvertError, match="z3.tif is the first odd plane.*uint16"):
        tiff_to_ome_zarr(tmp_path / "in", tmp_path / "a.ome.zarr", voxel_size=1, unit="um")
    _nothing_written(tmp_path)


def test_missing_plane_in_numbered_sequence(tmp_path):
    _planes(tmp_path / "in", _volume(np.uint8), name="z{:03d}.tif")
    (tmp_path / "in" / "z004.tif").unlink()
    with pytest.raises(ConvertError, match="plane number 4 is missing between z003.tif and z005.tif"):
        tiff_to_ome_zarr(tmp_path / "in", tmp_path / "a.ome.zarr", voxel_size=1, unit="um")
    _nothing_written(tmp_path)


def test_repeated_plane_number(tmp_path):
    _planes(tmp_path / "in", _volume(np.uint8))
    tifffile.imwrite(tmp_path / "in" / "z03.tif", np.zeros((20, 24), np.uint8))
    with pytest.raises(ConvertError, match="same plane number 3"):
        tiff_to_ome_zarr(tmp_path / "in", tmp_path / "a.ome.zarr", voxel_size=1, unit="um")


def test_2d_source_where_3d_is_wanted(tmp_path):
    tifffile.imwrite(tmp_path / "one.tif", np.zeros((20, 24), np.uint8))
    with pytest.raises(ConvertError, match="one 2D plane"):
        tiff_to_ome_zarr(tmp_path / "one.tif", tmp_path / "a.ome.zarr", voxel_size=1, unit="um")
    _nothing_written(tmp_path)
    # asked for explicitly, a 2D image is fine
    tiff_to_ome_zarr(tmp_path / "one.tif", tmp_path / "a.ome.zarr", voxel_size=1, unit="um", dims=("y", "x"),
                     progress=False)
    assert _level(tmp_path / "a.ome.zarr").shape == (20, 24)


def test_2d_hdf5_dataset_refused(tmp_path):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f.create_dataset("plane", data=np.zeros((4, 4), np.uint8))
    with pytest.raises(ConvertError, match=r"shape \(4, 4\) \(2D\)"):
        hdf5_to_ome_zarr(tmp_path / "s.h5", "plane", tmp_path / "a.ome.zarr", voxel_size=1, unit="um")
    with pytest.raises(ConvertError, match="no dataset 'nope'.*/plane"):
        hdf5_to_ome_zarr(tmp_path / "s.h5", "nope", tmp_path / "a.ome.zarr", voxel_size=1, unit="um")
    _nothing_written(tmp_path)


def test_unknown_unit(tmp_path):
    _planes(tmp_path / "in", _volume(np.uint8))
    with pytest.raises(UnitError, match="micrometr"):
        tiff_to_ome_zarr(tmp_path / "in", tmp_path / "a.ome.zarr", voxel_size=1, unit="micrometr")
    _nothing_written(tmp_path)


def test_no_voxel_size_is_refused_with_how_to_pass_it(tmp_path):
    _planes(tmp_path / "in", _volume(np.uint8))
    with pytest.raises(ConvertError, match="voxel_size=.*unit=.*--voxel-size"):
        tiff_to_ome_zarr(tmp_path / "in", tmp_path / "a.ome.zarr")
    tifffile.imwrite(tmp_path / "plain.tif", _volume(np.uint8))  # a multi-page file without calibration
    with pytest.raises(ConvertError, match="never assumed"):
        tiff_to_ome_zarr(tmp_path / "plain.tif", tmp_path / "a.ome.zarr")
    with pytest.raises(ConvertError, match="without its unit"):
        tiff_to_ome_zarr(tmp_path / "in", tmp_path / "a.ome.zarr", voxel_size=1)
    _nothing_written(tmp_path)


def test_existing_target(tmp_path):
    _planes(tmp_path / "in", _volume(np.uint8))
    (tmp_path / "a.ome.zarr").mkdir()
    with pytest.raises(FileExistsError, match="already exists"):
        tiff_to_ome_zarr(tmp_path / "in", tmp_path / "a.ome.zarr", voxel_size=1, unit="um")
    assert list((tmp_path / "a.ome.zarr").iterdir()) == []


# -- command line ------------------------------------------------------------------------------------------


def test_cli_convert_and_export(tmp_path, capsys):
    volume = _volume(np.uint16)
    _planes(tmp_path / "in", volume)
    assert main(["convert", str(tmp_path / "in"), str(tmp_path / "a.ome.zarr"), "--voxel-size", "2", "1", "1",
                 "--unit", "um", "--version", "0.4", "--no-progress"]) == 0
    assert read_ome_metadata(tmp_path / "a.ome.zarr")["version"] == "0.4"
    assert main(["export", str(tmp_path / "a.ome.zarr"), str(tmp_path / "out"), "--region", "1:3,:,4:"]) == 0
    np.testing.assert_array_equal(_read_folder(tmp_path / "out"), volume[1:3, :, 4:])
    manifest = json.loads((tmp_path / "out" / ".made-by-data_helpers-export.json").read_text())
    assert manifest["offset"] == [1, 0, 4]


def test_cli_errors_exit_2_and_write_nothing(tmp_path, capsys):
    _planes(tmp_path / "in", _volume(np.uint8))
    assert main(["convert", str(tmp_path / "in"), str(tmp_path / "a.ome.zarr"), "--no-progress"]) == 2
    assert "--voxel-size" in capsys.readouterr().err
    _nothing_written(tmp_path)
    (tmp_path / "a.ome.zarr").mkdir()
    assert main(["convert", str(tmp_path / "in"), str(tmp_path / "a.ome.zarr"), "--voxel-size", "1", "1", "1",
                 "--unit", "um"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_cli_hdf5_needs_dataset(tmp_path, capsys):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f.create_dataset("v", data=_volume(np.uint8))
    assert main(["convert", str(tmp_path / "s.h5"), str(tmp_path / "a.ome.zarr")]) == 2
    assert "--dataset" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "s.h5"), str(tmp_path / "a.ome.zarr"), "--dataset", "v",
                 "--voxel-size", "1", "1", "1", "--unit", "nm", "--no-progress"]) == 0
    np.testing.assert_array_equal(_level(tmp_path / "a.ome.zarr"), _volume(np.uint8))


def test_plane_number_is_the_number_that_changes(tmp_path):
    volume = np.arange(11, dtype=np.uint8)[:, None, None] * np.ones((11, 4, 4), np.uint8)
    _planes(tmp_path / "in", volume, name="scan_z{}_ch0.tif")  # the channel number is the same in every name
    tiff_to_ome_zarr(tmp_path / "in", tmp_path / "a.ome.zarr", voxel_size=1, unit="um", progress=False)
    np.testing.assert_array_equal(_level(tmp_path / "a.ome.zarr")[:, 0, 0], np.arange(11))
    (tmp_path / "in" / "scan_z5_ch0.tif").unlink()
    with pytest.raises(ConvertError, match="plane number 5 is missing"):
        tiff_to_ome_zarr(tmp_path / "in", tmp_path / "b.ome.zarr", voxel_size=1, unit="um")


@pytest.mark.parametrize("multipage", [False, True])
def test_export_across_many_chunks_in_z(tmp_path, multipage):
    volume = np.random.default_rng(1).integers(0, 255, size=(30, 9, 10), dtype=np.uint8)
    write_ome_zarr(volume, tmp_path / "a.ome.zarr", voxel_size=1, unit="um", chunks=4, progress=False)
    target = tmp_path / ("r.tif" if multipage else "r")
    ome_zarr_to_tiff(tmp_path / "a.ome.zarr", target, region=(slice(3, 27), slice(1, 8), slice(None)),
                     multipage=multipage)
    back = tifffile.imread(target) if multipage else _read_folder(target)
    np.testing.assert_array_equal(back, volume[3:27, 1:8])


def test_export_from_ome_zarr_0_6(tmp_path):
    volume = _volume(np.uint8)
    write_ome_zarr(volume, tmp_path / "a.ome.zarr", voxel_size=(2, 1, 0.5), unit="um", translation=(4, 0, 0),
                   version="0.6", chunks=8, progress=False)
    out = ome_zarr_to_tiff(tmp_path / "a.ome.zarr", tmp_path / "r", region=((6.0, 10.0), (None, None), (None, None)),
                           coordinates="physical")
    assert out.voxel_size == (2, 1, 0.5) and out.offset == (1, 0, 0) and out.unit == "micrometer"
    np.testing.assert_array_equal(_read_folder(tmp_path / "r"), volume[1:3])


# -- how planes are read: memory-mapped blocks when uncompressed, whole planes otherwise ---------------------


def test_uncompressed_planes_are_memory_mapped_and_others_are_not(tmp_path):
    from data_helpers.convert import _page_layout

    plane = _volume(np.uint16)[0]
    tifffile.imwrite(tmp_path / "raw.tif", plane)
    tifffile.imwrite(tmp_path / "zlib.tif", plane, compression="zlib")
    tifffile.imwrite(tmp_path / "big.tif", plane, byteorder=">")
    shape, dtype, offset = _page_layout(tmp_path / "raw.tif")
    assert (shape, dtype) == (plane.shape, np.dtype(np.uint16)) and offset is not None
    mapped = np.memmap(tmp_path / "raw.tif", dtype=np.uint16, mode="r", offset=offset, shape=shape)
    np.testing.assert_array_equal(mapped, plane)
    del mapped
    assert _page_layout(tmp_path / "zlib.tif")[2] is None
    assert _page_layout(tmp_path / "big.tif")[2] is None


@pytest.mark.parametrize("kind", ["raw", "zlib", "big-endian", "mixed"])
def test_plane_blocks_read_exactly_across_block_edges(tmp_path, monkeypatch, kind):
    import data_helpers.convert as convert

    monkeypatch.setattr(convert, "_MAPPED_BLOCK", (3, 8, 16))  # blocks that do not divide the shape
    volume = _volume(np.uint16)
    folder = tmp_path / "in"
    folder.mkdir()
    for z, plane in enumerate(volume):
        options = {"raw": {}, "zlib": {"compression": "zlib"}, "big-endian": {"byteorder": ">"},
                   "mixed": {"compression": "zlib"} if z == 3 else {}}[kind]
        tifffile.imwrite(folder / f"z{z}.tif", plane, **options)
    source = convert._open_plane_folder(folder)
    assert source.data.chunksize == ((3, 8, 16) if kind == "raw" else (1, *SHAPE[1:]))
    np.testing.assert_array_equal(source.data.compute(), volume)
    np.testing.assert_array_equal(source.data[2:6, 5:17, 3:20].compute(), volume[2:6, 5:17, 3:20])
    image = tiff_to_ome_zarr(folder, tmp_path / "a.ome.zarr", voxel_size=1.0, unit="um", chunks=4,
                             progress=False)
    np.testing.assert_array_equal(_level(image.path), volume)


def test_a_plane_stack_reads_any_index_like_numpy(tmp_path):
    from data_helpers.convert import _page_layout, _PlaneStack

    volume = _volume(np.uint16)
    files = [tmp_path / f"z{z}.tif" for z in range(len(volume))]
    for file, plane in zip(files, volume):
        tifffile.imwrite(file, plane)
    offsets = [_page_layout(f)[2] for f in files]
    assert all(o is not None and o % 4096 for o in offsets)  # mapped rows start inside a page
    stack = _PlaneStack(files, volume.shape[1:], volume.dtype, offsets)
    for key in [(slice(None),), (2, 5), (slice(1, 6), slice(3, 30, 3), 4), (slice(None), slice(7, 7)),
                (slice(2, 4), slice(None), slice(5, 9)), (slice(0, 8, 2), -1), (3,)]:
        np.testing.assert_array_equal(stack[key], volume[key], err_msg=str(key))


# -- issue 31: silently wrong conversions refused or made right ----------------------------------------------


def _numbered(folder: Path, numbers, extra=()) -> Path:
    folder.mkdir()
    for z in numbers:
        tifffile.imwrite(folder / f"z{z}.tif", np.full((4, 5), z, np.uint8))
    for name in extra:
        tifffile.imwrite(folder / name, np.zeros((4, 5), np.uint8))
    return folder


def test_an_odd_file_and_a_gap_are_both_named(tmp_path):
    folder = _numbered(tmp_path / "in", [0, 1, 3, 4], extra=["overview.tif"])
    with pytest.raises(ConvertError) as info:
        tiff_to_ome_zarr(folder, tmp_path / "a.ome.zarr", voxel_size=1, unit="um")
    message = str(info.value)
    assert "overview.tif does not follow the numbering" in message
    assert "plane number 2 is missing between z1.tif and z3.tif" in message
    _nothing_written(tmp_path)


@pytest.mark.parametrize("odd", ["z2 (1).tif", "z1_v2.tif", "notes.tif"])
def test_a_file_outside_the_numbering_never_turns_the_check_off(tmp_path, odd):
    folder = _numbered(tmp_path / "in", range(5), extra=[odd])
    with pytest.raises(ConvertError, match=f"{re.escape(odd)} does not follow the numbering"):
        tiff_to_ome_zarr(folder, tmp_path / "a.ome.zarr", voxel_size=1, unit="um")
    _nothing_written(tmp_path)
    # the series alone, chosen by a pattern, converts
    tiff_to_ome_zarr(str(folder / "z[0-9].tif"), tmp_path / "a.ome.zarr", voxel_size=1, unit="um", progress=False)
    np.testing.assert_array_equal(_level(tmp_path / "a.ome.zarr")[:, 0, 0], np.arange(5))


def test_planes_without_numbers_are_refused(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("first.tif", "second.tif", "third.tif"):
        tifffile.imwrite(folder / name, np.zeros((4, 5), np.uint8))
    with pytest.raises(ConvertError, match="no plane numbers in the file names"):
        tiff_to_ome_zarr(folder, tmp_path / "a.ome.zarr", voxel_size=1, unit="um")
    _nothing_written(tmp_path)


def _ome_tiff(path: Path, volume, size=(2.0, 0.65, 0.65), unit="µm") -> Path:
    tifffile.imwrite(path, volume, metadata={
        "axes": "ZYX", "PhysicalSizeZ": size[0], "PhysicalSizeY": size[1], "PhysicalSizeX": size[2],
        "PhysicalSizeZUnit": unit, "PhysicalSizeYUnit": unit, "PhysicalSizeXUnit": unit})
    return path


def test_a_unit_alone_converts_the_files_own_voxel_size(tmp_path):
    _ome_tiff(tmp_path / "v.ome.tif", _volume(np.uint8))
    tiff_to_ome_zarr(tmp_path / "v.ome.tif", tmp_path / "a.ome.zarr", unit="nm", progress=False)
    assert _scale(tmp_path / "a.ome.zarr") == [2000.0, 650.0, 650.0]
    axes = read_ome_metadata(tmp_path / "a.ome.zarr")["multiscales"][0]["axes"]
    assert [a["unit"] for a in axes] == ["nanometer"] * 3


def test_a_unit_alone_converts_hdf5_element_size(tmp_path):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f.create_dataset("v", data=_volume(np.uint8)).attrs["element_size_um"] = (2.0, 0.65, 0.65)
    hdf5_to_ome_zarr(tmp_path / "s.h5", "v", tmp_path / "a.ome.zarr", unit="mm", progress=False)
    assert _scale(tmp_path / "a.ome.zarr") == [0.002, 0.00065, 0.00065]


def _axes_of(path: Path) -> list[tuple[str, str]]:
    return [(a["name"], a["type"]) for a in read_ome_metadata(path)["multiscales"][0]["axes"]]


@pytest.mark.parametrize("axes, kind", [("CYX", "channel"), ("TYX", "time")])
def test_imagej_channels_and_time_points_are_never_planes(tmp_path, axes, kind):
    volume = _volume(np.uint8)[:3]
    tifffile.imwrite(tmp_path / "v.tif", volume, imagej=True, resolution=(1 / 0.5, 1 / 0.5),
                     metadata={"spacing": 2.0, "unit": "micron", "axes": axes})
    tiff_to_ome_zarr(tmp_path / "v.tif", tmp_path / "a.ome.zarr", progress=False)
    assert _axes_of(tmp_path / "a.ome.zarr") == [(axes[0].lower(), kind), ("y", "space"), ("x", "space")]
    assert _scale(tmp_path / "a.ome.zarr")[1:] == [0.5, 0.5]  # no axis 2 um apart
    np.testing.assert_array_equal(_level(tmp_path / "a.ome.zarr"), volume)


def test_imagej_hyperstack_keeps_channels_beside_z(tmp_path):
    # ImageJ stores T, Z, C in that order; OME-Zarr wants c before z
    volume = np.random.default_rng(2).integers(0, 255, size=(4, 2, 6, 7), dtype=np.uint8)  # z, c, y, x
    tifffile.imwrite(tmp_path / "v.tif", volume, imagej=True, resolution=(1 / 0.5, 1 / 0.5),
                     metadata={"spacing": 2.0, "unit": "micron", "axes": "ZCYX"})
    tiff_to_ome_zarr(tmp_path / "v.tif", tmp_path / "a.ome.zarr", progress=False)
    assert [name for name, _ in _axes_of(tmp_path / "a.ome.zarr")] == ["c", "z", "y", "x"]
    np.testing.assert_array_equal(_level(tmp_path / "a.ome.zarr"), volume.transpose(1, 0, 2, 3))
    assert _scale(tmp_path / "a.ome.zarr") == [1.0, 2.0, 0.5, 0.5]


def _two_series(path: Path) -> Path:
    with tifffile.TiffWriter(path, ome=True) as tw:
        tw.write(np.zeros((3, 4, 5), np.uint8), metadata={"axes": "ZYX", "Name": "overview", "PhysicalSizeZ": 4.0,
                                                           "PhysicalSizeY": 2.0, "PhysicalSizeX": 2.0})
        tw.write(np.arange(2 * 6 * 5, dtype=np.uint16).reshape(2, 6, 5),
                 metadata={"axes": "ZYX", "Name": "detail", "PhysicalSizeZ": 1.0, "PhysicalSizeY": 0.5,
                           "PhysicalSizeX": 0.25})
    return path


def test_a_multi_series_file_needs_series_and_lists_them(tmp_path):
    source = _two_series(tmp_path / "two.ome.tif")
    with pytest.raises(ConvertError) as info:
        tiff_to_ome_zarr(source, tmp_path / "a.ome.zarr")
    message = str(info.value)
    assert "2 series" in message and "series=INDEX" in message and "--series" in message
    assert "0: shape (3, 4, 5)" in message and "'overview'" in message
    assert "1: shape (2, 6, 5)" in message and "'detail'" in message
    _nothing_written(tmp_path)
    tiff_to_ome_zarr(source, tmp_path / "a.ome.zarr", series=1, progress=False)
    np.testing.assert_array_equal(_level(tmp_path / "a.ome.zarr"), np.arange(60, dtype=np.uint16).reshape(2, 6, 5))
    assert _scale(tmp_path / "a.ome.zarr") == [1.0, 0.5, 0.25]  # the metadata of series 1, not of series 0
    with pytest.raises(ConvertError, match="holds 2 series"):
        tiff_to_ome_zarr(source, tmp_path / "b.ome.zarr", series=2)


def test_hdf5_reads_stay_within_the_slab_budget_whatever_the_chunking(tmp_path, monkeypatch):
    h5py = pytest.importorskip("h5py")
    import data_helpers.convert as convert

    budget = 4096
    monkeypatch.setattr(convert, "_SLAB_BYTES", budget)
    volume = np.random.default_rng(3).integers(0, 255, size=(16, 32, 32), dtype=np.uint8)  # 1 KiB planes
    requested: list[int] = []
    original = h5py.Dataset.__getitem__

    def counting(self, key):
        out = original(self, key)
        requested.append(np.asarray(out).nbytes)
        return out

    monkeypatch.setattr(h5py.Dataset, "__getitem__", counting)
    # chunks 16 deep: 16 KiB a chunk depth of whole planes; a chunk of 16 x 32 x 32 is 16 KiB on its own
    for n, chunks in enumerate([(16, 8, 32), (16, 32, 32), (16, 4, 4), None]):
        with h5py.File(tmp_path / f"s{n}.h5", "w") as f:
            f.create_dataset("v", data=volume, chunks=chunks, compression="gzip" if chunks else None)
        requested.clear()
        hdf5_to_ome_zarr(tmp_path / f"s{n}.h5", "v", tmp_path / f"a{n}.ome.zarr", voxel_size=1, unit="um",
                         chunks=8, progress=False)
        assert requested and max(requested) <= budget, (chunks, max(requested))
        np.testing.assert_array_equal(_level(tmp_path / f"a{n}.ome.zarr"), volume)


def test_hdf5_blocks_are_whole_chunks_when_they_fit():
    from data_helpers.convert import _h5_block

    assert _h5_block((16, 32, 32), 1, (16, 8, 32), 4096) == (16, 8, 32)  # one chunk depth, whole chunk rows
    assert _h5_block((16, 32, 32), 1, (2, 32, 32), 4096) == (4, 32, 32)  # two chunk depths of whole planes
    assert _h5_block((16, 32, 32), 1, (16, 32, 32), 4096) == (4, 32, 32)  # a chunk over the budget: cut it
    assert _h5_block((2048, 2048, 2048), 2, (256, 2048, 2048), 64 * 2**20) == (8, 2048, 2048)


# -- issue 31: clear errors instead of tracebacks ---------------------------------------------------------------


@pytest.mark.parametrize("value, match", [(2.0, "one number per axis"), ((1.0, 2.0), "one number per axis"),
                                          ((1.0, 0.0, 1.0), "finite positive")])
def test_hdf5_bad_element_size_is_a_clear_error(tmp_path, value, match):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f.create_dataset("v", data=_volume(np.uint8)).attrs["element_size_um"] = value
    with pytest.raises(ConvertError, match=f"element_size_um.*{match}.*voxel_size="):
        hdf5_to_ome_zarr(tmp_path / "s.h5", "v", tmp_path / "a.ome.zarr", progress=False)
    _nothing_written(tmp_path)
    # an explicit voxel size does not need the attribute
    hdf5_to_ome_zarr(tmp_path / "s.h5", "v", tmp_path / "a.ome.zarr", voxel_size=1, unit="um", progress=False)


def test_hdf5_broken_links_are_named(tmp_path):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f.create_dataset("v", data=_volume(np.uint8))
        f["soft"] = h5py.SoftLink("/nowhere")
        f["ext"] = h5py.ExternalLink(str(tmp_path / "missing.h5"), "/v")
        f["grp"] = h5py.SoftLink("/gone")
    with pytest.raises(ConvertError, match="/soft .*a soft link to '/nowhere'.*broken link.*/v"):
        hdf5_to_ome_zarr(tmp_path / "s.h5", "soft", tmp_path / "a.ome.zarr", voxel_size=1, unit="um")
    with pytest.raises(ConvertError, match="/ext .*an external link to '/v' in the file .*missing.h5"):
        hdf5_to_ome_zarr(tmp_path / "s.h5", "/ext", tmp_path / "a.ome.zarr", voxel_size=1, unit="um")
    with pytest.raises(ConvertError, match="/grp .*a soft link to '/gone'"):
        hdf5_to_ome_zarr(tmp_path / "s.h5", "grp/data", tmp_path / "a.ome.zarr", voxel_size=1, unit="um")
    _nothing_written(tmp_path)


@pytest.mark.parametrize("region, coordinates, match", [
    ((slice(0, float("inf")), slice(None), slice(None)), "voxel", "whole numbers"),
    ((slice(0, 1e400), slice(None), slice(None)), "voxel", "whole numbers"),
    ((slice(0.5, 3), slice(None), slice(None)), "voxel", "whole numbers"),
    ((slice(0.0, 3.0), slice(None), slice(None)), "voxel", "whole numbers"),
    (((0, float("inf")), (None, None), (None, None)), "physical", "finite numbers"),
    (((-1e400, 20.0), (None, None), (None, None)), "physical", "finite numbers"),
    (((float("nan"), 20.0), (None, None), (None, None)), "physical", "finite numbers"),
    ((12.0, (None, None), (None, None)), "physical", r"\(start, stop\) pair"),
    (((20.0, 12.0), (None, None), (None, None)), "physical", "greater than the start"),
    (5, "voxel", "one entry per axis"),
])
def test_export_bad_region_numbers_are_clear_errors(tmp_path, image, region, coordinates, match):
    path, _ = image
    with pytest.raises(ConvertError, match=match):
        ome_zarr_to_tiff(path, tmp_path / "r", region=region, coordinates=coordinates)
    assert not (tmp_path / "r").exists()


def test_export_huge_finite_physical_bounds_clip_to_the_image(tmp_path, image):
    path, volume = image
    # 1e308 / 0.25 (the x scale) overflows to infinity on the way to a voxel index
    out = ome_zarr_to_tiff(path, tmp_path / "r", region=((-1e308, 1e308), (None, None), (-1e308, 1e308)),
                           coordinates="physical")
    assert out.shape == volume.shape


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_a_truncated_plane_file_is_named(tmp_path, compression):
    folder = tmp_path / "in"
    folder.mkdir()
    volume = _volume(np.uint16)
    for z, plane in enumerate(volume):
        tifffile.imwrite(folder / f"z{z}.tif", plane, compression=compression)
    data = (folder / "z3.tif").read_bytes()
    (folder / "z3.tif").write_bytes(data[:len(data) - 64])  # an interrupted copy
    with pytest.raises(ConvertError, match="z3.tif is truncated"):
        tiff_to_ome_zarr(folder, tmp_path / "a.ome.zarr", voxel_size=1, unit="um", progress=False)
    _nothing_written(tmp_path)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, a folder nobody may write to")
def test_a_target_in_a_read_only_system_folder_is_refused_before_reading(tmp_path):
    h5py = pytest.importorskip("h5py")
    _planes(tmp_path / "in", _volume(np.uint8))
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f.create_dataset("v", data=_volume(np.uint8))
    for target in ("/proc/scan.ome.zarr", "/proc/new/folder/scan.ome.zarr"):
        with pytest.raises(NotWritableError, match="cannot create scan.ome.zarr in /proc "):
            tiff_to_ome_zarr(tmp_path / "in", target, voxel_size=1, unit="um")
        with pytest.raises(NotWritableError, match="cannot create scan.ome.zarr in /proc "):
            hdf5_to_ome_zarr(tmp_path / "s.h5", "v", target, voxel_size=1, unit="um")
    (tmp_path / "afile").write_text("in the way")
    with pytest.raises(ConvertError, match="afile is a file, not a folder"):
        tiff_to_ome_zarr(tmp_path / "in", tmp_path / "afile" / "a.ome.zarr", voxel_size=1, unit="um")
    assert (tmp_path / "afile").read_text() == "in the way"
    # missing folders on the way are made, as write_ome_zarr makes them
    tiff_to_ome_zarr(tmp_path / "in", tmp_path / "new" / "a.ome.zarr", voxel_size=1, unit="um", progress=False)
    assert (tmp_path / "new" / "a.ome.zarr" / "0").is_dir()


@pytest.mark.parametrize("kind", ["imagej", "ome"])
def test_the_files_time_interval_is_kept(tmp_path, kind):
    volume = _volume(np.uint8)[:3]
    if kind == "imagej":
        tifffile.imwrite(tmp_path / "v.tif", volume, imagej=True, resolution=(2.0, 2.0),
                         metadata={"axes": "TYX", "finterval": 0.5, "unit": "micron"})
    else:
        tifffile.imwrite(tmp_path / "v.tif", volume, ome=True, photometric="minisblack", metadata={
            "axes": "TYX", "TimeIncrement": 500.0, "TimeIncrementUnit": "ms",
            "PhysicalSizeY": 0.5, "PhysicalSizeX": 0.5})
    tiff_to_ome_zarr(tmp_path / "v.tif", tmp_path / "a.ome.zarr", progress=False)
    axes = read_ome_metadata(tmp_path / "a.ome.zarr")["multiscales"][0]["axes"]
    step = _scale(tmp_path / "a.ome.zarr")[0]
    assert axes[0]["name"] == "t" and (step, axes[0]["unit"]) in ((0.5, "second"), (500.0, "millisecond"))
    tiff_to_ome_zarr(tmp_path / "v.tif", tmp_path / "b.ome.zarr", time_unit="ms", progress=False)
    assert _scale(tmp_path / "b.ome.zarr")[0] == 500.0


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_a_plane_cut_short_during_the_conversion_is_named(tmp_path, compression):
    import data_helpers.convert as convert

    folder = tmp_path / "in"
    folder.mkdir()
    for z, plane in enumerate(_volume(np.uint16)):
        tifffile.imwrite(folder / f"z{z}.tif", plane, compression=compression)
    source = convert._open_plane_folder(folder)  # checked while whole
    data = (folder / "z3.tif").read_bytes()
    (folder / "z3.tif").write_bytes(data[:len(data) - 64])
    with pytest.raises(ConvertError, match="z3.tif could not be read as plane 3"):
        source.data.compute()
