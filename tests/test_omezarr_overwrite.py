"""data_helpers.omezarr: what write_ome_zarr may delete, checked before computing, with one winner per path.

The rule under test (see ``_replaceable_entries``): an overwrite deletes only the group metadata and the
direct children named by the image's own dataset paths, and only when each is a Zarr array node holding
nothing but its metadata and chunk keys. Everything else is refused before any computation, and left as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import zarr

from data_helpers import OmeZarrError, validate_ome_zarr, write_ome_zarr
from data_helpers import omezarr, safety
from data_helpers.safety import NotWritableError
from data_helpers.omezarr import (
    _STAGING_OWNER,
    _array_node_problem,
    _check_target,
    _commit,
    _commit_order,
    _make_staging,
    _replaceable_entries,
    _swap_entries,
    _Target,
)


def snapshot(folder: Path) -> dict:
    """Every entry under ``folder`` (links not followed) with the hash of each file's bytes."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = Path(root) / name
            rel = str(p.relative_to(folder))
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            elif p.is_file():
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                out[rel] = "dir"
    return out


def exploding(shape=(32, 32, 32), chunks=16, dtype=np.uint16):
    """A dask array whose computation fails loudly: an error raised before computing never reaches it."""

    def boom(block):
        raise RuntimeError("the pyramid was computed")

    return da.zeros(shape, dtype=dtype, chunks=chunks).map_blocks(boom, dtype=dtype)


@pytest.fixture
def volume():
    return np.random.default_rng(3).integers(0, 1000, (32, 32, 32), dtype=np.uint16)


@pytest.fixture
def image(tmp_path, volume):
    """An image written by write_ome_zarr (3 levels, Zarr v3), next to a folder of someone else's work."""
    victim = tmp_path / "another-project"
    victim.mkdir()
    (victim / "results.csv").write_text("a,b\n1,2\n")
    write_ome_zarr(volume, tmp_path / "img.ome.zarr", voxel_size=1, chunks=8, n_levels=3)
    return tmp_path / "img.ome.zarr"


def edit_attrs(image: Path, edit) -> None:
    """Apply edit(attributes) to the image's group metadata, as a user or a copied marker might."""
    meta = image / "zarr.json"
    doc = json.loads(meta.read_text())
    edit(doc["attributes"])
    meta.write_text(json.dumps(doc))


def set_paths(attrs: dict, paths: list, marker_levels: list | None = None) -> None:
    datasets = attrs["ome"]["multiscales"][0]["datasets"]
    for ds, p in zip(datasets, paths):
        ds["path"] = p
    attrs["data_helpers"]["levels"] = marker_levels if marker_levels is not None else paths


def assert_refused_untouched(tmp_path, image, match):
    before = snapshot(tmp_path)
    with pytest.raises(FileExistsError, match=match):
        write_ome_zarr(exploding(), image, voxel_size=1, chunks=16, overwrite=True)
    assert snapshot(tmp_path) == before  # nothing deleted, moved or added (no staging, no lock, no .old-*)


# -- forged or copied markers: refused before computing, nothing touched ------------------------------


@pytest.mark.parametrize(
    "edit, match",
    [
        # the marker alone names something outside the image
        (lambda a: a["data_helpers"].update(levels=["0", "1", "2", "../another-project"]), r"'\.\./another-project'"),
        (lambda a: a["data_helpers"].update(levels=["0", "1", "2", "/etc"]), r"'/etc'"),
        (lambda a: a["data_helpers"].update(levels=["0", "1", "2", "."]), r"odd: '\.'"),
        # metadata and marker agree on a path that is not a plain child name
        (lambda a: set_paths(a, ["0", "1", "../another-project"]), r"dataset path '\.\./another-project'"),
        (lambda a: set_paths(a, ["0", "1", "."]), r"dataset path '\.'"),
        (lambda a: set_paths(a, ["0", "1", "sub/dir"]), r"dataset path 'sub/dir'"),
        (lambda a: set_paths(a, ["0", "1", ".."]), r"dataset path '\.\.'"),
        # the marker is not the record this package writes
        (lambda a: a.update(data_helpers=["0", "1", "2"]), r"attribute 'data_helpers' is list"),
        (lambda a: a.update(data_helpers="0"), r"attribute 'data_helpers' is str"),
        (lambda a: a["data_helpers"].update(levels="0"), r"marker names the levels"),
        (lambda a: a["data_helpers"].update(levels=[0, 1, 2]), r"marker names the levels"),
        (lambda a: a["ome"]["multiscales"].append(a["ome"]["multiscales"][0]), "exactly one multiscale"),
    ],
)
def test_forged_markers_are_refused_and_nothing_is_touched(tmp_path, image, edit, match):
    edit_attrs(image, edit)
    assert_refused_untouched(tmp_path, image, match)


