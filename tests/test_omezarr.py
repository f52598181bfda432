"""data_helpers.omezarr: correct metadata, full pyramids, round trips and safety of existing files."""

from __future__ import annotations

import json
import os

import dask.array as da
import numpy as np
import pytest
import zarr
from ome_zarr_models import open_ome_zarr

from data_helpers import (
    OmeZarrError,
    UnitError,
    plan_pyramid,
    read_ome_metadata,
    synthetic_labels,
    synthetic_volume,
    validate_ome_zarr,
    write_ome_zarr,
)
from data_helpers.omezarr import _block_mean, _downsample_block


@pytest.fixture
def volume():
    return synthetic_volume((40, 70, 90), chunks=32).compute()


# -- round trips and validity -------------------------------------------------------------------


@pytest.mark.parametrize("version, zarr_format", [("0.4", 2), ("0.5", 3)])
@pytest.mark.parametrize("kind", ["numpy", "dask", "zarr"])
def test_round_trip_equals_input_and_validates(tmp_path, volume, version, zarr_format, kind):
    if kind == "numpy":
        data = volume
    elif kind == "dask":
        data = da.from_array(volume, chunks=(7, 50, 33))
    else:
        data = zarr.create_array(tmp_path / "in.zarr", shape=volume.shape, dtype=volume.dtype, chunks=(8, 8, 8))
        data[:] = volume
    image = write_ome_zarr(data, tmp_path / "img.ome.zarr", voxel_size=(3.0, 1.5, 1.5), unit="um", chunks=16, version=version)
    group = zarr.open_group(image.path, mode="r")
    assert group.metadata.zarr_format == zarr_format
    np.testing.assert_array_equal(group["0"][:], volume)
    report = validate_ome_zarr(image.path)
    assert report.ok, str(report)
    model = open_ome_zarr(group)
    assert type(model).__module__.startswith(f"ome_zarr_models.v0{version[-1]}")


