"""ome_zarr_to_tiff under the safety rules of data_helpers.safety: what it may replace, how it commits, leftovers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import tifffile

from data_helpers import ConvertError, ome_zarr_to_tiff, write_ome_zarr
from data_helpers.safety import NotWritableError

SHAPE = (7, 20, 24)


@pytest.fixture
def image(tmp_path) -> tuple[Path, np.ndarray]:
    volume = np.random.default_rng(3).integers(0, 60000, size=SHAPE, dtype=np.uint16)
    path = tmp_path / "img.ome.zarr"
    write_ome_zarr(volume, path, voxel_size=(2.0, 0.5, 0.25), unit="um", chunks=8)
    return path, volume


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# -- case 1: the manifest names only plain entries of the export --------------------------------------------


@pytest.mark.parametrize("where", ["parent", "absolute"])
def test_overwrite_never_deletes_a_file_the_manifest_names_outside_the_export(tmp_path, image, where):
    path, _ = image
    target = tmp_path / "out"
    ome_zarr_to_tiff(path, target)
    thesis = tmp_path / "thesis.tex"
    thesis.write_text("three years of work")
    manifest = target / ".made-by-data_helpers-export.json"
    record = json.loads(manifest.read_text())
    st = thesis.stat()
    name = "../thesis.tex" if where == "parent" else str(thesis)
    record["files"][name] = [st.st_size, st.st_mtime_ns]  # a forged entry with the file's true identity
    manifest.write_text(json.dumps(record))
    with pytest.raises(FileExistsError, match="not a plain name"):
        ome_zarr_to_tiff(path, target, overwrite=True)
    assert thesis.read_text() == "three years of work"
    assert len(list(target.glob("z*.tif"))) == SHAPE[0]  # the earlier export is left as it was


# -- case 2: the commit never replaces what it did not write ------------------------------------------------


def writer_that_then(monkeypatch, action):
    """Make tifffile.TiffWriter run ``action`` once its file is written, before the export commits it."""
    real = tifffile.TiffWriter

    class Writer(real):
        def __exit__(self, *exc):
            result = super().__exit__(*exc)
            action()
            return result

    monkeypatch.setattr(tifffile, "TiffWriter", Writer)


def test_a_file_saved_at_the_target_during_the_export_is_not_replaced(tmp_path, image, monkeypatch):
    path, _ = image
    target = tmp_path / "v.tif"
    writer_that_then(monkeypatch, lambda: target.write_bytes(b"saved meanwhile"))
    with pytest.raises(FileExistsError, match="created by someone else while this export ran"):
        ome_zarr_to_tiff(path, target, multipage=True)
    assert target.read_bytes() == b"saved meanwhile"
    assert hidden(tmp_path) == []  # no staging, lock or manifest left


def test_overwrite_replaces_only_the_file_its_manifest_identifies(tmp_path, image, monkeypatch):
    path, volume = image
    target = tmp_path / "v.tif"
    ome_zarr_to_tiff(path, target, multipage=True)
    writer_that_then(monkeypatch, lambda: target.write_bytes(b"a file of the reader's, saved meanwhile"))
    with pytest.raises(FileExistsError, match="not what this package wrote there"):
        ome_zarr_to_tiff(path, target, multipage=True, overwrite=True)
    assert target.read_bytes() == b"a file of the reader's, saved meanwhile"
    assert hidden(tmp_path) == [".v.tif.made-by-data_helpers-export.json"]
    monkeypatch.undo()
    target.unlink()  # the reader's own file is gone: the export may take the name again
    ome_zarr_to_tiff(path, target, multipage=True)
    np.testing.assert_array_equal(tifffile.imread(target), volume)


def test_overwrite_of_a_folder_export_commits_and_leaves_nothing_behind(tmp_path, image):
    path, volume = image
    target = tmp_path / "planes"
    ome_zarr_to_tiff(path, target)
    (tmp_path / "notes.txt").write_text("mine")
    ome_zarr_to_tiff(path, target, region=(slice(0, 2), slice(None), slice(None)), overwrite=True)
    assert sorted(p.name for p in target.iterdir()) == [".made-by-data_helpers-export.json", "z0000.tif", "z0001.tif"]
    assert np.array_equal(tifffile.imread(target / "z0001.tif"), volume[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.ome.zarr", "notes.txt", "planes"]


@pytest.mark.parametrize("multipage", [True, False])
def test_two_exports_to_one_new_target_one_wins(tmp_path, image, monkeypatch, multipage):
    path, _ = image
    target = tmp_path / ("v.tif" if multipage else "planes")
    barrier = threading.Barrier(2, timeout=60)
    if multipage:
        writer_that_then(monkeypatch, barrier.wait)  # both have written their file; neither has committed
    else:
        real = tifffile.imwrite
        counts = {}

        def imwrite(file, *args, **kwargs):
            real(file, *args, **kwargs)
            key = threading.get_ident()
            counts[key] = counts.get(key, 0) + 1
            if counts[key] == SHAPE[0]:
                barrier.wait()

        monkeypatch.setattr(tifffile, "imwrite", imwrite)
    results = {}

    def run(name):
        try:
            results[name] = ome_zarr_to_tiff(path, target, multipage=multipage)
        except BaseException as error:  # noqa: BLE001 - recorded and checked below
            results[name] = error

    threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    errors = [r for r in results.values() if isinstance(r, BaseException)]
    assert len(results) == 2 and len(errors) == 1, results
    assert isinstance(errors[0], FileExistsError), errors[0]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "img.ome.zarr") == sorted(
        [target.name] + ([f".{target.name}.made-by-data_helpers-export.json"] if multipage else []))


# -- cases 5 and 6: the level and the dataset paths ---------------------------------------------------------


@pytest.mark.parametrize("level", [True, False])
def test_a_bool_level_is_refused(tmp_path, image, level):
    path, _ = image
    with pytest.raises(ConvertError, match="not True or False"):
        ome_zarr_to_tiff(path, tmp_path / "out", level=level)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("how", ["parent", "absolute"])
def test_a_dataset_path_out_of_the_image_is_refused(tmp_path, image, how):
    path, _ = image
    other = tmp_path / "other.ome.zarr"
    write_ome_zarr(np.full(SHAPE, 9, np.uint16), other, voxel_size=(2.0, 0.5, 0.25), unit="um", chunks=8)
    meta = json.loads((path / "zarr.json").read_text())
    meta["attributes"]["ome"]["multiscales"][0]["datasets"][0]["path"] = (
        "../other.ome.zarr/0" if how == "parent" else str(other / "0"))
    (path / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(ConvertError, match="dataset path"):
        ome_zarr_to_tiff(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_level_that_is_a_link_out_of_the_image_is_refused(tmp_path, image):
    path, _ = image
    other = tmp_path / "other.ome.zarr"
    write_ome_zarr(np.full(SHAPE, 9, np.uint16), other, voxel_size=(2.0, 0.5, 0.25), unit="um", chunks=8)
    (path / "0").rename(tmp_path / "level0-moved")
    (path / "0").symlink_to(other / "0")
    with pytest.raises(ConvertError, match="symbolic link"):
        ome_zarr_to_tiff(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("multipage", [True, False])
def test_an_earlier_export_removed_during_the_overwrite_is_simply_replaced(tmp_path, image, monkeypatch, multipage):
    path, volume = image
    target = tmp_path / ("v.tif" if multipage else "planes")
    ome_zarr_to_tiff(path, target, multipage=multipage)

    def remove():
        if target.is_dir():
            for f in target.iterdir():
                f.unlink()
            target.rmdir()
        elif target.exists():
            target.unlink()

    if multipage:
        writer_that_then(monkeypatch, remove)
    else:
        real = tifffile.imwrite
        monkeypatch.setattr(tifffile, "imwrite", lambda *a, **k: (real(*a, **k), remove())[0])
    ome_zarr_to_tiff(path, target, multipage=multipage, overwrite=True)
    got = tifffile.imread(target) if multipage else np.stack([tifffile.imread(f) for f in sorted(target.glob("*.tif"))])
    np.testing.assert_array_equal(got, volume)


# -- case 7: a folder that cannot be written ------------------------------------------------------------------


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize("multipage", [True, False])
def test_a_target_in_a_system_folder_gets_a_clear_error(image, multipage):
    path, _ = image
    with pytest.raises(NotWritableError, match="not a folder this process may write to"):
        ome_zarr_to_tiff(path, "/proc/x.tif" if multipage else "/proc/planes", multipage=multipage)


# -- case 8: leftovers of a killed export ------------------------------------------------------------------


def leftover(folder: Path, pid: int, started: float | None) -> Path:
    staging = folder / ".killed.tif.partial-0123456789ab"
    staging.mkdir()
    tifffile.imwrite(staging / "killed.tif", np.zeros((2, 4, 4), np.uint8))
    owner = {"writer": "data_helpers", "pid": pid, "started": started, "kind": "tiff"}
    (staging / ".data_helpers-staging.json").write_text(json.dumps(owner))
    return staging


@pytest.mark.parametrize("writer", ["export", "write_ome_zarr"])
def test_a_killed_exports_staging_is_removed_by_the_next_writer_in_the_folder(tmp_path, image, writer):
    path, _ = image
    staging = leftover(tmp_path, dead_pid(), 1.0)
    with pytest.warns(RuntimeWarning, match=r"removed \.killed\.tif\.partial-0123456789ab .*no longer running"):
        if writer == "export":
            ome_zarr_to_tiff(path, tmp_path / "v.tif", multipage=True)
        else:
            write_ome_zarr(np.ones((8, 8), np.uint8), tmp_path / "new.ome.zarr", voxel_size=1)
    assert not staging.exists()


def test_the_staging_of_a_running_export_is_left_alone(tmp_path, image, recwarn):
    from data_helpers.safety import _this_process

    path, _ = image
    me = _this_process()
    staging = leftover(tmp_path, me["pid"], me["started"])
    ome_zarr_to_tiff(path, tmp_path / "v.tif", multipage=True)
    assert sorted(p.name for p in staging.iterdir()) == [".data_helpers-staging.json", "killed.tif"]
    assert not [w for w in recwarn if "no longer running" in str(w.message)]


def test_a_leftover_holding_a_file_of_someone_else_is_left_alone(tmp_path, image, recwarn):
    path, _ = image
    staging = leftover(tmp_path, dead_pid(), 1.0)
    (staging / "notes.txt").write_text("not an export's")
    ome_zarr_to_tiff(path, tmp_path / "v.tif", multipage=True)
    assert (staging / "notes.txt").read_text() == "not an export's"
    assert not [w for w in recwarn if "no longer running" in str(w.message)]
