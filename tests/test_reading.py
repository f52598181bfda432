"""open_ome_zarr: one level of a local or remote OME-Zarr image, lazily, with its physical metadata."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from data_helpers import LocalServer, OmeZarrError, open_ome_zarr, write_ome_zarr
from data_helpers.reading import level_transform, multiscale_axes


@pytest.fixture(scope="module")
def volume():
    rng = np.random.default_rng(3)
    return rng.integers(0, 4000, size=(40, 64, 48), dtype=np.uint16)


@pytest.mark.parametrize("version", ["0.4", "0.5", "0.6"])
def test_every_version_opens_with_its_scale_and_units(tmp_path, volume, version):
    path = tmp_path / "img.ome.zarr"
    write_ome_zarr(volume, path, voxel_size=(4.0, 1.0, 1.0), unit="um", chunks=16, version=version)
    full = open_ome_zarr(path)
    assert full.version == version
    assert full.axes == ("z", "y", "x")
    assert full.units == ("micrometer",) * 3
    assert full.scale == (4.0, 1.0, 1.0)
    assert full.translation == (0.0, 0.0, 0.0)
    np.testing.assert_array_equal(full.data.compute(), volume)
    coarsest = open_ome_zarr(path, level=-1)
    assert coarsest.level == full.n_levels - 1 > 0
    # the coarser level's voxels are bigger, and its first voxel's centre moved by half of the growth
    assert all(c >= f for c, f in zip(coarsest.scale, full.scale))
    assert coarsest.scale != full.scale
    for c, f, t in zip(coarsest.scale, full.scale, coarsest.translation):
        assert t == pytest.approx((c - f) / 2)
    assert coarsest.extent[2] == pytest.approx(coarsest.shape[2] * coarsest.scale[2])


def test_dask_chunks_are_the_storage_chunks(tmp_path, volume):
    path = tmp_path / "img.ome.zarr"
    write_ome_zarr(volume, path, voxel_size=1.0, unit="um", chunks=(8, 32, 16))
    level = open_ome_zarr(path)
    assert level.data.chunksize == (8, 32, 16)


def test_a_sharded_array_is_read_a_shard_per_task(tmp_path, volume):
    root = zarr.open_group(tmp_path / "sharded.ome.zarr", mode="w", zarr_format=3)
    arr = root.create_array("0", shape=volume.shape, dtype=volume.dtype, chunks=(8, 16, 16), shards=(40, 32, 48))
    arr[:] = volume
    root.attrs["ome"] = {"version": "0.5", "multiscales": [{
        "axes": [{"name": n, "type": "space", "unit": "micrometer"} for n in "zyx"],
        "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 1, 1]}]}]}]}
    level = open_ome_zarr(tmp_path / "sharded.ome.zarr")
    assert level.data.chunksize == (40, 32, 48)
    np.testing.assert_array_equal(level.data[5:9, 10:20].compute(), volume[5:9, 10:20])


def test_over_http_only_the_chunks_of_a_slice_are_requested(tmp_path, volume):
    path = tmp_path / "img.ome.zarr"
    write_ome_zarr(volume, path, voxel_size=(2.0, 1.0, 1.0), unit="um", chunks=16)
    with LocalServer(tmp_path) as server:
        level = open_ome_zarr(f"{server.url}/img.ome.zarr", level=0)
        assert level.scale == (2.0, 1.0, 1.0)
        server.clear_requests()
        plane = level.data[20].compute()
        chunk_requests = [path for _, path, _ in server.requests if "/0/c/" in path]
    np.testing.assert_array_equal(plane, volume[20])
    # one z-plane crosses one chunk layer: (64 / 16) x (48 / 16) chunks
    assert len(chunk_requests) == 4 * 3


def test_a_level_that_does_not_exist_names_the_range(tmp_path, volume):
    path = tmp_path / "img.ome.zarr"
    image = write_ome_zarr(volume, path, voxel_size=1.0, unit="um", chunks=16)
    n = image.n_levels
    with pytest.raises(ValueError, match=f"0 to {n - 1}"):
        open_ome_zarr(path, level=n)
    with pytest.raises(ValueError, match="level=True"):
        open_ome_zarr(path, level=True)


def test_not_an_image_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no Zarr metadata"):
        open_ome_zarr(tmp_path)
    zarr.open_group(tmp_path / "plain.zarr", mode="w", zarr_format=3)
    with pytest.raises(OmeZarrError, match="multiscales"):
        open_ome_zarr(tmp_path / "plain.zarr")
    with pytest.raises(TypeError, match="folder path or a URL"):
        open_ome_zarr(42)


def test_metadata_helpers_read_0_6_sequences_and_coordinate_systems():
    multiscale = {"coordinateSystems": [{"name": "physical", "axes": [{"name": "y", "unit": "nanometer"},
                                                                      {"name": "x", "unit": "nanometer"}]}]}
    assert [a["name"] for a in multiscale_axes(multiscale)] == ["y", "x"]
    dataset = {"coordinateTransformations": [{"type": "sequence", "transformations": [
        {"type": "scale", "scale": [2, 2]}, {"type": "translation", "translation": [0.5, 0.5]}]}]}
    assert level_transform(dataset, 2) == ((2.0, 2.0), (0.5, 0.5))


# -- s3://, from a loopback S3 server -------------------------------------------------------------------


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory, volume):
    folder = tmp_path_factory.mktemp("s3src") / "img.ome.zarr"
    write_ome_zarr(volume, folder, voxel_size=(2.0, 1.0, 1.0), unit="um", chunks=16)
    return folder


def test_over_s3_with_keys_only_the_chunks_of_a_slice_are_requested(image_folder, volume):
    from data_helpers.s3server import LocalS3Server

    with LocalS3Server("images") as s3:
        url = s3.upload(image_folder, "img.ome.zarr")
        level = open_ome_zarr(url, storage_options=s3.storage_options())
        assert level.scale == (2.0, 1.0, 1.0) and level.location == f"{url}/0"
        s3.clear_requests()
        plane = level.data[20].compute()
        chunk_gets = [p for m, p, _ in s3.requests if m == "GET" and "/0/c/" in p]
    np.testing.assert_array_equal(plane, volume[20])
    assert len(chunk_gets) == 4 * 3 == len(set(chunk_gets))


def test_over_s3_anonymous_reads_need_a_public_bucket(image_folder, volume):
    from data_helpers.s3server import LocalS3Server

    with LocalS3Server("private") as s3:
        url = s3.upload(image_folder, "img.ome.zarr")
        with pytest.raises((PermissionError, FileNotFoundError, OmeZarrError)):
            open_ome_zarr(url, storage_options=s3.storage_options(anon=True)).data.compute()
    with LocalS3Server("public", public_read=True) as s3:
        url = s3.upload(image_folder, "img.ome.zarr")
        level = open_ome_zarr(url, level=-1, storage_options=s3.storage_options(anon=True))
        assert level.level == level.n_levels - 1 > 0
        assert level.data.compute().shape == level.shape


# -- an image whose files vanish while it is open, and dataset paths that leave the image ------------


@pytest.mark.parametrize("version", ["0.4", "0.5"])
@pytest.mark.parametrize("what", ["level folder", "level metadata", "whole image"])
def test_a_level_deleted_after_opening_raises_instead_of_reading_zeros(tmp_path, volume, version, what):
    import shutil

    from data_helpers.storeaccess import StoreAccessError

    path = tmp_path / "img.ome.zarr"
    write_ome_zarr(volume + 1, path, voxel_size=1.0, unit="um", chunks=16, version=version)
    level = open_ome_zarr(path)
    lazy = level.data.sum()
    metadata = path / "0" / ("zarr.json" if version == "0.5" else ".zarray")
    if what == "level folder":
        shutil.rmtree(path / "0")
    elif what == "level metadata":
        metadata.unlink()
    else:
        shutil.rmtree(path)
    with pytest.raises(StoreAccessError, match="level 0 of the image .*img.ome.zarr is gone") as caught:
        lazy.compute()
    message = str(caught.value)
    assert "open_ome_zarr" in message and "run the cell that writes" in message.lower()


def test_the_vanished_level_message_shows_a_relative_path(tmp_path, volume, monkeypatch):
    import shutil

    from data_helpers.storeaccess import StoreAccessError

    monkeypatch.chdir(tmp_path)
    write_ome_zarr(volume, tmp_path / "img.ome.zarr", voxel_size=1.0, unit="um", chunks=16)
    level = open_ome_zarr(tmp_path / "img.ome.zarr")
    shutil.rmtree(tmp_path / "img.ome.zarr")
    with pytest.raises(StoreAccessError) as caught:
        level.data[0].compute()
    assert str(tmp_path) not in str(caught.value)
    with pytest.raises(FileNotFoundError, match="no Zarr metadata") as missing:
        open_ome_zarr(tmp_path / "img.ome.zarr")
    assert str(tmp_path) not in str(missing.value) and "img.ome.zarr" in str(missing.value)


def test_a_level_listed_but_missing_at_opening_is_named(tmp_path, volume):
    import shutil

    from data_helpers.storeaccess import StoreAccessError

    path = tmp_path / "img.ome.zarr"
    write_ome_zarr(volume, path, voxel_size=1.0, unit="um", chunks=16)
    shutil.rmtree(path / "1")
    with pytest.raises(StoreAccessError, match="lists level 1 at '1'"):
        open_ome_zarr(path, level=1)
    np.testing.assert_array_equal(open_ome_zarr(path).data.compute(), volume)


@pytest.mark.parametrize("bad", ["../other.ome.zarr/0", "0/../../x", "/etc", "C:/data/0", "\\\\host\\share", "", None])
def test_dataset_paths_that_leave_the_image_are_refused(tmp_path, volume, bad):
    path = tmp_path / "img.ome.zarr"
    write_ome_zarr(volume, path, voxel_size=1.0, unit="um", chunks=16, version="0.5")
    write_ome_zarr(volume * 0, tmp_path / "other.ome.zarr", voxel_size=1.0, unit="um", chunks=16, version="0.5")
    group = zarr.open_group(path, mode="r+")
    ome = dict(group.attrs["ome"])
    ome["multiscales"][0]["datasets"][0]["path"] = bad
    group.attrs["ome"] = ome
    with pytest.raises(OmeZarrError, match="dataset path"):
        open_ome_zarr(path)