def test_metadata_units_scales_and_translations(tmp_path, volume):
    image = write_ome_zarr(volume, tmp_path / "a.ome.zarr", voxel_size=(4.0, 1.0, 1.0), unit="µm", chunks=16,
                           translation=(10.0, 0.0, 0.0))
    meta = read_ome_metadata(image.path)
    assert meta["version"] == "0.5"
    ms = meta["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == ["z", "y", "x"]
    assert {a["unit"] for a in ms["axes"]} == {"micrometer"} and {a["type"] for a in ms["axes"]} == {"space"}
    for ds, shape, scale, tr in zip(ms["datasets"], image.shapes, image.scales, image.translations):
        assert [t["type"] for t in ds["coordinateTransformations"]] == ["scale", "translation"]
        assert ds["coordinateTransformations"][0]["scale"] == list(scale)
        assert ds["coordinateTransformations"][1]["translation"] == list(tr)
        assert zarr.open_array(image.path / ds["path"], mode="r").shape == shape
    # the centre of the first voxel of a coarser level sits half its extra size further in
    assert image.translations[0] == (10.0, 0.0, 0.0)
    assert image.translations[1] == (10.0, 0.5, 0.5) and image.scales[1] == (4.0, 2.0, 2.0)
    assert json.loads((image.path / "0" / "zarr.json").read_text())["dimension_names"] == ["z", "y", "x"]


def test_default_codec_is_blosc_zstd_with_shuffle(tmp_path, volume):
    image = write_ome_zarr(volume, tmp_path / "a.ome.zarr", voxel_size=1)
    codecs = json.loads((image.path / "0" / "zarr.json").read_text())["codecs"]
    blosc = [c for c in codecs if c["name"] == "blosc"][0]["configuration"]
    assert blosc["cname"] == "zstd" and blosc["shuffle"] == "shuffle"
    v2 = write_ome_zarr(volume, tmp_path / "b.ome.zarr", voxel_size=1, version="0.4")
    zarray = json.loads((v2.path / "0" / ".zarray").read_text())
    assert zarray["compressor"]["cname"] == "zstd" and zarray["compressor"]["shuffle"] == 1
    assert zarray["dimension_separator"] == "/"


def test_every_chunk_is_written_even_when_empty(tmp_path):
    image = write_ome_zarr(np.zeros((32, 32, 32), np.uint8), tmp_path / "z.ome.zarr", voxel_size=1, chunks=16)
    assert len(list((image.path / "0" / "c").rglob("*.*"))) == 0  # no stray files
    assert len([p for p in (image.path / "0" / "c").rglob("*") if p.is_file()]) == 8
    assert validate_ome_zarr(image.path).ok


# -- the pyramid -----------------------------------------------------------------------------------


def test_default_pyramid_goes_down_to_one_chunk(tmp_path):
    data = da.zeros((120, 120, 139), dtype=np.uint8, chunks=64)
    image = write_ome_zarr(data, tmp_path / "h.ome.zarr", voxel_size=1.27, chunks=64)
    assert image.shapes == ((120, 120, 139), (60, 60, 69), (30, 30, 34))
    assert all(n <= 64 for n in image.shapes[-1]) and any(n > 64 for n in image.shapes[-2])


def test_anisotropic_voxels_halve_z_last():
    factors = plan_pyramid((64, 2048, 2048), "zyx", (5.0, 1.0, 1.0), (64, 128, 128))
    zs = [f[0] for f in factors]
    xs = [f[2] for f in factors]
    assert zs[:3] == [1, 1, 1] and xs[:3] == [1, 2, 4]  # x, y catch up with z first
    spacing = [(5.0 * z, 1.0 * x) for z, x in zip(zs, xs)]
    assert all(zv / xv < 2 or z == 1 for (zv, xv), z in zip(spacing[3:], zs[3:]))
    assert factors[-1][2] == 16  # 2048 / 16 = 128: one chunk across


def test_channels_and_time_are_not_downsampled(tmp_path):
    data = np.random.default_rng(1).integers(0, 100, (2, 3, 16, 64, 64), dtype=np.uint16)
    image = write_ome_zarr(data, tmp_path / "tc.ome.zarr", voxel_size=(2.0, 0.5, 0.5), chunks=(1, 1, 16, 32, 32),
                           time_unit="ms", time_step=100)
    assert all(shape[:2] == (2, 3) for shape in image.shapes)
    assert image.units == ("millisecond", None, "micrometer", "micrometer", "micrometer")
    assert image.scales[0][:2] == (100.0, 1.0)
    assert validate_ome_zarr(image.path).ok


def test_2d_images(tmp_path):
    image = write_ome_zarr(np.ones((300, 200), np.float32), tmp_path / "2d.ome.zarr", voxel_size=0.1, chunks=64)
    assert image.dims == ("y", "x") and image.shapes[-1] == (37, 25)
    assert validate_ome_zarr(image.path).ok


def test_n_levels_is_respected_and_checked(tmp_path, volume):
    assert write_ome_zarr(volume, tmp_path / "n.ome.zarr", voxel_size=1, n_levels=2).n_levels == 2
    with pytest.raises(OmeZarrError, match="n_levels"):
        write_ome_zarr(volume, tmp_path / "m.ome.zarr", voxel_size=1, n_levels=0)


def test_mean_levels_are_block_means(tmp_path, volume):
    image = write_ome_zarr(volume, tmp_path / "m.ome.zarr", voxel_size=1, chunks=16)
    group = zarr.open_group(image.path, mode="r")
    expected = volume[:40, :70, :90].reshape(20, 2, 35, 2, 45, 2).astype(float).mean(axis=(1, 3, 5))
    np.testing.assert_array_equal(group["1"][:], np.floor(expected + 0.5).astype(np.uint16))


def test_labels_keep_their_values(tmp_path):
    labels = synthetic_labels((64, 64, 64), chunks=32)
    image = write_ome_zarr(labels, tmp_path / "l.ome.zarr", voxel_size=1, kind="labels", chunks=16)
    assert image.method == "mode"
    group = zarr.open_group(image.path, mode="r")
    for level in range(image.n_levels):
        assert set(np.unique(group[str(level)][:])) <= {0, 1, 2}


@pytest.mark.parametrize("method", ["mean", "nearest", "max", "mode"])
def test_methods_on_a_known_block(method):
    block = np.array([1, 1, 3, 7], np.uint8).reshape(1, 2, 2)
    out = _downsample_block(block, (1, 2, 2), method)
    assert out.item() == {"mean": 3, "nearest": 1, "max": 7, "mode": 1}[method]
    assert out.dtype == np.uint8


def test_mode_breaks_ties_towards_the_smaller_label():
    block = np.array([5, 5, 2, 2, 9, 9, 9, 1], np.uint16).reshape(2, 2, 2)
    assert _downsample_block(block, (2, 2, 2), "mode").item() == 9
    assert _downsample_block(np.array([[4, 4], [2, 2]], np.uint8), (2, 2), "mode").item() == 2


def test_block_mean_handles_floats_and_signed():
    block = np.array([-3, -2, 5, 6], np.int16).reshape(2, 2)
    assert _block_mean(block, (2, 2)).item() == 2  # 6 / 4 = 1.5 rounds half up to 2
    assert _block_mean(block.astype(np.float32), (2, 2)).item() == pytest.approx(1.5)


# -- input checks ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(dims=("z", "y")), OmeZarrError, "names 2 axes but the array has 3"),
        (dict(dims=("x", "y", "z")), OmeZarrError, r"order t, c, z, y, x.*transpose\(2, 1, 0\)"),
        (dict(dims=("z", "y", "q")), OmeZarrError, "unknown axis names"),
        (dict(dims=("y", "y", "x")), OmeZarrError, "repeats"),
        (dict(unit="micrometr"), UnitError, "did you mean 'micrometer'"),
        (dict(unit="furlong"), UnitError, "not a space unit"),
        (dict(voxel_size=(1.0, 1.0)), OmeZarrError, "3 space axes"),
        (dict(voxel_size=-1), OmeZarrError, "positive"),
        (dict(version="0.7"), OmeZarrError, "'0.4'.*'0.5' or '0.6'"),
        (dict(method="median"), OmeZarrError, "method must be one of"),
        (dict(kind="labels", method="mean"), OmeZarrError, "must not be averaged"),
        (dict(kind="labels"), OmeZarrError, "integer dtype"),
        (dict(chunks=(8, 8)), OmeZarrError, "chunks"),
        (dict(clevel=12), OmeZarrError, "clevel"),
        (dict(clevel=True), OmeZarrError, "clevel"),
        (dict(chunks=True), OmeZarrError, "whole number"),
        (dict(chunks=2.9), OmeZarrError, "whole number"),
        (dict(chunks=(8, 8, 2.9)), OmeZarrError, "whole number"),
        (dict(chunks=(8, 8, True)), OmeZarrError, "whole number"),
        (dict(chunks="8"), OmeZarrError, "whole number"),
        (dict(n_levels=True), OmeZarrError, "n_levels"),
        (dict(n_levels=2.0), OmeZarrError, "n_levels"),
        (dict(voxel_size=True), OmeZarrError, "voxel_size must be a number"),
        (dict(voxel_size=float("nan")), OmeZarrError, "voxel_size must be finite"),
        (dict(voxel_size=(1.0, float("inf"), 1.0)), OmeZarrError, "voxel_size must be finite"),
        (dict(translation=float("nan")), OmeZarrError, "translation must be finite"),
        (dict(translation=(0.0, float("-inf"), 0.0)), OmeZarrError, "translation must be finite"),
        (dict(translation="0"), OmeZarrError, "translation must be a number"),
        (dict(time_step=float("nan")), OmeZarrError, "time_step must be a positive, finite"),
        (dict(time_step=float("inf")), OmeZarrError, "time_step must be a positive, finite"),
        (dict(time_step=0), OmeZarrError, "time_step must be a positive, finite"),
        (dict(time_step=-1.0), OmeZarrError, "time_step must be a positive, finite"),
        (dict(time_step=True), OmeZarrError, "time_step must be a positive, finite"),
        (dict(voxel_size=1e308, n_levels=2), OmeZarrError, "overflow to infinity"),
        (dict(overwrite="yes"), OmeZarrError, "overwrite must be True or False"),
    ],
)
def test_bad_arguments_are_refused_before_writing(tmp_path, kwargs, error, message):
    target = tmp_path / "bad.ome.zarr"
    args = {"voxel_size": 1.0, **kwargs}
    with pytest.raises(error, match=message):
        write_ome_zarr(np.zeros((8, 8, 8), np.float32), target, **args)
    assert not target.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("data", [np.zeros((4,)), np.zeros((2,) * 6), np.zeros((0, 4, 4)), "not an array", np.array(["a", "b"])])
