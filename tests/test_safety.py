"""data_helpers.safety: the rules every writer follows (what is ours, no-replace commits, leftovers, links)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from data_helpers import safety
from data_helpers.safety import (
    NotOursError,
    UnsafePathError,
    commit_lock,
    entry_identity,
    identity_matches,
    is_plain_name,
    make_staging,
    open_lock_file,
    owned_entries,
    path_inside,
    remove_stale_staging,
    rename_noreplace,
)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- rule 1: what is ours ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["z0000.tif", "0", "image.ome.zarr", "a_b-c.d"])
def test_plain_names(name):
    assert is_plain_name(name)


@pytest.mark.parametrize("name", ["../thesis.tex", "..", ".", "/etc/passwd", "a/b", "a\\b", ".hidden", "", "C:x",
                                  None, 3, "x\0"])
def test_names_that_are_not_plain(name):
    assert not is_plain_name(name)


@pytest.mark.parametrize("name", ["../thesis.tex", "/abs/thesis.tex", "sub/x.tif", ".hidden"])
def test_a_marker_naming_anything_but_a_plain_entry_is_refused(tmp_path, name):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "a.tif").write_bytes(b"1")
    thesis = tmp_path / "thesis.tex"
    thesis.write_text("mine")
    record = {"a.tif": entry_identity(folder / "a.tif"), name: entry_identity(thesis)}
    with pytest.raises(NotOursError, match="not a plain name"):
        owned_entries(folder, record)
    assert owned_entries(folder, record, strict=False) == ["a.tif"]


def test_an_entry_is_ours_only_while_its_kind_size_and_time_match(tmp_path):
    (tmp_path / "a.tif").write_bytes(b"1234")
    (tmp_path / "d").mkdir()
    record = {"a.tif": entry_identity(tmp_path / "a.tif"), "d": entry_identity(tmp_path / "d"), "gone": {}}
    assert record["a.tif"]["kind"] == "file" and record["d"]["kind"] == "folder"
    assert sorted(owned_entries(tmp_path, record)) == ["a.tif", "d"]

    st = os.stat(tmp_path / "a.tif")
    os.utime(tmp_path / "a.tif", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # same bytes, another time
    with pytest.raises(NotOursError, match="a.tif"):
        owned_entries(tmp_path, record)
    os.utime(tmp_path / "a.tif", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert identity_matches(tmp_path / "a.tif", record["a.tif"])

    (tmp_path / "a.tif").write_bytes(b"12345")  # another size
    os.utime(tmp_path / "a.tif", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert not identity_matches(tmp_path / "a.tif", record["a.tif"])

    (tmp_path / "a.tif").unlink()
    (tmp_path / "a.tif").mkdir()  # another kind under the name
    os.utime(tmp_path / "a.tif", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert not identity_matches(tmp_path / "a.tif", record["a.tif"])
    assert owned_entries(tmp_path, record, strict=False) == ["d"]


def test_a_link_is_never_ours(tmp_path):
    (tmp_path / "target.tif").write_bytes(b"1")
    recorded = entry_identity(tmp_path / "target.tif")
    (tmp_path / "link.tif").symlink_to(tmp_path / "target.tif")
    assert entry_identity(tmp_path / "link.tif")["kind"] == "link"
    assert not identity_matches(tmp_path / "link.tif", recorded)
    assert not identity_matches(tmp_path / "link.tif", entry_identity(tmp_path / "link.tif"))
    assert not identity_matches(tmp_path / "missing.tif", recorded)


# -- rule 2: the no-replace rename ------------------------------------------------------------------------


@pytest.fixture(params=["renameat2", "fallback"])
def rename_mode(request, monkeypatch):
    if request.param == "renameat2" and safety._renameat2 is None:
        pytest.skip("this system has no renameat2; the fallback case covers it")
    if request.param == "fallback":
        monkeypatch.setattr(safety, "_renameat2", None)
    return request.param


@pytest.mark.parametrize("existing", ["file", "folder", "dangling link"])
def test_rename_noreplace_never_replaces(tmp_path, rename_mode, existing):
    src = tmp_path / "src"
    src.write_text("new")
    dst = tmp_path / "dst"
    if existing == "file":
        dst.write_text("precious")
    elif existing == "folder":
        dst.mkdir()
    else:
        dst.symlink_to(tmp_path / "nowhere")
    with pytest.raises(FileExistsError):
        rename_noreplace(src, dst)
    assert src.read_text() == "new"
    if existing == "file":
        assert dst.read_text() == "precious"
    assert not (tmp_path / "nowhere").exists()


def test_rename_noreplace_moves_files_and_folders(tmp_path, rename_mode):
    (tmp_path / "f").write_text("x")
    rename_noreplace(tmp_path / "f", tmp_path / "g")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "inside").write_text("y")
    rename_noreplace(tmp_path / "d", tmp_path / "e")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e", "g"]
    assert (tmp_path / "e" / "inside").read_text() == "y"


RACER = """
import sys, time, types
from pathlib import Path
package = types.ModuleType("data_helpers")  # the safety module alone, without importing the whole package
package.__path__ = [sys.argv[4]]
sys.modules["data_helpers"] = package
from data_helpers import safety
if sys.argv[3] == "fallback":
    safety._renameat2 = None
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
go = dst.parent / "go"
while not go.exists():
    time.sleep(0.001)