def test_an_absolute_dataset_path_is_refused(tmp_path, image):
    edit_attrs(image, lambda a: set_paths(a, ["0", "1", str(tmp_path / "another-project")]))
    assert_refused_untouched(tmp_path, image, "not the plain name")


@pytest.mark.parametrize("what", ["file", "folder", "link"])
def test_user_entries_named_as_levels_by_a_forged_marker_are_refused(tmp_path, image, what):
    """The metadata names 'notes' as a level; it is the user's file, folder or link, not a Zarr array."""
    notes = image / "notes"
    if what == "file":
        notes.write_text("my notes")
    elif what == "folder":
        notes.mkdir()
        (notes / "zarr.json").write_text("{}")  # even with something called zarr.json in it
    else:
        notes.symlink_to(tmp_path / "another-project")
    edit_attrs(image, lambda a: set_paths(a, ["0", "1", "notes"]))
    assert_refused_untouched(tmp_path, image, "level notes")


@pytest.mark.parametrize("extra", ["my-analysis.csv", "c/my-analysis.csv", "c/0/0/extra", "c/0/0/9/9", ".DS_Store",
                                   "c/0/x", "c/0/0/0.bak", "c/0/0/٣"])
def test_a_level_folder_with_anything_but_array_chunks_is_refused(tmp_path, image, extra):
    odd = image / "1" / extra
    odd.parent.mkdir(parents=True, exist_ok=True)
    if not odd.exists():
        odd.write_text("user data")
    before = snapshot(tmp_path)
    with pytest.raises(FileExistsError, match=r"level 1 is not only a Zarr array: 1/"):
        write_ome_zarr(exploding(), image, voxel_size=1, chunks=16, overwrite=True)
    assert snapshot(tmp_path) == before


def test_a_link_inside_a_level_is_refused(tmp_path, image):
    (image / "2" / "c" / "1").symlink_to(tmp_path / "another-project")
    assert_refused_untouched(tmp_path, image, r"2/c/1 is a link")


def test_zarr_v2_images_follow_the_same_rule(tmp_path, volume):
    image = tmp_path / "v2.ome.zarr"
    write_ome_zarr(volume, image, voxel_size=1, chunks=8, n_levels=2, version="0.4")
    assert _replaceable_entries(image, (".zgroup", ".zattrs", "0", "1")) == (".zgroup", ".zattrs", "0", "1")
    attrs = json.loads((image / ".zattrs").read_text())
    attrs["data_helpers"]["levels"] = ["0", "1", "../v2.ome.zarr"]
    (image / ".zattrs").write_text(json.dumps(attrs))
    assert_refused_untouched(tmp_path, image, r"'\.\./v2\.ome\.zarr'")


# -- a user folder with a level's name ------------------------------------------------------------------


def test_a_user_folder_named_like_a_new_level_is_never_taken_for_one(tmp_path, volume):
    image = tmp_path / "img.ome.zarr"
    write_ome_zarr(volume, image, voxel_size=1, chunks=16, n_levels=1)
    (image / "1").mkdir()
    (image / "1" / "my-analysis.csv").write_text("region,volume\n1,42\n")
    before = snapshot(tmp_path)
    # more levels than before: the whole plan is checked before anything is computed or moved
    with pytest.raises(FileExistsError, match=r"1 is in the way"):
        write_ome_zarr(exploding(), image, voxel_size=1, chunks=8, n_levels=3, overwrite=True)
    assert snapshot(tmp_path) == before
    assert validate_ome_zarr(image).ok  # the old image is in place and complete
    np.testing.assert_array_equal(zarr.open_array(image / "0", mode="r")[:], volume)
    # the next overwrite, with as many levels as fit, leaves the folder alone too
    write_ome_zarr(volume, image, voxel_size=1, chunks=16, n_levels=1, overwrite=True)
    assert (image / "1" / "my-analysis.csv").read_text() == "region,volume\n1,42\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.ome.zarr"]