def test_unsupported_arrays_are_refused(tmp_path, data):
    with pytest.raises(OmeZarrError):
        write_ome_zarr(data, tmp_path / "x.ome.zarr", voxel_size=1)


# -- safety of what is already there ----------------------------------------------------------------


def test_refuses_a_folder_of_other_files_and_keeps_them(tmp_path, volume):
    target = tmp_path / "results"
    target.mkdir()
    (target / "notes.txt").write_text("my notes")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match="not an OME-Zarr image written by data_helpers"):
            write_ome_zarr(volume, target, voxel_size=1, overwrite=overwrite)
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    assert (target / "notes.txt").read_text() == "my notes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]  # no staging folder left


def test_refuses_an_image_it_did_not_write(tmp_path, volume):
    import ngff_zarr

    target = tmp_path / "other.ome.zarr"
    image = ngff_zarr.to_ngff_image(volume, dims=("z", "y", "x"))
    ngff_zarr.to_ngff_zarr(target, ngff_zarr.to_multiscales(image, scale_factors=[2]), version="0.5")
    before = sorted(p.relative_to(target) for p in target.rglob("*"))
    with pytest.raises(FileExistsError, match="not an OME-Zarr image written by data_helpers"):
        write_ome_zarr(volume, target, voxel_size=1, overwrite=True)
    assert sorted(p.relative_to(target) for p in target.rglob("*")) == before