try:
    safety.rename_noreplace(src, dst)
except FileExistsError:
    print("refused")
else:
    print("won")
"""


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_of_two_processes_committing_to_one_new_target_exactly_one_wins(tmp_path, rename_mode, kind):
    for round_ in range(2):
        folder = tmp_path / f"round{round_}"
        folder.mkdir()
        sources = []
        for name in ("a", "b", "c"):
            src = folder / f"staging-{name}"
            if kind == "file":
                src.write_text(name)
            else:
                src.mkdir()
                (src / "who").write_text(name)
            sources.append(src)
        dst = folder / "target"
        package = str(Path(safety.__file__).parent)
        racers = [subprocess.Popen([sys.executable, "-c", RACER, str(s), str(dst), rename_mode, package],
                                   stdout=subprocess.PIPE, text=True) for s in sources]
        (folder / "go").touch()
        answers = [r.communicate(timeout=120)[0].strip() for r in racers]
        assert sorted(answers) == ["refused", "refused", "won"], answers
        winner = sources[answers.index("won")].name[-1]
        assert (dst.read_text() if kind == "file" else (dst / "who").read_text()) == winner
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            ["go", "target"] + [s.name for s in sources if s.name[-1] != winner])


def test_of_two_threads_committing_to_one_new_target_exactly_one_wins(tmp_path, rename_mode):
    barrier = threading.Barrier(2, timeout=60)
    results = {}

    def run(name):
        src = tmp_path / name
        src.write_text(name)
        barrier.wait()
        try:
            rename_noreplace(src, tmp_path / "target")
            results[name] = "won"
        except FileExistsError:
            results[name] = "refused"

    threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results.values()) == ["refused", "won"]


# -- rule 4: links ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["link", "dangling link", "folder"])
def test_a_lock_file_that_is_a_link_or_a_folder_is_refused(tmp_path, kind):
    victim = tmp_path / "victim.txt"
    lock = tmp_path / ".x.lock"
    if kind == "link":
        victim.write_text("precious")
        lock.symlink_to(victim)
    elif kind == "dangling link":
        lock.symlink_to(victim)
    else:
        lock.mkdir()
    with pytest.raises(UnsafePathError, match="symbolic link" if "link" in kind else "folder"):
        open_lock_file(lock)
    with pytest.raises(UnsafePathError):
        with commit_lock(tmp_path / "x"):
            pass
    assert victim.read_text() == "precious" if kind == "link" else not victim.exists()


def test_a_lock_file_is_created_and_reused(tmp_path):
    fd = open_lock_file(tmp_path / ".x.lock")
    os.close(fd)
    fd = open_lock_file(tmp_path / ".x.lock")
    os.close(fd)
    assert (tmp_path / ".x.lock").is_file()


@pytest.mark.parametrize("relative", ["../other/0", "/etc", "0/../../x", "", None, "a//b", "C:\\x"])
def test_a_path_out_of_the_folder_is_refused(tmp_path, relative):
    with pytest.raises(UnsafePathError):
        path_inside(tmp_path, relative)


def test_a_link_out_of_the_folder_is_refused_and_one_inside_is_followed(tmp_path):
    image = tmp_path / "image"
    (image / "real").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (image / "out").symlink_to(tmp_path / "outside")
    (image / "in").symlink_to(image / "real")
    with pytest.raises(UnsafePathError, match="symbolic link"):
        path_inside(image, "out/0")
    assert path_inside(image, "in/0") == image / "in" / "0"
    assert path_inside(image, "labels/cells/0") == image / "labels" / "cells" / "0"


# -- rule 3: staging and leftovers -------------------------------------------------------------------------


def staging_with_owner(folder: Path, owner: dict, name=".x.tif.partial-0123456789ab", content="x.tif") -> Path:
    staging = folder / name
    staging.mkdir()
    (staging / content).write_bytes(b"II*\0")
    (staging / safety.STAGING_OWNER).write_text(json.dumps(owner))
    return staging


def test_staging_of_a_dead_writer_is_removed_and_of_a_live_one_kept(tmp_path):
    dead = staging_with_owner(tmp_path, {"writer": "data_helpers", "pid": dead_pid(), "started": 1.0,
                                         "kind": "tiff"})
    live = staging_with_owner(tmp_path, {**safety._this_process(), "kind": "tiff"},
                              name=".y.tif.partial-0123456789ab")
    with pytest.warns(RuntimeWarning, match="no longer running"):
        assert remove_stale_staging(tmp_path) == [dead]
    assert live.is_dir() and not dead.exists()


@pytest.mark.parametrize("case", ["unknown kind", "foreign content", "a link", "no record", "not a staging name"])
def test_staging_that_cannot_be_shown_ours_stays(tmp_path, case, recwarn):
    owner = {"writer": "data_helpers", "pid": dead_pid(), "started": 1.0, "kind": "tiff"}
    if case == "unknown kind":
        owner["kind"] = "something"
    staging = staging_with_owner(tmp_path, owner, content="notes.txt" if case == "foreign content" else "x.tif",
                                 name=".x.tif.partial-mine" if case == "not a staging name" else
                                 ".x.tif.partial-0123456789ab")
    if case == "no record":
        (staging / safety.STAGING_OWNER).unlink()
    if case == "a link":
        real = staging.rename(tmp_path / "real")
        staging.symlink_to(real)
    assert remove_stale_staging(tmp_path) == []
    assert staging.exists() and not [w for w in recwarn if "no longer running" in str(w.message)]


def test_make_staging_records_its_writer_and_kind(tmp_path):
    staging = make_staging(tmp_path / "sub" / "v.tif", kind="tiff")
    owner = json.loads((staging / safety.STAGING_OWNER).read_text())
    assert owner["pid"] == os.getpid() and owner["kind"] == "tiff"
    assert staging.parent == tmp_path / "sub" and safety._STAGING_NAME.fullmatch(staging.name)
    with pytest.raises(ValueError, match="kind"):
        make_staging(tmp_path / "v.tif", kind="other")


@pytest.mark.parametrize(("kind", "content"), [
    ("labels", {"zarr.json": "f", "cells/zarr.json": "f", "cells/0/c/0/0/0": "f", "cells/_rechunk.zarr/x": "f"}),
    ("ome-zarr", {"zarr.json": "f", "0/c/0/0/0": "f", "_rechunk.zarr/zarr.json": "f"}),
    ("metadata", {"zarr.json": "f"}),
    ("tiff", {"x.tif": "f", "x.tif.made-by-data_helpers-export.json": "f"}),
])
def test_staging_of_every_writer_kind_is_recognised_when_its_writer_died(tmp_path, kind, content):
    staging = tmp_path / ".labels.partial-0123456789ab"
    for rel in content:
        (staging / rel).parent.mkdir(parents=True, exist_ok=True)
        (staging / rel).write_text("{}")
    (staging / safety.STAGING_OWNER).write_text(json.dumps({"writer": "data_helpers", "pid": dead_pid(),
                                                            "started": 1.0, "kind": kind}))
    with pytest.warns(RuntimeWarning, match="no longer running"):
        assert remove_stale_staging(tmp_path) == [staging]


@pytest.mark.parametrize(("kind", "content"), [
    ("labels", {"zarr.json": "f", "cells/0/c": "d", "nuclei/0/c": "d"}),  # one label image per staging
    ("labels", {"zarr.json": "f", "cells/notes.txt": "f"}),
    ("labels", {"zarr.json": "f", "cells": "f"}),
    ("metadata", {"zarr.json": "f", ".zattrs": "f"}),
    ("metadata", {"notes.txt": "f"}),
    ("ome-zarr", {"zarr.json": "d"}),
    ("ome-zarr", {"cells/0": "d"}),  # a label image, but the target is not labels/
])
def test_staging_holding_more_than_its_kind_writes_stays(tmp_path, kind, content, recwarn):
    name = ".img.ome.zarr.partial-0123456789ab" if kind == "ome-zarr" else ".labels.partial-0123456789ab"
    staging = tmp_path / name
    for rel, what in content.items():
        (staging / rel).parent.mkdir(parents=True, exist_ok=True)
        (staging / rel).mkdir() if what == "d" else (staging / rel).write_text("{}")
    (staging / safety.STAGING_OWNER).write_text(json.dumps({"writer": "data_helpers", "pid": dead_pid(),
                                                            "started": 1.0, "kind": kind}))
    assert remove_stale_staging(tmp_path) == []
    assert staging.is_dir() and not [w for w in recwarn if "no longer running" in str(w.message)]


def test_replace_own_file_is_one_rename_of_a_file_still_as_recorded(tmp_path, monkeypatch):
    meta = tmp_path / "zarr.json"
    meta.write_text('{"a": 1}')
    recorded = entry_identity(meta)
    calls = []

    def recording(name, real):
        def call(*args, **kwargs):
            calls.append((name, *[os.fspath(a) for a in args[:2]]))
            return real(*args, **kwargs)
        return call

    for name in ("rename", "replace", "unlink", "remove", "link"):
        monkeypatch.setattr(os, name, recording(name, getattr(os, name)))
    new = safety.replace_own_file(meta, b'{"a": 2}', recorded)
    monkeypatch.undo()
    touching = [c for c in calls if str(meta) in c[1:]]
    assert len(touching) == 1 and touching[0][0] == "replace" and touching[0][2] == str(meta), calls
    assert meta.read_bytes() == b'{"a": 2}' and identity_matches(meta, new)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["zarr.json"]  # no staging, no lock left


@pytest.mark.parametrize("change", ["edited", "replaced by a link", "removed"])
def test_replace_own_file_refuses_a_file_that_changed(tmp_path, change):
    meta = tmp_path / "zarr.json"
    meta.write_text('{"a": 1}')
    recorded = entry_identity(meta)
    other = tmp_path / "other.json"
    other.write_text("theirs")
    if change == "edited":
        meta.write_text('{"a": 10}')
    elif change == "replaced by a link":
        meta.unlink()
        meta.symlink_to(other)
    else:
        meta.unlink()
    with pytest.raises(NotOursError, match="not the file this package wrote"):
        safety.replace_own_file(meta, b"{}", recorded)
    assert other.read_text() == "theirs"
    assert (meta.read_text() == '{"a": 10}') if change == "edited" else True
    assert not os.path.lexists(meta) if change == "removed" else True
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["other.json"] + ([] if change == "removed"
                                                                                  else ["zarr.json"]))


def test_replace_own_file_checks_its_arguments(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="group metadata"):
        safety.replace_own_file(tmp_path / "notes.txt", b"", entry_identity(tmp_path / "notes.txt"))
    (tmp_path / "zarr.json").write_text("{}")
    with pytest.raises(ValueError, match="bytes"):
        safety.replace_own_file(tmp_path / "zarr.json", "{}", entry_identity(tmp_path / "zarr.json"))


def test_read_no_follow_reads_a_plain_file(tmp_path):
    (tmp_path / "0" / "c").mkdir(parents=True)
    (tmp_path / "0" / "c" / "0").write_bytes(b"chunk")
    assert safety.read_no_follow(tmp_path, "0/c/0") == b"chunk"


@pytest.mark.parametrize("case", ["file is a link", "folder is a link", "a fifo", "a folder"])
def test_read_no_follow_refuses_links_and_other_entries(tmp_path, case):
    secret = tmp_path / "outside"
    (secret / "c").mkdir(parents=True)
    (secret / "c" / "0").write_bytes(b"PRIVATE")
    image = tmp_path / "image"
    (image / "0").mkdir(parents=True)
    if case == "file is a link":
        (image / "0" / "c").mkdir()
        (image / "0" / "c" / "0").symlink_to(secret / "c" / "0")
    elif case == "folder is a link":
        (image / "0" / "c").symlink_to(secret / "c")
    elif case == "a fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no named pipes here")
        (image / "0" / "c").mkdir()
        os.mkfifo(image / "0" / "c" / "0")  # a read that blocked would hang: it is refused instead
    else:
        (image / "0" / "c" / "0").mkdir(parents=True)
    with pytest.raises(OSError):
        safety.read_no_follow(image, "0/c/0")


@pytest.mark.parametrize("relative", ["../outside/c/0", "/etc/passwd", "0//c", "", "./0"])
def test_read_no_follow_refuses_a_path_out_of_the_folder(tmp_path, relative):
    with pytest.raises(UnsafePathError):
        safety.read_no_follow(tmp_path, relative)


def killed_while_committing(folder: Path, lock_pid: int, names_staging: bool = True) -> Path:
    """A writer killed under its commit lock, after removing its staging's owner record for the final rename."""
    staging = make_staging(folder / "img.ome.zarr")
    (staging / "0" / "c").mkdir(parents=True)
    (staging / "zarr.json").write_text("{}")
    lock = folder / ".img.ome.zarr.lock"
    with commit_lock(folder / "img.ome.zarr", staging=staging):
        record = json.loads(lock.read_text())
    assert record["staging"] == staging.name and record["kind"] == "ome-zarr"
    record = {**record, "pid": lock_pid, "started": 1.0}
    if not names_staging:
        record["staging"] = ".img.ome.zarr.partial-0123456789ab"
    lock.write_text(json.dumps(record))
    (staging / safety.STAGING_OWNER).unlink()
    return staging