def test_a_failed_overwrite_leaves_the_old_image_complete(tmp_path, image, volume):
    before = snapshot(tmp_path)
    with pytest.raises(RuntimeError, match="computed"):
        write_ome_zarr(exploding(), image, voxel_size=1, chunks=16, overwrite=True)
    assert snapshot(tmp_path) == before
    assert validate_ome_zarr(image).ok


def test_a_failure_while_swapping_puts_every_entry_back(tmp_path, image, monkeypatch):
    before = snapshot(tmp_path)
    calls = []

    def flaky(real):
        def rename(src, dst):
            calls.append((src, dst))
            if len(calls) == 5:  # after the old entries went aside and some new ones came in
                raise OSError(5, "Input/output error")
            return real(src, dst)

        return rename

    monkeypatch.setattr(os, "rename", flaky(os.rename))  # moves aside and back
    monkeypatch.setattr(safety, "rename_noreplace", flaky(safety.rename_noreplace))  # moves in
    with pytest.raises(OSError, match="Input/output"):
        write_ome_zarr(np.ones((16, 16, 16), np.uint16), image, voxel_size=1, chunks=8, overwrite=True)
    monkeypatch.undo()
    assert len(calls) > 5 and snapshot(tmp_path) == before
    assert validate_ome_zarr(image).ok


def test_overwrite_replaces_the_image_and_keeps_other_entries(tmp_path, image):
    (image / "notes.txt").write_text("keep me")
    (image / "analysis").mkdir()
    (image / "analysis" / "table.csv").write_text("x")
    new = np.full((16, 16, 16), 7, np.uint16)
    result = write_ome_zarr(new, image, voxel_size=2, chunks=16, overwrite=True)
    assert result.n_levels == 1
    assert sorted(p.name for p in image.iterdir()) == ["0", "analysis", "notes.txt", "zarr.json"]
    assert (image / "analysis" / "table.csv").read_text() == "x"
    np.testing.assert_array_equal(zarr.open_array(image / "0", mode="r")[:], new)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["another-project", "img.ome.zarr"]


def test_overwrite_from_v3_to_v2_replaces_the_group_metadata(tmp_path, image):
    write_ome_zarr(np.ones((16, 16, 16), np.uint8), image, voxel_size=1, chunks=16, overwrite=True, version="0.4")
    assert sorted(p.name for p in image.iterdir()) == [".zattrs", ".zgroup", "0"]
    assert validate_ome_zarr(image).ok


# -- errors known before computing -----------------------------------------------------------------------