def test_existing_image_needs_overwrite_and_then_keeps_other_files(tmp_path, volume):
    target = tmp_path / "img.ome.zarr"
    write_ome_zarr(volume, target, voxel_size=1, chunks=16)
    (target / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_ome_zarr(volume, target, voxel_size=1)
    smaller = volume[:16, :16, :16]
    image = write_ome_zarr(smaller, target, voxel_size=2, chunks=16, overwrite=True)
    assert image.n_levels == 1
    assert (target / "notes.txt").read_text() == "keep me"
    assert not (target / "1").exists() and not (target / "2").exists()  # old levels gone
    np.testing.assert_array_equal(zarr.open_array(target / "0", mode="r")[:], smaller)
    assert validate_ome_zarr(target).ok
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.ome.zarr"]


def test_empty_folder_is_fine(tmp_path, volume):
    target = tmp_path / "empty"
    target.mkdir()
    write_ome_zarr(volume, target, voxel_size=1)
    assert validate_ome_zarr(target).ok


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    def boom(block):
        raise RuntimeError("the scanner file is corrupt")

    data = da.zeros((64, 64, 64), dtype=np.uint16, chunks=32).map_blocks(boom, dtype=np.uint16)
    with pytest.raises(RuntimeError, match="corrupt"):
        write_ome_zarr(data, tmp_path / "fail.ome.zarr", voxel_size=1, chunks=32)
    assert list(tmp_path.iterdir()) == []


def test_target_that_is_a_file_is_refused(tmp_path, volume):
    target = tmp_path / "file.ome.zarr"
    target.write_text("x")
    with pytest.raises(FileExistsError, match="is a file"):
        write_ome_zarr(volume, target, voxel_size=1)
    assert target.read_text() == "x"


def test_progress_bar_is_shown_when_asked(tmp_path, volume, capsys):
    write_ome_zarr(volume, tmp_path / "p.ome.zarr", voxel_size=1, chunks=16, progress=True)
    out = capsys.readouterr()
    assert "levels 0 and 1" in out.out + out.err


def test_read_ome_metadata_refuses_non_images(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_ome_metadata(tmp_path)
    zarr.create_group(tmp_path / "g.zarr")
    with pytest.raises(OmeZarrError, match="without OME-Zarr"):
        read_ome_metadata(tmp_path / "g.zarr")


@pytest.mark.parametrize(
    "args",
    [((10, 10), "zyx", (1.0, 1.0, 1.0), (8, 8, 8)), ((10, 10, 10), "zyx", (1.0, 1.0), (8, 8, 8)),
     ((10, 10, 10), "zyx", (1.0, 1.0, 1.0), (8, 8)), ((10, 10, 10), "zyx", (1.0, -1.0, 1.0), (8, 8, 8))],
)
def test_plan_pyramid_checks_its_input(args):
    with pytest.raises(OmeZarrError):
        plan_pyramid(*args)


def test_plan_pyramid_with_too_many_levels_asked():
    with pytest.raises(OmeZarrError, match="allows only"):
        plan_pyramid((4, 4), "yx", (1.0, 1.0), (2, 2), n_levels=5)


def test_thin_input_chunks_are_staged_and_the_copy_removed(tmp_path, monkeypatch):
    """Plane-chunked input (a TIFF stack) would need whole planes for every block; it is copied into better chunks first."""
    from data_helpers import omezarr

    monkeypatch.setattr(omezarr, "_STAGING_BUDGET", 64 * 2**10)
    volume = synthetic_volume((64, 96, 128), chunks=64).compute()
    planes = zarr.create_array(tmp_path / "planes.zarr", shape=volume.shape, dtype=volume.dtype, chunks=(1, 96, 128))
    planes[:] = volume
    staged = []
    real = omezarr._staging_chunks
    monkeypatch.setattr(omezarr, "_staging_chunks", lambda *a: staged.append(real(*a)) or staged[-1])
    image = write_ome_zarr(planes, tmp_path / "img.ome.zarr", voxel_size=1, chunks=16)
    assert staged and staged[0] is not None and staged[0][0] < 32  # thin along z, as the input
    np.testing.assert_array_equal(zarr.open_array(image.path / "0", mode="r")[:], volume)
    assert validate_ome_zarr(image.path).ok
    assert not (image.path / "_rechunk.zarr").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["img.ome.zarr", "planes.zarr"]


@pytest.mark.parametrize(
    "in_chunks, block, shape, expected",
    [
        ((1, 2048, 2048), (256, 256, 256), (256, 2048, 2048), (8, 256, 256)),  # planes: copied a few at a time
        ((128, 128, 128), (256, 256, 256), (1024, 1024, 1024), None),  # cubes: fine as they are
        ((256, 256, 256), (256, 256, 256), (1024, 1024, 1024), None),
    ],
)
def test_staging_chunks(in_chunks, block, shape, expected):
    from data_helpers.omezarr import _STAGING_BUDGET, _staging_chunks

    assert _staging_chunks(in_chunks, block, shape, 2, _STAGING_BUDGET) == expected


@pytest.mark.parametrize("dims, kwargs", [("tzyx", dict(time_step=float("nan"))), ("tzyx", dict(time_step=0.0)),
                                          ("tzyx", dict(translation=float("inf")))])
def test_nan_and_infinity_are_refused_for_time_series_too(tmp_path, dims, kwargs):
    with pytest.raises(OmeZarrError, match="finite"):
        write_ome_zarr(np.zeros((2, 4, 8, 8), np.uint8), tmp_path / "t.ome.zarr", voxel_size=1, dims=dims, **kwargs)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path", ["", ".", "..", "data/.."])
def test_a_path_that_names_no_folder_of_its_own_is_refused(path):
    with pytest.raises(OmeZarrError, match="does not name a folder"):
        write_ome_zarr(np.zeros((8, 8), np.uint8), path, voxel_size=1)


def test_plan_pyramid_refuses_fractional_chunks():
    with pytest.raises(OmeZarrError, match="whole numbers"):
        plan_pyramid((64, 64), "yx", (1.0, 1.0), (2.9, 8))


# -- the first two steps on their own ------------------------------------------------------------------


def _request(data, **kwargs):
    from data_helpers.omezarr import _check_arguments

    args = dict(voxel_size=1.0, unit="um", dims=None, name=None, kind="intensity", method=None, chunks=None,
                n_levels=None, version="0.5", clevel=3, translation=None, time_unit="second", time_step=1.0,
                overwrite=False, progress=None)
    args.update(kwargs)
    return _check_arguments(data, "out/heart.ome.zarr", **args)


def test_check_arguments_gives_one_value_per_axis():
    request = _request(np.zeros((2, 3, 40, 300, 300), np.uint16), voxel_size=(2.0, 0.5, 0.5), chunks=64,
                       translation=(1.0, 2.0, 3.0), time_step=0.5)
    assert request.dims == ("t", "c", "z", "y", "x")
    assert request.chunks == (1, 1, 40, 64, 64)  # clipped to the shape; t and c one at a time
    assert request.voxel == (0.5, 1.0, 2.0, 0.5, 0.5) and request.origin == (0.0, 0.0, 1.0, 2.0, 3.0)
    assert request.units == ("second", None, "micrometer", "micrometer", "micrometer")
    assert request.name == "heart" and request.method == "mean" and request.zarr_format == 3
    assert request.show_progress is False


@pytest.mark.parametrize("chunks", [(8, 16, 16), np.array([8, 16, 16]), [np.int64(8), 16, 16]])
def test_chunks_as_a_tuple_list_or_integer_array(chunks):
    assert _request(np.zeros((8, 32, 32), np.uint8), chunks=chunks).chunks == (8, 16, 16)


def test_check_arguments_does_not_touch_the_disk(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _request(np.zeros((8, 8), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_plan_levels_scales_and_translations():
    from data_helpers.omezarr import _plan_levels

    plan = _plan_levels(_request(np.zeros((40, 300, 300), np.uint16), voxel_size=(2.0, 0.5, 0.5), chunks=64,
                                 translation=(10.0, 0.0, 0.0)))
    assert plan.shapes == ((40, 300, 300), (40, 150, 150), (40, 75, 75), (20, 37, 37))
    assert plan.scales[3] == (4.0, 4.0, 4.0)
    assert plan.translations[3] == (11.0, 1.75, 1.75)  # half the extra size of a coarse voxel, further in
    assert plan.names == ("0", "1", "2", "3")


def test_a_printed_image_shows_its_path_relative_to_a_nearby_working_directory(tmp_path, monkeypatch):
    (tmp_path / "book").mkdir()
    (tmp_path / "data").mkdir()
    image = write_ome_zarr(np.zeros((8, 8), np.uint8), tmp_path / "data" / "a.ome.zarr", voxel_size=1, unit="um")
    monkeypatch.chdir(tmp_path / "book")
    text = str(image)
    assert f"image at {os.path.join(os.pardir, 'data', 'a.ome.zarr')}\n" in text
    assert str(tmp_path) not in text