def test_staging_killed_while_committing_is_cleaned_through_its_commit_lock(tmp_path):
    staging = killed_while_committing(tmp_path, dead_pid())
    with pytest.warns(RuntimeWarning, match="no longer running"):
        make_staging(tmp_path / "other.ome.zarr")  # the next writer in the folder, to any target
    assert not staging.exists()


def test_a_dead_commit_lock_is_removed_after_the_staging_it_names(tmp_path):
    staging = killed_while_committing(tmp_path, dead_pid())
    with pytest.warns(RuntimeWarning, match="no longer running"):
        with commit_lock(tmp_path / "img.ome.zarr"):
            pass
    assert not staging.exists() and not (tmp_path / ".img.ome.zarr.lock").exists()


@pytest.mark.parametrize("case", ["the lock's writer runs", "the lock names another staging"])
def test_staging_without_owner_record_stays_unless_a_dead_lock_names_it(tmp_path, case, recwarn):
    staging = killed_while_committing(tmp_path, os.getpid() if case == "the lock's writer runs" else dead_pid(),
                                      names_staging=case != "the lock names another staging")
    if case == "the lock's writer runs":
        lock = tmp_path / ".img.ome.zarr.lock"
        lock.write_text(json.dumps({**json.loads(lock.read_text()), **safety._this_process()}))
    assert remove_stale_staging(tmp_path) == []
    assert staging.is_dir() and not [w for w in recwarn if "no longer running" in str(w.message)]