def test_target_errors_come_before_the_pyramid_is_computed(tmp_path, image, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    link = tmp_path / "link.ome.zarr"
    link.symlink_to(empty)
    with pytest.raises(FileExistsError, match="symbolic link"):
        write_ome_zarr(exploding(), link, voxel_size=1)
    dangling = tmp_path / "dangling.ome.zarr"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(FileExistsError, match="dangling symbolic link"):
        write_ome_zarr(exploding(), dangling, voxel_size=1)
    edit_attrs(image, lambda a: a.update(data_helpers=42))
    with pytest.raises(FileExistsError, match="'data_helpers' is int"):
        write_ome_zarr(exploding(), image, voxel_size=1, overwrite=True)
    monkeypatch.setattr(omezarr, "_same_device", lambda a, b: False)
    with pytest.raises(OmeZarrError, match="another file system"):
        write_ome_zarr(exploding(), empty, voxel_size=1)
    assert not (tmp_path / "nowhere").exists() and list(empty.iterdir()) == []
    assert not list(tmp_path.glob(".*"))


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize("target", ["/proc/x.ome.zarr", "/proc/no-such-folder/x.ome.zarr"])
def test_a_target_in_a_system_folder_gets_a_clear_error(target):
    with pytest.raises(NotWritableError, match="not a folder this process may write to"):
        write_ome_zarr(np.ones((8, 8), np.uint8), target, voxel_size=1)


def test_parent_that_is_a_file_is_refused_before_computing(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError):
        write_ome_zarr(exploding(), tmp_path / "file" / "img.ome.zarr", voxel_size=1)
    assert (tmp_path / "file").read_text() == "x"


# -- two writes at once ------------------------------------------------------------------------------------


@pytest.mark.parametrize("overwrite", [False, True])
def test_two_writes_to_one_new_path_one_wins(tmp_path, overwrite):
    target = tmp_path / "race.ome.zarr"
    barrier = threading.Barrier(2, timeout=60)

    def data(value):
        def compute(block):
            barrier.wait()  # both writes have checked the target and are computing: neither has committed
            return np.full(block.shape, value, np.uint16)

        return da.zeros((16, 16, 16), np.uint16, chunks=16).map_blocks(compute, dtype=np.uint16,
                                                                       meta=np.empty((0, 0, 0), np.uint16))

    results = {}

    def run(value):
        try:
            results[value] = write_ome_zarr(data(value), target, voxel_size=1, chunks=16, overwrite=overwrite)
        except BaseException as error:  # noqa: BLE001 - recorded and checked below
            results[value] = error

    threads = [threading.Thread(target=run, args=(v,)) for v in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    errors = [r for r in results.values() if isinstance(r, BaseException)]
    winners = [v for v, r in results.items() if not isinstance(r, BaseException)]
    assert len(winners) == 1 and len(errors) == 1, results
    assert isinstance(errors[0], FileExistsError), errors[0]
    assert np.all(zarr.open_array(target / "0", mode="r")[:] == winners[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["race.ome.zarr"]  # no staging, no lock left
    assert validate_ome_zarr(target).ok


def test_a_lock_held_by_a_running_write_refuses(tmp_path):
    lock = tmp_path / ".img.ome.zarr.lock"
    lock.write_text(json.dumps(omezarr._this_process()))
    with pytest.raises(FileExistsError, match="being committed right now"):
        write_ome_zarr(np.ones((8, 8), np.uint8), tmp_path / "img.ome.zarr", voxel_size=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".img.ome.zarr.lock"]


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_lock_left_by_a_dead_process_is_removed_with_a_warning(tmp_path):
    lock = tmp_path / ".img.ome.zarr.lock"
    lock.write_text(json.dumps({"writer": "data_helpers", "pid": dead_pid(), "started": 1.0}))
    with pytest.warns(RuntimeWarning, match="no longer running"):
        write_ome_zarr(np.ones((8, 8), np.uint8), tmp_path / "img.ome.zarr", voxel_size=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.ome.zarr"]


# -- staging folders -----------------------------------------------------------------------------------------


class Interrupt(BaseException):
    pass


@pytest.mark.parametrize("where", ["compute", "commit", "interrupt"])
def test_staging_is_removed_on_every_failure(tmp_path, monkeypatch, where):
    data = np.ones((16, 16, 16), np.uint8)
    if where == "compute":
        data = exploding(dtype=np.uint8)
    elif where == "commit":
        monkeypatch.setattr(safety, "rename_noreplace", lambda s, p: (_ for _ in ()).throw(OSError("disk full")))
    else:
        monkeypatch.setattr(omezarr, "_multiscale_metadata", lambda *a: (_ for _ in ()).throw(Interrupt()))
    with pytest.raises((RuntimeError, OSError, Interrupt)):
        write_ome_zarr(data, tmp_path / "img.ome.zarr", voxel_size=1, chunks=8)
    assert list(tmp_path.iterdir()) == []  # no staging, no lock, and no target folder made for the commit


def make_stale_staging(tmp_path, owner: dict | None, extra: str | None = None) -> Path:
    staging = tmp_path / ".img.ome.zarr.partial-0123456789ab"
    (staging / "0" / "c").mkdir(parents=True)
    (staging / "zarr.json").write_text("{}")
    if owner is not None:
        (staging / _STAGING_OWNER).write_text(json.dumps(owner))
    if extra:
        (staging / extra).write_text("not ours")
    return staging


def test_stale_staging_of_a_dead_process_is_removed_and_reported(tmp_path):
    staging = make_stale_staging(tmp_path, {"writer": "data_helpers", "pid": dead_pid(), "started": 1.0})
    with pytest.warns(RuntimeWarning, match=r"removed \.img\.ome\.zarr\.partial-0123456789ab .*no longer running"):
        write_ome_zarr(np.ones((8, 8), np.uint8), tmp_path / "img.ome.zarr", voxel_size=1)
    assert not staging.exists()


def test_stale_staging_of_a_reused_process_id_is_removed(tmp_path):
    """This process's id, but a start time before this process began: the writer is gone."""
    pytest.importorskip("psutil")
    staging = make_stale_staging(tmp_path, {"writer": "data_helpers", "pid": os.getpid(), "started": 12.0})
    with pytest.warns(RuntimeWarning, match="no longer running"):
        write_ome_zarr(np.ones((8, 8), np.uint8), tmp_path / "img.ome.zarr", voxel_size=1)
    assert not staging.exists()


def test_stale_staging_of_another_target_in_the_folder_is_removed(tmp_path):
    """Any writer in a folder cleans the leftovers of dead writers there, whatever their target."""
    staging = make_stale_staging(tmp_path, {"writer": "data_helpers", "pid": dead_pid(), "started": 1.0})
    staging = staging.rename(tmp_path / ".other.ome.zarr.partial-0123456789ab")
    with pytest.warns(RuntimeWarning, match=r"removed \.other\.ome\.zarr\.partial-0123456789ab .*no longer running"):
        write_ome_zarr(np.ones((8, 8), np.uint8), tmp_path / "img.ome.zarr", voxel_size=1)
    assert not staging.exists()


@pytest.mark.parametrize("case", ["running", "no owner record", "foreign entry", "not a staging name"])
def test_staging_folders_that_are_not_stale_or_not_ours_stay(tmp_path, case, recwarn):
    owner = {"writer": "data_helpers", "pid": dead_pid(), "started": 1.0}
    if case == "running":
        owner = omezarr._this_process()
    staging = make_stale_staging(tmp_path, None if case == "no owner record" else owner,
                                 extra="notes.txt" if case == "foreign entry" else None)
    if case == "not a staging name":
        staging = staging.rename(tmp_path / ".img.ome.zarr.partial-mine")
    before = snapshot(staging)
    write_ome_zarr(np.ones((8, 8), np.uint8), tmp_path / "img.ome.zarr", voxel_size=1)
    assert snapshot(staging) == before
    assert not [w for w in recwarn if "no longer running" in str(w.message)]


def test_staging_records_its_writer(tmp_path):
    staging = _make_staging(tmp_path / "img.ome.zarr")
    owner = json.loads((staging / _STAGING_OWNER).read_text())
    assert owner["pid"] == os.getpid() and owner["writer"] == "data_helpers"
    assert staging.name.startswith(".img.ome.zarr.partial-")


# -- nbytes_stored ---------------------------------------------------------------------------------------------


def test_nbytes_stored_counts_only_the_image(tmp_path, volume):
    alone = write_ome_zarr(volume, tmp_path / "alone.ome.zarr", voxel_size=1, chunks=8, name="heart")
    target = tmp_path / "shared.ome.zarr"
    write_ome_zarr(volume, target, voxel_size=1, chunks=8, name="heart")
    (target / "big-notes.bin").write_bytes(b"\0" * 2**20)
    (target / "extra").mkdir()
    (target / "extra" / "more.bin").write_bytes(b"\0" * 2**16)
    shared = write_ome_zarr(volume, target, voxel_size=1, chunks=8, overwrite=True, name="heart")
    files = [p for name in ("zarr.json", *map(str, range(shared.n_levels))) for p in [target / name, *(target / name).rglob("*")]
             if p.is_file()]
    assert shared.nbytes_stored == sum(p.stat().st_size for p in files) == alone.nbytes_stored < 2**20


# -- the steps on their own --------------------------------------------------------------------------------------


def test_check_target_states(tmp_path, image):
    written = ("zarr.json", "0")
    assert _check_target(tmp_path / "new", False, written) == _Target(tmp_path / "new", "new")
    (tmp_path / "empty").mkdir()
    assert _check_target(tmp_path / "empty", False, written).state == "empty"
    assert _check_target(image, True, written) == _Target(image, "image", ("zarr.json", "0", "1", "2"))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        _check_target(image, False, written)
    with pytest.raises(FileExistsError, match="not an OME-Zarr image written by data_helpers"):
        _check_target(tmp_path / "another-project", True, written)


def test_replaceable_entries_is_the_rule(tmp_path, image):
    assert _replaceable_entries(image, ("zarr.json", "0")) == ("zarr.json", "0", "1", "2")
    # a level already missing is not an error: there is nothing to delete
    import shutil

    shutil.rmtree(image / "2")
    assert _replaceable_entries(image, ("zarr.json", "0")) == ("zarr.json", "0", "1")
    (image / "3").mkdir()
    with pytest.raises(FileExistsError, match="3 is in the way"):
        _replaceable_entries(image, ("zarr.json", "0", "1", "2", "3"))


@pytest.mark.parametrize(
    "zarr_format, encoding, key",
    [(3, None, "c/1/0"), (3, {"name": "default", "separator": "."}, "c.1.0"), (3, {"name": "v2", "separator": "."}, "1.0"),
     (2, {"name": "v2", "separator": "."}, "1.0"), (2, {"name": "v2", "separator": "/"}, "1/0")],
)
def test_array_node_check_knows_each_chunk_key_encoding(tmp_path, zarr_format, encoding, key):
    kwargs = {} if encoding is None else {"chunk_key_encoding": encoding}
    arr = zarr.create_array(tmp_path / "a", shape=(4, 4), chunks=(2, 2), dtype="u1", zarr_format=zarr_format, **kwargs)
    arr[:] = 1
    arr.attrs["note"] = "attributes are metadata too"
    assert (tmp_path / "a" / key).is_file()
    assert _array_node_problem(tmp_path / "a") is None
    (tmp_path / "a" / "c.9").write_text("x")
    assert _array_node_problem(tmp_path / "a") == "a/c.9 is not a chunk of the array"
    assert "no array metadata" in _array_node_problem(tmp_path)


def test_commit_order_puts_metadata_last(tmp_path):
    for name in ("zarr.json", "1", "0"):
        (tmp_path / name).mkdir()
    assert _commit_order(tmp_path) == ["0", "1", "zarr.json"]


def test_commit_of_a_new_path_refuses_if_it_appeared(tmp_path):
    staging = _make_staging(tmp_path / "img")
    (tmp_path / "img").mkdir()
    with pytest.raises(FileExistsError, match="created by another write"):
        _commit(staging, _Target(tmp_path / "img", "new"), ("zarr.json",))
    assert (staging / _STAGING_OWNER).exists() is False and not (tmp_path / ".img.lock").exists()


def test_swap_entries_moves_old_aside_then_deletes_it(tmp_path):
    target, staging = tmp_path / "t", tmp_path / "s"
    (target / "0").mkdir(parents=True)
    (target / "keep.txt").write_text("mine")
    (target / "zarr.json").write_text("old")
    (staging / "0").mkdir(parents=True)
    (staging / "zarr.json").write_text("new")
    _swap_entries(staging, target, ["zarr.json", "0"])
    assert (target / "zarr.json").read_text() == "new" and (target / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t"]


RACER = """
import sys, time
from pathlib import Path
import dask.array as da, numpy as np
from data_helpers import write_ome_zarr

target, sync, value = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])

def compute(block):
    (sync / f"computing-{value}").touch()
    for _ in range(600):  # a barrier across processes: both are computing, neither has committed
        if len(list(sync.glob("computing-*"))) == 2:
            break
        time.sleep(0.1)
    return np.full(block.shape, value, np.uint16)

data = da.zeros((16, 16, 16), np.uint16, chunks=16).map_blocks(compute, dtype=np.uint16, meta=np.empty((0, 0, 0), np.uint16))
try:
    write_ome_zarr(data, target, voxel_size=1, chunks=16)
except FileExistsError as error:
    print("FileExistsError", error)
    sys.exit(3)
print("wrote", value)
"""


def test_two_processes_writing_one_new_path_one_wins(tmp_path):
    sync = tmp_path / "sync"
    sync.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    target = out / "race.ome.zarr"
    procs = [subprocess.Popen([sys.executable, "-c", RACER, str(target), str(sync), str(v)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for v in (1, 2)]
    results = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
    codes = sorted(r[2] for r in results)
    assert codes == [0, 3], results
    winner = 1 + [r[2] for r in results].index(0)
    assert np.all(zarr.open_array(target / "0", mode="r")[:] == winner)
    assert sorted(p.name for p in out.iterdir()) == ["race.ome.zarr"]
    assert validate_ome_zarr(target).ok
